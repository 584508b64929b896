"""The behaviour and concurrency suites on nx-27017, the MongoDB stand-in."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from ..servers.mongodb import MongoServer
from ..servers.processes import Frozen
from ..suites.behaviour import AllRecords, ReadRaw, SessionBehaviour
from ..suites.encryption import EncryptionBehaviour
from ..suites.lifetimes import LifetimeBehaviour, ReadTtl
from ..suites.outage import OutageBehaviour
from ..suites.race import RegenerateRaceBehaviour
from ..suites.users import UserBehaviour

pytestmark = pytest.mark.servers

Document = dict[str, Any]

# Module-level fixtures: OutageBehaviour's own ``store_config`` builds on this one.


@pytest.fixture
def client(mongo_client: AsyncMongoClient[Document]) -> AsyncMongoClient[Document]:
    return mongo_client


@pytest.fixture
def collection() -> str:
    return f"sessions_{uuid.uuid4().hex}"


@pytest.fixture
def store_config(client: AsyncMongoClient[Document], collection: str) -> dict[str, Any]:
    # A client handed in, so the test closes it: the apps here never shut down.
    return {
        "SESSION_TYPE": "mongodb",
        "SESSION_MONGODB": client,
        "SESSION_MONGODB_COLLECTION": collection,
    }


@pytest.fixture
def read_raw(client: AsyncMongoClient[Document], collection: str) -> ReadRaw:
    async def read(key: str) -> bytes | None:
        document = await client["quart_session"][collection].find_one({"_id": key})
        return None if document is None else bytes(document["data"])

    return read


def as_bytes(value: Any) -> bytes:
    return bytes(value) if isinstance(value, bytes) else str(value).encode()


@pytest.fixture
def all_records(client: AsyncMongoClient[Document], collection: str) -> AllRecords:
    """Every document of the collection: its _id, and every field's value."""

    async def every() -> list[tuple[bytes, bytes]]:
        documents = await client["quart_session"][collection].find({}).to_list()
        return [
            (as_bytes(doc["_id"]), b" ".join(as_bytes(value) for value in doc.values()))
            for doc in documents
        ]

    return every


class TestMongoDBBehaviour(EncryptionBehaviour, SessionBehaviour):
    pass


class TestMongoDBLifetimes(LifetimeBehaviour):
    # nx-27017 compares a deadline written by $set (a refresh) in whole seconds:
    # such a record may be gone up to a second early.
    COARSE_EXPIRY = True

    @pytest.fixture
    def read_ttl(self, client: AsyncMongoClient[Document], collection: str) -> ReadTtl:
        """Seconds until the document's ``expiry`` date (None: none, or past)."""

        async def read(key: str) -> float | None:
            document = await client["quart_session"][collection].find_one({"_id": key})
            if document is None:
                return None
            expiry = document["expiry"]
            if isinstance(expiry, str):  # nx-27017 gives back a date $set wrote as text
                expiry = datetime.fromisoformat(expiry)
            # Naive, in UTC, with this client's default codec options.
            left = (expiry.replace(tzinfo=UTC) - datetime.now(UTC)).total_seconds()
            return left if left > 0 else None

        return read


class TestMongoDBUsers(UserBehaviour):
    pass


class TestMongoDBConcurrency(OutageBehaviour):
    @pytest.fixture
    def store_control(self, mongo_server: MongoServer) -> Frozen:
        return Frozen(mongo_server.process.pid)


class TestMongoDBRegenerateRace(RegenerateRaceBehaviour):
    @pytest.fixture(scope="class")
    @classmethod
    def collection(cls) -> str:
        return f"sessions_{uuid.uuid4().hex}"

    @pytest.fixture(scope="class")
    @classmethod
    def worker_config(cls, mongo_server: MongoServer, collection: str) -> dict[str, Any]:
        return {
            "SESSION_TYPE": "mongodb",
            "SESSION_MONGODB_URI": mongo_server.uri,
            "SESSION_MONGODB_COLLECTION": collection,
        }
