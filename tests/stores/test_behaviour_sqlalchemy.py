"""The behaviour suite on SQLite and a real PostgreSQL."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from quart_session.stores.sqlalchemy import row_id, session_table, utcnow

from ..servers.postgres import PostgresServer
from ..suites.behaviour import AllRecords, ReadRaw, SessionBehaviour
from ..suites.concurrency import ConcurrencyBehaviour
from ..suites.encryption import EncryptionBehaviour
from ..suites.lifetimes import LifetimeBehaviour, ReadTtl
from ..suites.outage import OutageBehaviour
from ..suites.race import RegenerateRaceBehaviour
from ..suites.users import UserBehaviour

pytestmark = pytest.mark.servers


class SQLFixtures:
    """A fresh table per test, read directly through the test's engine."""

    @pytest.fixture
    def table(self) -> str:
        return f"sessions_{secrets.token_hex(4)}"

    @pytest.fixture
    def read_raw(self, engine: AsyncEngine, table: str) -> ReadRaw:
        sessions = session_table(table)

        async def read(key: str) -> bytes | None:
            # An expired row is no record, even before it is purged.
            live = (sessions.c.id == row_id(key)) & (sessions.c.expiry > utcnow())
            async with engine.connect() as conn:
                data = await conn.scalar(select(sessions.c.data).where(live))
            return None if data is None else bytes(data)

        return read

    @pytest.fixture
    def all_records(self, engine: AsyncEngine, table: str) -> AllRecords:
        """Every row of the table, expired ones too: its id, and every column."""
        sessions = session_table(table)

        async def every() -> list[tuple[bytes, bytes]]:
            async with engine.connect() as conn:
                rows = (await conn.execute(select(sessions))).all()
            return [
                (
                    row.id.encode(),
                    b" ".join(v if isinstance(v, bytes) else str(v).encode() for v in row),
                )
                for row in rows
            ]

        return every


class HandsInTheEngine(SQLFixtures, EncryptionBehaviour, SessionBehaviour):
    @pytest.fixture
    def store_config(self, engine: AsyncEngine, table: str) -> dict[str, Any]:
        # An engine handed in, so the test disposes of it: the apps here never shut down.
        return {
            "SESSION_TYPE": "sqlalchemy",
            "SESSION_SQLALCHEMY": engine,
            "SESSION_SQLALCHEMY_TABLE": table,
        }


class SQLiteEngine:
    @pytest.fixture
    def url(self, tmp_path: Path) -> str:
        return f"sqlite+aiosqlite:///{tmp_path / 'sessions.db'}"

    @pytest.fixture
    async def engine(self, url: str) -> AsyncIterator[AsyncEngine]:
        engine = create_async_engine(url)
        yield engine
        await engine.dispose()


class PostgresEngine:
    @pytest.fixture
    def url(self, postgres_server: PostgresServer) -> str:
        return postgres_server.url

    @pytest.fixture
    async def engine(self, url: str) -> AsyncIterator[AsyncEngine]:
        engine = create_async_engine(url)
        yield engine
        await engine.dispose()


class TestSQLiteBehaviour(SQLiteEngine, HandsInTheEngine):
    pass


class TestPostgresBehaviour(PostgresEngine, HandsInTheEngine):
    pass


class LifetimesOnTheEngine(SQLFixtures, LifetimeBehaviour):
    @pytest.fixture
    def store_config(self, engine: AsyncEngine, table: str) -> dict[str, Any]:
        return {
            "SESSION_TYPE": "sqlalchemy",
            "SESSION_SQLALCHEMY": engine,
            "SESSION_SQLALCHEMY_TABLE": table,
        }

    @pytest.fixture
    def read_ttl(self, engine: AsyncEngine, table: str) -> ReadTtl:
        """Seconds until the row's expiry column (None: no row, or expired)."""
        sessions = session_table(table)

        async def read(key: str) -> float | None:
            async with engine.connect() as conn:
                expiry = await conn.scalar(
                    select(sessions.c.expiry).where(sessions.c.id == row_id(key))
                )
            left = None if expiry is None else (expiry - utcnow()).total_seconds()
            return left if left is not None and left > 0 else None

        return read


class TestSQLiteLifetimes(SQLiteEngine, LifetimesOnTheEngine):
    pass


class TestPostgresLifetimes(PostgresEngine, LifetimesOnTheEngine):
    pass


class UsersOnTheEngine(SQLFixtures, UserBehaviour):
    @pytest.fixture
    def store_config(self, engine: AsyncEngine, table: str) -> dict[str, Any]:
        return {
            "SESSION_TYPE": "sqlalchemy",
            "SESSION_SQLALCHEMY": engine,
            "SESSION_SQLALCHEMY_TABLE": table,
        }


class TestSQLiteUsers(SQLiteEngine, UsersOnTheEngine):
    pass


class TestPostgresUsers(PostgresEngine, UsersOnTheEngine):
    pass


def url_config(url: str, table: str, **extra: Any) -> dict[str, Any]:
    """Served apps start and shut down, so the store makes and disposes of its engine."""
    return {
        "SESSION_TYPE": "sqlalchemy",
        "SESSION_SQLALCHEMY_URI": url,
        "SESSION_SQLALCHEMY_TABLE": table,
        **extra,
    }


class TestSQLiteConcurrency(SQLiteEngine, SQLFixtures, ConcurrencyBehaviour):
    @pytest.fixture
    def store_config(self, url: str, table: str) -> dict[str, Any]:
        return url_config(url, table)


class TestPostgresConcurrency(PostgresEngine, SQLFixtures, OutageBehaviour):
    @pytest.fixture
    def store_config(self, url: str, table: str) -> dict[str, Any]:
        return url_config(url, table, SESSION_BACKEND_TIMEOUT=self.TIMEOUT)

    @pytest.fixture
    def store_control(self, postgres_server: PostgresServer) -> PostgresServer:
        return postgres_server


class RaceTable:
    """One table for the class: its server, started once, serves every test."""

    @pytest.fixture(scope="class")
    @classmethod
    def table(cls) -> str:
        return f"sessions_{secrets.token_hex(4)}"

    @pytest.fixture(scope="class")
    @classmethod
    def worker_config(cls, url: str, table: str) -> dict[str, Any]:
        return url_config(url, table)


class TestSQLiteRegenerateRace(RaceTable, SQLiteEngine, SQLFixtures, RegenerateRaceBehaviour):
    """Two worker processes on one SQLite file."""

    @pytest.fixture(scope="class")
    @classmethod
    def url(cls, tmp_path_factory: pytest.TempPathFactory) -> str:
        return f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('race') / 'sessions.db'}"


class TestPostgresRegenerateRace(RaceTable, PostgresEngine, SQLFixtures, RegenerateRaceBehaviour):
    @pytest.fixture(scope="class")
    @classmethod
    def url(cls, postgres_server: PostgresServer) -> str:
        return postgres_server.url
