"""The SQLAlchemy store's read path, counted on the databases themselves.

A load without refresh is one SELECT: no write reaches the database (SQLite's
``total_changes`` of the store's connection, PostgreSQL's
``pg_stat_user_tables``). A load with refresh, or an expire, writes once, and
only the expiry. A store built from a URL runs its engine in AUTOCOMMIT and
puts a SQLite database in WAL mode.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from quart_session.stores.base import Outcome, Record
from quart_session.stores.sqlalchemy import SQLAlchemyStore, utcnow

from ..servers.postgres import PostgresServer

pytestmark = [pytest.mark.servers, pytest.mark.anyio]

KEY = "session:reads"
Writes = Callable[[], Awaitable[int]]
# Saved with SHORT seconds to live, a refresh (REFRESH seconds) extends the expiry.
SHORT, LONG = 20, 60
REFRESH = 60


async def stored_expiry(store: SQLAlchemyStore) -> datetime:
    table = store.table
    async with store.engine.connect() as conn:
        expiry = await conn.scalar(select(table.c.expiry).where(table.c.id == KEY))
    assert isinstance(expiry, datetime)
    return expiry


class ReadPath:
    """A subclass provides ``store`` and ``writes``: rows the database wrote
    for the store so far (its connection pool holds one connection)."""

    async def test_loads_without_refresh_write_nothing(
        self, store: SQLAlchemyStore, writes: Writes
    ) -> None:
        version = await store.save(KEY, b"one", SHORT, None)
        expiry = await stored_expiry(store)
        before = await writes()
        records = [await store.load(KEY) for _ in range(5)]
        assert await writes() == before
        assert await stored_expiry(store) == expiry
        assert records == [Record(b"one", version)] * 5  # type: ignore[arg-type]
        assert not any(record.refreshed for record in records if record is not None)
        # The expiry read with the row, for the engine to tell when a refresh is due.
        assert {record.expires_at for record in records if record is not None} == {
            expiry.replace(tzinfo=UTC).timestamp()
        }

    async def test_each_load_with_refresh_writes_once_and_extends_the_expiry(
        self, store: SQLAlchemyStore, writes: Writes
    ) -> None:
        version = await store.save(KEY, b"one", SHORT, None)
        expiry = await stored_expiry(store)
        before = await writes()
        record = await store.load(KEY, refresh_ttl=REFRESH)
        assert record == Record(b"one", version)  # type: ignore[arg-type]
        assert record is not None and record.refreshed
        assert await writes() == before + 1
        extended = await stored_expiry(store)
        assert extended - expiry > timedelta(seconds=35)
        assert extended - utcnow() > timedelta(seconds=55)
        # Refreshed just now, and refreshed again: when is the engine's choice.
        again = await store.load(KEY, refresh_ttl=REFRESH)
        assert again is not None and again.refreshed
        assert await writes() == before + 2

    async def test_expire_writes_once_and_only_the_expiry(
        self, store: SQLAlchemyStore, writes: Writes
    ) -> None:
        version = await store.save(KEY, b"one", SHORT, None)
        before = await writes()
        assert await store.expire(KEY, LONG)
        assert await writes() == before + 1
        assert await stored_expiry(store) - utcnow() > timedelta(seconds=55)
        assert await store.load(KEY) == Record(b"one", version)  # type: ignore[arg-type]

    async def test_missing_records_write_nothing(
        self, store: SQLAlchemyStore, writes: Writes
    ) -> None:
        await store.save(KEY, b"one", SHORT, None)
        before = await writes()
        assert await store.load("session:missing", refresh_ttl=REFRESH) is None
        assert await store.expire("session:missing", REFRESH) is False
        assert await writes() == before


class TestSQLiteOwnEngine(ReadPath):
    """The store from_url builds: its engine, AUTOCOMMIT, WAL."""

    @pytest.fixture
    def database(self, tmp_path: Path) -> Path:
        return tmp_path / "sessions.db"

    @pytest.fixture
    async def store(self, database: Path) -> AsyncIterator[SQLAlchemyStore]:
        store = SQLAlchemyStore.from_url(f"sqlite+aiosqlite:///{database}")
        yield store
        await store.close()

    @pytest.fixture
    def writes(self, store: SQLAlchemyStore) -> Writes:
        return lambda: sqlite_total_changes(store.engine)

    async def test_the_database_is_switched_to_wal(
        self, store: SQLAlchemyStore, database: Path
    ) -> None:
        await store.save(KEY, b"one", LONG, None)
        async with store.engine.connect() as conn:
            assert await conn.scalar(text("PRAGMA synchronous")) == 1  # NORMAL
        with sqlite3.connect(database) as reader:
            assert reader.execute("PRAGMA journal_mode").fetchone() == ("wal",)

    async def test_each_write_is_committed_at_once(
        self, store: SQLAlchemyStore, database: Path
    ) -> None:
        await store.save(KEY, b"one", LONG, None)
        await store.load(KEY, refresh_ttl=REFRESH)
        with sqlite3.connect(database) as reader:
            rows = reader.execute(f"SELECT data FROM {store.table.name}").fetchall()
        assert rows == [(b"one",)]

    async def test_a_refresh_leaves_a_concurrent_save_in_place(
        self, store: SQLAlchemyStore, database: Path
    ) -> None:
        """A save landing between a load's SELECT and its refresh UPDATE keeps its
        data and version: the refresh sets the expiry only, and the loader's own
        save then conflicts, as compare-and-set demands."""
        loaded = await store.save(KEY, b"one", SHORT, None)
        saved_meanwhile = 12345

        def save_before_the_refresh(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if statement.startswith("UPDATE"):
                with sqlite3.connect(database) as other:
                    other.execute(
                        f"UPDATE {store.table.name} SET data = ?, version = ? WHERE id = ?",
                        (b"two", saved_meanwhile, KEY),
                    )

        event.listen(store.engine.sync_engine, "before_cursor_execute", save_before_the_refresh)
        try:
            record = await store.load(KEY, refresh_ttl=REFRESH)
        finally:
            event.remove(store.engine.sync_engine, "before_cursor_execute", save_before_the_refresh)
        assert record == Record(b"one", loaded)  # type: ignore[arg-type]
        assert record is not None and record.refreshed
        assert await store.load(KEY) == Record(b"two", saved_meanwhile)
        assert await store.save(KEY, b"three", 60, loaded) is Outcome.CONFLICT  # type: ignore[arg-type]

    async def test_a_database_another_connection_writes_to_is_used_in_its_old_mode(
        self, database: Path
    ) -> None:
        """Switching to WAL fails at once while another connection writes (two
        processes starting on one new file): the store reads and writes on,
        and a later connection switches."""
        rollback_journal = create_async_engine(f"sqlite+aiosqlite:///{database}")
        version = await SQLAlchemyStore(rollback_journal).save(KEY, b"one", LONG, None)
        await rollback_journal.dispose()
        writer = sqlite3.connect(database, isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
        try:
            store = SQLAlchemyStore.from_url(f"sqlite+aiosqlite:///{database}")
            assert await store.load(KEY) == Record(b"one", version)  # type: ignore[arg-type]
        finally:
            writer.rollback()
            writer.close()
        await store.close()
        later = SQLAlchemyStore.from_url(f"sqlite+aiosqlite:///{database}")
        assert isinstance(await later.save(KEY, b"two", LONG, version), int)  # type: ignore[arg-type]
        await later.close()
        with sqlite3.connect(database) as reader:
            assert reader.execute("PRAGMA journal_mode").fetchone() == ("wal",)

    async def test_an_engine_handed_in_keeps_its_journal_mode(self, database: Path) -> None:
        engine = create_async_engine(f"sqlite+aiosqlite:///{database}")
        store = SQLAlchemyStore(engine)
        await store.save(KEY, b"one", LONG, None)
        await engine.dispose()
        with sqlite3.connect(database) as reader:
            assert reader.execute("PRAGMA journal_mode").fetchone() == ("delete",)


class TestSQLiteEngineHandedIn(ReadPath):
    """An application's engine: AUTOCOMMIT is set per connection."""

    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[SQLAlchemyStore]:
        url = f"sqlite+aiosqlite:///{tmp_path / 'sessions.db'}"
        engine = create_async_engine(url, pool_size=1, max_overflow=0)
        yield SQLAlchemyStore(engine)
        await engine.dispose()

    @pytest.fixture
    def writes(self, store: SQLAlchemyStore) -> Writes:
        return lambda: sqlite_total_changes(store.engine)


async def sqlite_total_changes(engine: AsyncEngine) -> int:
    """Rows inserted, updated or deleted through the one connection of *engine*
    (the store's own) since it was opened."""
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        total = raw.driver_connection.total_changes  # type: ignore[union-attr]
    assert isinstance(total, int)
    return total


class TestPostgres(ReadPath):
    @pytest.fixture
    async def store(self, postgres_server: PostgresServer) -> AsyncIterator[SQLAlchemyStore]:
        # One connection: the store's statements and the statistics queries
        # share a backend, whose counts are flushed on demand.
        engine = create_async_engine(postgres_server.url, pool_size=1, max_overflow=0)
        yield SQLAlchemyStore(engine, f"sessions_{secrets.token_hex(4)}")
        await engine.dispose()

    @pytest.fixture
    def writes(self, store: SQLAlchemyStore) -> Writes:
        return lambda: postgres_rows_written(store)

    async def test_repeated_loads_and_expires_run_one_prepared_statement_each(
        self, store: SQLAlchemyStore
    ) -> None:
        """asyncpg prepares a statement per connection and SQL text; a load or
        expire that rebuilt its SQL differently, or defeated the cache, would
        prepare again. A load with refresh and an expire share the UPDATE."""
        await store.save(KEY, b"one", LONG, None)
        for _ in range(7):
            await store.load(KEY, refresh_ttl=REFRESH)
            await store.expire(KEY, REFRESH)
        prepared = await prepared_statements(store, f"SELECT %FROM {store.table.name} %")
        assert [runs for _, runs in prepared] == [7], prepared
        prepared = await prepared_statements(store, f"UPDATE {store.table.name} SET expiry%")
        assert [runs for _, runs in prepared] == [14], prepared

    async def test_a_store_with_its_own_engine_runs_statements_without_transactions(
        self, postgres_server: PostgresServer
    ) -> None:
        store = SQLAlchemyStore.from_url(postgres_server.url, f"sessions_{secrets.token_hex(4)}")
        await store.save(KEY, b"one", SHORT, None)
        # Warm up: each pooled connection prepares a statement the first time.
        await store.load(KEY)

        async def logged(operation: Awaitable[object]) -> list[str]:
            start = postgres_server.log_size()
            await operation
            return postgres_server.statements_since(start)

        try:
            refreshing = await logged(store.load(KEY, refresh_ttl=REFRESH))
            read = await logged(store.load(KEY))
            expired = await logged(store.expire(KEY, REFRESH))
        finally:
            await store.close()
        assert [statement_verb(line) for line in refreshing] == ["SELECT", "UPDATE"], refreshing
        assert [statement_verb(line) for line in read] == ["SELECT"], read
        assert [statement_verb(line) for line in expired] == ["UPDATE"], expired


def statement_verb(logged: str) -> str:
    """The first word of the SQL in a log line ("execute <name>: SELECT ...")."""
    return logged.split(": ", 1)[-1].split()[0]


async def postgres_rows_written(store: SQLAlchemyStore) -> int:
    """Rows inserted, updated or deleted in the store's table, as the server's
    statistics count them once this backend has flushed its pending counts."""
    async with store.engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        # Flushed when this statement's transaction ends (PostgreSQL 15+).
        await conn.execute(text("SELECT pg_stat_force_next_flush()"))
        await conn.execute(text("SELECT pg_stat_clear_snapshot()"))
        written = await conn.scalar(
            text(
                "SELECT n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables"
                " WHERE relname = :table"
            ),
            {"table": store.table.name},
        )
    return int(written)


async def prepared_statements(store: SQLAlchemyStore, like: str) -> list[tuple[str, int]]:
    """The statements prepared on the store's connection whose SQL is *like*
    the pattern, with how often each ran."""
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT statement, generic_plans + custom_plans FROM pg_prepared_statements"
                " WHERE statement LIKE :like"
            ),
            {"like": like},
        )
        return [(statement, int(runs)) for statement, runs in rows]
