from __future__ import annotations

import math
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import aioboto3
import anyio
import pytest
from botocore.exceptions import EndpointConnectionError
from quart import Quart

from quart_session.config import Settings
from quart_session.errors import SessionConfigError
from quart_session.stores.base import Record, Version
from quart_session.stores.dynamodb import DynamoDBStore, from_settings

from ..servers.dynamodb import REGION, DynamoDBServer, RequestCounter
from ..servers.processes import free_port
from ..suites.contract import KEY, ExpiredLeftovers, StoreContract, create
from ..suites.outage import Unreachable, UnreachableStore

pytestmark = [pytest.mark.servers, pytest.mark.anyio]


@pytest.fixture
def table() -> str:
    """A table of its own per test: a fresh, empty store."""
    return f"sessions-{uuid.uuid4().hex}"


@pytest.fixture
def raw(dynamodb_client: Any) -> Any:
    """A plain client of the test's own, to look at what the store wrote."""
    return dynamodb_client


@pytest.fixture
async def store(dynamodb_server: DynamoDBServer, table: str) -> AsyncIterator[DynamoDBStore]:
    store = DynamoDBStore(table, endpoint_url=dynamodb_server.endpoint_url, region=REGION)
    yield store
    await store.close()


async def stored_item(raw: Any, table: str) -> Any:
    """The item at KEY as DynamoDB holds it."""
    return (await raw.get_item(TableName=table, Key={"id": {"S": KEY}}))["Item"]


class DynamoDBLeftovers:
    """Items past their expiry that DynamoDB's (lazy) TTL has not removed yet."""

    def __init__(self, raw: Any, table: str) -> None:
        self.raw = raw
        self.table = table

    async def plant(self, keys: Sequence[str]) -> list[Version]:
        for key in keys:
            await self.raw.put_item(
                TableName=self.table,
                Item={
                    "id": {"S": key},
                    "data": {"B": b"old"},
                    "version": {"N": "7"},
                    "deadline": {"N": str(int(time.time() * 1000) - 5000)},
                    "expiry": {"N": str(int(time.time()) - 5)},
                },
            )
        return [7] * len(keys)

    async def stored(self, key: str) -> bool:
        return "Item" in await self.raw.get_item(TableName=self.table, Key={"id": {"S": key}})


@pytest.fixture
async def leftovers(store: DynamoDBStore, raw: Any, table: str) -> DynamoDBLeftovers:
    await store.ping()  # creates the table
    return DynamoDBLeftovers(raw, table)


class TestDynamoDBStore(StoreContract, ExpiredLeftovers):
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
        assert await store.expire(KEY, 300)
        deadline, expiry = await remaining()
        assert 290 < deadline <= 300 and 290 < expiry <= 301

    async def test_a_load_without_refresh_writes_nothing_and_reports_the_deadline(
        self, store: DynamoDBStore, raw: Any, table: str
    ) -> None:
        version = await create(store, ttl=60)
        before = await stored_item(raw, table)
        record = await store.load(KEY)
        assert record == Record(b"one", version) and not record.refreshed  # type: ignore[arg-type]
        assert record.expires_at == int(before["deadline"]["N"]) / 1000
        assert await stored_item(raw, table) == before  # deadline and expiry included

    @pytest.mark.parametrize("move", ["load", "expire"])
    async def test_a_refresh_and_expire_move_the_deadline_alone(
        self, store: DynamoDBStore, raw: Any, table: str, move: str
    ) -> None:
        version = await create(store, ttl=60)
        before = await stored_item(raw, table)
        if move == "load":
            record = await store.load(KEY, refresh_ttl=120)
            assert record == Record(b"one", version) and record.refreshed  # type: ignore[arg-type]
        else:
            assert await store.expire(KEY, 120)
        after = await stored_item(raw, table)
        assert (after["data"], after["version"]) == (before["data"], before["version"])
        assert 115 < int(after["deadline"]["N"]) / 1000 - time.time() <= 120
        assert 115 < int(after["expiry"]["N"]) - time.time() <= 121  # whole seconds, rounded up

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
        # A refresh is the read and an update of the deadline; expire, the update alone.
        refreshing = await operations(lambda: store.load(KEY, refresh_ttl=60))
        assert refreshing == ["GetItem", "UpdateItem"]
        assert await operations(lambda: store.expire(KEY, 60)) == ["UpdateItem"]
        assert await operations(lambda: store.expire("session:missing", 60)) == ["UpdateItem"]
        assert await operations(lambda: store.save("session:new", b"x", 60, None)) == ["PutItem"]
        assert await operations(lambda: store.save(KEY, b"x", 60, version)) == ["PutItem"]  # type: ignore[arg-type]
        # A failed compare-and-set returns the old item: still one request.
        assert await operations(lambda: store.save(KEY, b"x", 60, version)) == ["PutItem"]  # type: ignore[arg-type]
        assert await operations(lambda: store.save("session:new", b"x", 60, None)) == ["PutItem"]
        assert await operations(lambda: store.delete(KEY)) == ["DeleteItem"]


class TestDynamoDBUnreachable(UnreachableStore):
    @pytest.fixture
    def unreachable(
        self,
        dynamodb_server: DynamoDBServer,  # only for its dummy credentials
    ) -> Unreachable:
        port = free_port()
        return Unreachable(
            config={
                "SESSION_TYPE": "dynamodb",
                "SESSION_DYNAMODB_ENDPOINT_URL": f"http://127.0.0.1:{port}",
                "SESSION_DYNAMODB_REGION": REGION,
            },
            address=f"http://127.0.0.1:{port}/sessions",
            error=EndpointConnectionError,
            match="Could not connect",
        )


def settings(**config: Any) -> Settings:
    app = Quart(__name__)
    app.config.update(SESSION_TYPE="dynamodb", **config)
    return Settings.from_app(app)


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
