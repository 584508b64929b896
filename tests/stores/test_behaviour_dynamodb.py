"""The behaviour and concurrency suites on moto's DynamoDB server."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from ..servers.dynamodb import CREDENTIALS, REGION, DynamoDBServer
from ..servers.processes import Frozen
from ..suites.behaviour import AllRecords, ReadRaw, SessionBehaviour
from ..suites.encryption import EncryptionBehaviour
from ..suites.lifetimes import LifetimeBehaviour, ReadTtl
from ..suites.outage import OutageBehaviour
from ..suites.race import RegenerateRaceBehaviour
from ..suites.users import UserBehaviour

pytestmark = pytest.mark.servers

# Module-level fixtures: OutageBehaviour's own ``store_config`` builds on this one.


@pytest.fixture
def client(dynamodb_client: Any) -> Any:
    return dynamodb_client


@pytest.fixture
def table() -> str:
    return f"sessions-{uuid.uuid4().hex}"


@pytest.fixture
def store_config(client: Any, table: str) -> dict[str, Any]:
    # A client handed in, so the test closes it: the apps here never shut down.
    return {"SESSION_TYPE": "dynamodb", "SESSION_DYNAMODB": client, "SESSION_DYNAMODB_TABLE": table}


@pytest.fixture
def read_raw(client: Any, table: str) -> ReadRaw:
    async def read(key: str) -> bytes | None:
        reply = await client.get_item(TableName=table, Key={"id": {"S": key}})
        return bytes(reply["Item"]["data"]["B"]) if "Item" in reply else None

    return read


def attribute_bytes(attribute: dict[str, Any]) -> bytes:
    """A DynamoDB attribute value ({"S": ...}, {"B": ...}, {"N": ...}) as bytes."""
    (value,) = attribute.values()
    return bytes(value) if isinstance(value, bytes | bytearray) else str(value).encode()


@pytest.fixture
def all_records(client: Any, table: str) -> AllRecords:
    """Every item of the table (Scan, every page): its id, and every attribute."""

    async def every() -> list[tuple[bytes, bytes]]:
        found = []
        pages = client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
        async for page in pages:
            for item in page["Items"]:
                values = b" ".join(attribute_bytes(value) for value in item.values())
                found.append((attribute_bytes(item["id"]), values))
        return found

    return every


class TestDynamoDBBehaviour(EncryptionBehaviour, SessionBehaviour):
    pass


class TestDynamoDBLifetimes(LifetimeBehaviour):
    @pytest.fixture
    def read_ttl(self, client: Any, table: str) -> ReadTtl:
        """Seconds until the item's ``deadline`` (epoch milliseconds; None: no
        item, or past it)."""

        async def read(key: str) -> float | None:
            reply = await client.get_item(
                TableName=table, Key={"id": {"S": key}}, ConsistentRead=True
            )
            if "Item" not in reply:
                return None
            left = int(reply["Item"]["deadline"]["N"]) / 1000 - time.time()
            return left if left > 0 else None

        return read


class TestDynamoDBUsers(UserBehaviour):
    pass


class TestDynamoDBConcurrency(OutageBehaviour):
    @pytest.fixture
    def store_control(self, dynamodb_server: DynamoDBServer) -> Frozen:
        return Frozen(dynamodb_server.process.pid)


class TestDynamoDBRegenerateRace(RegenerateRaceBehaviour):
    @pytest.fixture(scope="class")
    @classmethod
    def table(cls) -> str:
        return f"sessions-{uuid.uuid4().hex}"

    @pytest.fixture(scope="class")
    @classmethod
    def worker_config(cls, dynamodb_server: DynamoDBServer, table: str) -> dict[str, Any]:
        return {
            "SESSION_TYPE": "dynamodb",
            "SESSION_DYNAMODB_TABLE": table,
            "SESSION_DYNAMODB_ENDPOINT_URL": dynamodb_server.endpoint_url,
            "SESSION_DYNAMODB_REGION": REGION,
        }

    @pytest.fixture(scope="class")
    @classmethod
    def worker_env(cls) -> dict[str, str]:
        # moto accepts any credentials, but botocore will not sign without some.
        return {**CREDENTIALS, "AWS_DEFAULT_REGION": REGION}
