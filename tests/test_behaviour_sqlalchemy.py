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

from .behaviour import ReadRaw, SessionBehaviour
from .postgres_servers import PostgresServer, postgres_server_fixture  # noqa: F401

pytestmark = pytest.mark.servers


class SQLBehaviour(SessionBehaviour):
    @pytest.fixture
    def table(self) -> str:
        return f"sessions_{secrets.token_hex(4)}"

    @pytest.fixture
    def store_config(self, engine: AsyncEngine, table: str) -> dict[str, Any]:
        # An engine handed in, so the test disposes of it: the apps here never shut down.
        return {
            "SESSION_TYPE": "sqlalchemy",
            "SESSION_SQLALCHEMY": engine,
            "SESSION_SQLALCHEMY_TABLE": table,
        }

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


class TestSQLiteBehaviour(SQLBehaviour):
    @pytest.fixture
    async def engine(self, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
        engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'sessions.db'}")
        yield engine
        await engine.dispose()


class TestPostgresBehaviour(SQLBehaviour):
    @pytest.fixture
    async def engine(self, postgres_server: PostgresServer) -> AsyncIterator[AsyncEngine]:
        engine = create_async_engine(postgres_server.url)
        yield engine
        await engine.dispose()
