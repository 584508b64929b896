from __future__ import annotations

import math
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aioboto3
import anyio
import pytest
from quart import Quart

from quart_session import Session
from quart_session.config import Settings
from quart_session.errors import SessionBackendError, SessionConfigError
from quart_session.stores.base import Outcome, Record
from quart_session.stores.dynamodb import DynamoDBStore, from_settings

from ..servers.dynamodb import REGION, DynamoDBServer, RequestCounter
from ..servers.processes import free_port
from ..suites.contract import KEY, StoreContract, create

pytestmark = [pytest.mark.servers, pytest.mark.anyio]


@pytest.fixture
def table() -> str:
    """A table of its own per test: a fresh, empty store."""
    return f"sessions-{uuid.uuid4().hex}"


@pytest.fixture
async def raw(dynamodb_server: DynamoDBServer) -> AsyncIterator[Any]:
    """A plain client of the test's own, to look at what the store wrote."""
    session = aioboto3.Session()
    async with session.client(
        "dynamodb", endpoint_url=dynamodb_server.endpoint_url, region_name=REGION
    ) as client:
        yield client


@pytest.fixture
async def store(dynamodb_server: DynamoDBServer, table: str) -> AsyncIterator[DynamoDBStore]:
    store = DynamoDBStore(table, endpoint_url=dynamodb_server.endpoint_url, region=REGION)
    yield store
    await store.close()


async def plant_expired(raw: Any, table: str, key: str) -> None:
    """An item past its expiry that DynamoDB's (lazy) TTL has not removed yet."""
    await raw.put_item(
        TableName=table,
        Item={
            "id": {"S": key},
            "data": {"B": b"old"},
            "version": {"N": "7"},
            "deadline": {"N": str(int(time.time() * 1000) - 5000)},
            "expiry": {"N": str(int(time.time()) - 5)},
        },
    )


class TestDynamoDBStore(StoreContract):
    async def test_item_shape_and_table_settings(
        self, store: DynamoDBStore, raw: Any, table: str
    ) -> None:
        version = await create(store, payload=b"\x00\xffbytes", ttl=60)
        item = (await raw.get_item(TableName=table, Key={"id": {"S": KEY}}))["Item"]
        assert item["data"]["B"] == b"\x00\xffbytes"
        assert int(item["version"]["N"]) == version
        deadline = int(item["deadline"]["N"]) / 1000
        assert 59 < deadline - time.time() <= 60
        assert int(item["expiry"]["N"]) == math.ceil(deadline)  # TTL takes whole seconds
        described = (await raw.describe_table(TableName=table))["Table"]
        assert described["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
        assert described["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        ttl = (await raw.describe_time_to_live(TableName=table))["TimeToLiveDescription"]
        assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expiry"}

    async def test_refresh_and_touch_move_the_ttl_attribute_too(
        self, store: DynamoDBStore, raw: Any, table: str
    ) -> None:
        async def remaining() -> tuple[float, float]:
            item = (await raw.get_item(TableName=table, Key={"id": {"S": KEY}}))["Item"]
            now = time.time()
            return int(item["deadline"]["N"]) / 1000 - now, int(item["expiry"]["N"]) - now

        await create(store, ttl=60)
        await store.load(KEY, refresh_ttl=600)
        deadline, expiry = await remaining()
        assert 590 < deadline <= 600 and 590 < expiry <= 601
        assert await store.load(KEY, refresh_ttl=900) is not None
        deadline, expiry = await remaining()
        assert 890 < deadline <= 900 and 890 < expiry <= 901

    async def test_expired_items_are_ignored_before_ttl_deletes_them(
        self, store: DynamoDBStore, raw: Any, table: str
    ) -> None:
        await store.ping()  # creates the table
        await plant_expired(raw, table, KEY)
        await plant_expired(raw, table, "session:b")

        assert await store.load(KEY) is None
        assert await store.load(KEY, refresh_ttl=60) is None
        assert await store.save(KEY, b"new", 60, 7) is Outcome.GONE
        assert await store.count("session:") == 0
        version = await create(store, payload=b"fresh")  # the leftover does not block it
        assert await store.load(KEY) == Record(b"fresh", version)  # type: ignore[arg-type]
        assert await store.purge_expired() == 1
        assert "Item" not in await raw.get_item(TableName=table, Key={"id": {"S": "session:b"}})

    async def test_count_sees_only_live_records_with_the_prefix(self, store: DynamoDBStore) -> None:
        await create(store, key="session:a")
        await create(store, key="session:b", ttl=1)
        await create(store, key="sessionX")
        await create(store, key="other:c")
        assert await store.count("session:") == 2
        assert await store.count("") == 4
        await anyio.sleep(2.1)
        assert await store.count("session:") == 1

    async def test_round_trips_per_operation(
        self, dynamodb_server: DynamoDBServer, raw: Any, table: str
    ) -> None:
        counter = RequestCounter()
        counter.attach(raw)
        store = DynamoDBStore(table, client=raw)
        await store.ping()  # table set up once

        async def operations(operation: Callable[[], Awaitable[object]]) -> list[str]:
            counter.operations.clear()
            await operation()
            return list(counter.operations)

        version = await create(store)
        assert await operations(lambda: store.load(KEY)) == ["GetItem"]
        assert await operations(lambda: store.load(KEY, refresh_ttl=60)) == ["UpdateItem"]
        assert await operations(lambda: store.save("session:new", b"x", 60, None)) == ["PutItem"]
        assert await operations(lambda: store.save(KEY, b"x", 60, version)) == ["PutItem"]  # type: ignore[arg-type]
        # A failed compare-and-set returns the old item: still one request.
        assert await operations(lambda: store.save(KEY, b"x", 60, version)) == ["PutItem"]  # type: ignore[arg-type]
        assert await operations(lambda: store.save("session:new", b"x", 60, None)) == ["PutItem"]
        assert await operations(lambda: store.delete(KEY)) == ["DeleteItem"]

    async def test_ping_fails_quickly_on_a_closed_port(self) -> None:
        port = free_port()
        session = aioboto3.Session(aws_access_key_id="x", aws_secret_access_key="x")
        store = DynamoDBStore(
            "t", session=session, endpoint_url=f"http://127.0.0.1:{port}", region=REGION
        )
        assert store.address == f"http://127.0.0.1:{port}/t"
        with anyio.fail_after(5), pytest.raises(Exception, match="Could not connect"):
            await store.ping()
        await store.close()


def settings(**config: Any) -> Settings:
    app = Quart(__name__)
    app.config.update(SESSION_TYPE="dynamodb", **config)
    return Settings.from_app(app)


async def test_unreachable_at_startup_names_the_store_and_address(
    dynamodb_server: DynamoDBServer,  # only for its dummy credentials
) -> None:
    port = free_port()
    app = Quart(__name__)
    app.config.update(
        SESSION_TYPE="dynamodb",
        SESSION_DYNAMODB_ENDPOINT_URL=f"http://127.0.0.1:{port}",
        SESSION_DYNAMODB_REGION=REGION,
    )
    Session(app)
    with anyio.fail_after(5), pytest.raises(SessionBackendError) as failure:
        await app.startup()
    await app.session_interface.close()  # type: ignore[attr-defined]
    assert f"'dynamodb' at http://127.0.0.1:{port}/sessions" in str(failure.value)


async def test_settings_pick_endpoint_region_and_table(
    dynamodb_server: DynamoDBServer, raw: Any, table: str
) -> None:
    store = from_settings(
        settings(
            SESSION_DYNAMODB_TABLE=table,
            SESSION_DYNAMODB_ENDPOINT_URL=dynamodb_server.endpoint_url,
            SESSION_DYNAMODB_REGION=REGION,
        )
    )
    version = await create(store)
    await store.close()
    # A second store finds the table (and its TTL setting) already there.
    again = from_settings(
        settings(
            SESSION_DYNAMODB_TABLE=table,
            SESSION_DYNAMODB_ENDPOINT_URL=dynamodb_server.endpoint_url,
            SESSION_DYNAMODB_REGION=REGION,
        )
    )
    assert await again.load(KEY) == Record(b"one", version)  # type: ignore[arg-type]
    await again.close()


async def test_a_client_handed_in_is_used_and_left_open(raw: Any, table: str) -> None:
    store = from_settings(settings(SESSION_DYNAMODB=raw, SESSION_DYNAMODB_TABLE=table))
    version = await create(store)
    await store.close()
    assert await store.load(KEY) == Record(b"one", version)  # type: ignore[arg-type]


async def test_a_resource_or_an_unopened_client_is_refused(
    dynamodb_server: DynamoDBServer,
) -> None:
    session = aioboto3.Session()
    async with session.resource(
        "dynamodb", endpoint_url=dynamodb_server.endpoint_url, region_name=REGION
    ) as resource:
        with pytest.raises(SessionConfigError, match="not a resource"):
            from_settings(settings(SESSION_DYNAMODB=resource))
    unopened = session.client("dynamodb", endpoint_url=dynamodb_server.endpoint_url)
    with pytest.raises(SessionConfigError, match="open aioboto3 DynamoDB client"):
        from_settings(settings(SESSION_DYNAMODB=unopened))
    async with unopened:  # a context never entered would warn when collected
        pass
