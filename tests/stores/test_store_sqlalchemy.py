from __future__ import annotations

import secrets
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from quart import Quart
from sqlalchemy import event, func, inspect, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from quart_session.config import Settings
from quart_session.errors import SessionConfigError
from quart_session.interface import ServerSideSessionInterface
from quart_session.stores.base import Record, Version
from quart_session.stores.sqlalchemy import (
    MAX_ID_LENGTH,
    SQLAlchemyStore,
    from_settings,
    row_id,
    session_table,
)

from ..servers.postgres import PostgresServer
from ..servers.processes import free_port
from ..suites.behaviour import Browser, SlowStore, build_app
from ..suites.contract import KEY, ExpiredLeftovers, StoreContract, create
from ..suites.outage import Unreachable, UnreachableStore

pytestmark = [pytest.mark.servers, pytest.mark.anyio]


@contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """Collects the SQL statements *engine* sends while the block runs."""
    sent: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def sent_by(engine: AsyncEngine, operation: Awaitable[object]) -> list[str]:
    with statements(engine) as sent:
        await operation
    return sent


async def rows(store: SQLAlchemyStore, engine: AsyncEngine) -> dict[str, bytes]:
    """Every row of the store's table, expired or not: id -> data."""
    table = store.table
    async with engine.connect() as conn:
        result = await conn.execute(select(table.c.id, table.c.data))
        return {row.id: row.data for row in result}


class SQLLeftovers:
    """Rows the store wrote that expired: they stay until purged."""

    def __init__(self, store: SQLAlchemyStore, engine: AsyncEngine) -> None:
        self.store = store
        self.engine = engine

    async def plant(self, keys: Sequence[str]) -> list[Version]:
        versions = [await create(self.store, key=key, ttl=1) for key in keys]
        await anyio.sleep(1.6)
        return versions  # type: ignore[return-value]

    async def stored(self, key: str) -> bool:
        return key in await rows(self.store, self.engine)


class SQLStoreTests(StoreContract, ExpiredLeftovers):
    """The contract plus what a SQL store promises, on each database."""

    @pytest.fixture
    def leftovers(self, store: SQLAlchemyStore, engine: AsyncEngine) -> SQLLeftovers:
        return SQLLeftovers(store, engine)

    @pytest.fixture
    def table(self) -> str:
        return f"sessions_{secrets.token_hex(4)}"

    @pytest.fixture
    async def store(self, engine: AsyncEngine, table: str) -> AsyncIterator[SQLAlchemyStore]:
        store = SQLAlchemyStore(engine, table)
        yield store
        await store.close()

    async def test_table_is_created_with_an_expiry_index_on_first_use(
        self, store: SQLAlchemyStore, engine: AsyncEngine, table: str
    ) -> None:
        async with engine.connect() as conn:
            assert not await conn.run_sync(lambda sync: inspect(sync).has_table(table))
        await store.load("session:first")
        async with engine.connect() as conn:
            indexes = await conn.run_sync(lambda sync: inspect(sync).get_indexes(table))
        assert [index["column_names"] for index in indexes] == [["expiry"]]

    async def test_stores_racing_to_create_the_table_all_work(
        self, engine: AsyncEngine, table: str
    ) -> None:
        stores = [SQLAlchemyStore(engine, table) for _ in range(5)]
        async with anyio.create_task_group() as group:
            for n, store in enumerate(stores):
                group.start_soon(store.save, f"session:{n}", b"x", 60, None)
        assert await stores[0].count("session:") == 5

    async def test_purge_expired_deletes_the_rows(
        self, store: SQLAlchemyStore, engine: AsyncEngine
    ) -> None:
        for n in range(3):
            await create(store, key=f"session:old{n}", ttl=1)
        await create(store, key="session:live", ttl=60)
        await anyio.sleep(2.1)
        assert await store.purge_expired() == 3
        assert list(await rows(store, engine)) == ["session:live"]

    async def test_count_sees_live_records_whose_key_starts_with_the_prefix(
        self, store: SQLAlchemyStore
    ) -> None:
        for key in ("session:a", "session:b", "Session:c", "sessionXd", "other:e", "session"):
            await create(store, key=key)
        await create(store, key="session:expired", ttl=1)
        await anyio.sleep(2.1)
        assert await store.count("session:") == 2
        assert await store.count("session_") == 0  # no LIKE wildcards
        assert await store.count("") == 6

    async def test_short_keys_are_row_ids_and_long_ones_stay_apart(
        self, store: SQLAlchemyStore, engine: AsyncEngine
    ) -> None:
        long_a, long_b = "p" * 300 + "a", "p" * 300 + "b"
        await create(store, key="session:short", payload=b"s")
        await create(store, key=long_a, payload=b"a")
        await create(store, key=long_b, payload=b"b")
        stored = await rows(store, engine)
        assert stored["session:short"] == b"s"
        assert {len(key) for key in stored} == {len("session:short"), MAX_ID_LENGTH}
        assert stored[row_id(long_a)] == b"a" and stored[row_id(long_b)] == b"b"
        assert row_id("q" * (MAX_ID_LENGTH - 1)) == "q" * (MAX_ID_LENGTH - 1)

    async def test_each_operation_is_one_statement(
        self, store: SQLAlchemyStore, engine: AsyncEngine
    ) -> None:
        key = "session:rt"
        await store.load(key)  # creates the table
        assert len(await sent_by(engine, store.load(key))) == 1
        assert len(await sent_by(engine, store.save(key, b"a", 60, None))) == 1
        record = await store.load(key)
        assert record is not None
        read = await sent_by(engine, store.load(key))
        assert [statement.split()[0] for statement in read] == ["SELECT"]
        # Asked to refresh: the expiry is moved on the same connection.
        refreshing = await sent_by(engine, store.load(key, refresh_ttl=90))
        assert [statement.split()[0] for statement in refreshing] == ["SELECT", "UPDATE"]
        expired = await sent_by(engine, store.expire(key, 90))
        assert [statement.split()[0] for statement in expired] == ["UPDATE"]
        assert len(await sent_by(engine, store.save(key, b"b", 60, record.version))) == 1
        assert len(await sent_by(engine, store.delete(key))) == 1
        # Failures take one more statement to say why.
        assert len(await sent_by(engine, store.save(key, b"c", 60, record.version))) == 2
        await store.save(key, b"d", 60, None)
        assert len(await sent_by(engine, store.save(key, b"e", 60, None))) == 2

    async def test_an_engine_handed_in_is_left_open(self, engine: AsyncEngine, table: str) -> None:
        store = from_settings(settings(SESSION_SQLALCHEMY=engine, SESSION_SQLALCHEMY_TABLE=table))
        await create(store)
        await store.close()
        async with engine.connect() as conn:
            assert await conn.scalar(select(func.count()).select_from(session_table(table))) == 1


class TestSQLiteStore(SQLStoreTests):
    @pytest.fixture
    async def engine(self, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
        engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'sessions.db'}")
        yield engine
        await engine.dispose()

    async def test_a_url_setting_builds_an_engine_of_its_own(self, tmp_path: Path) -> None:
        url = f"sqlite+aiosqlite:///{tmp_path / 'own.db'}"
        store = from_settings(settings(SESSION_SQLALCHEMY_URI=url))
        assert store.address == url
        await create(store)
        await store.close()
        assert (tmp_path / "own.db").stat().st_size > 0


class TestPostgresStore(SQLStoreTests):
    @pytest.fixture
    async def engine(self, postgres_server: PostgresServer) -> AsyncIterator[AsyncEngine]:
        engine = create_async_engine(postgres_server.url)
        yield engine
        await engine.dispose()

    async def test_the_server_runs_one_statement_per_operation_without_transactions(
        self, store: SQLAlchemyStore, postgres_server: PostgresServer
    ) -> None:
        key = "session:server-side"
        await store.ping()
        # Warm up: each pooled connection prepares a statement the first time.
        for _ in range(2):
            version = await store.save(key, b"a", 60, None)
            await store.load(key)
            await store.load(key, refresh_ttl=60)
            await store.expire(key, 60)
            await store.save(key, b"b", 60, version)  # type: ignore[arg-type]
            await store.delete(key)

        async def logged(operation: Awaitable[object]) -> list[str]:
            start = postgres_server.log_size()
            await operation
            return postgres_server.statements_since(start)

        created = await logged(store.save(key, b"a", 60, None))
        assert len(created) == 1 and "INSERT INTO" in created[0], created
        record = await store.load(key)
        assert record is not None
        for operation in (
            store.load(key),
            store.expire(key, 60),
            store.save(key, b"b", 60, record.version),
            store.delete(key),
        ):
            logged_statements = await logged(operation)
            assert len(logged_statements) == 1, logged_statements
            assert "BEGIN" not in logged_statements[0]

    async def test_operations_cut_short_by_a_timeout_leave_the_store_working(
        self, store: SQLAlchemyStore, engine: AsyncEngine
    ) -> None:
        version = await create(store)
        table = store.table
        async with engine.connect() as locker:
            # Holding the row lock makes the store's writes wait until cancelled.
            await locker.execute(select(table).where(table.c.id == KEY).with_for_update())
            for write in (
                store.load(KEY, 60),
                store.expire(KEY, 60),
                store.save(KEY, b"late", 60, version),  # type: ignore[arg-type]
            ):
                with anyio.move_on_after(0.5) as waited:
                    await write
                assert waited.cancelled_caught
            await locker.rollback()
        # The server may still apply a write its client gave up on; either way
        # the store goes on with a consistent record.
        record = await store.load(KEY)
        assert record is not None and record.payload in (b"one", b"late")
        saved = await store.save(KEY, b"two", 60, record.version)
        assert await store.load(KEY) == Record(b"two", saved)  # type: ignore[arg-type]


class TestSQLiteStoreWithItsOwnEngine(StoreContract):
    """The contract on the engine from_url builds: AUTOCOMMIT, WAL, no rollback
    when a connection goes back to the pool."""

    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[SQLAlchemyStore]:
        store = SQLAlchemyStore.from_url(f"sqlite+aiosqlite:///{tmp_path / 'own.db'}")
        yield store
        await store.close()


class TestPostgresStoreWithItsOwnEngine(StoreContract):
    @pytest.fixture
    async def store(self, postgres_server: PostgresServer) -> AsyncIterator[SQLAlchemyStore]:
        table = f"sessions_{secrets.token_hex(4)}"
        store = SQLAlchemyStore.from_url(postgres_server.url, table)
        yield store
        await store.close()


class TestPostgresUnreachable(UnreachableStore):
    @pytest.fixture
    def unreachable(self) -> Unreachable:
        port = free_port()
        return Unreachable(
            config={
                "SESSION_TYPE": "sqlalchemy",
                "SESSION_URI": f"postgresql+asyncpg://app:secret@127.0.0.1:{port}/db",
            },
            address=f"postgresql+asyncpg://app:***@127.0.0.1:{port}/db",
            error=OSError,
            match="Connect call failed",
            hidden=("secret",),
        )


def settings(**config: Any) -> Settings:
    app = Quart(__name__)
    app.config.update(SESSION_TYPE="sqlalchemy", **config)
    return Settings.from_app(app)


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({}, "needs SESSION_SQLALCHEMY"),
        ({"SESSION_SQLALCHEMY": object()}, "must be an AsyncEngine"),
        ({"SESSION_SQLALCHEMY_URI": "not a url"}, "is not a SQLAlchemy URL"),
        ({"SESSION_SQLALCHEMY_URI": "sqlite:///x.db"}, "asyncio driver"),
        ({"SESSION_URI": "nosuchdb+nodriver://h/db"}, "cannot be used"),
        (
            {"SESSION_SQLALCHEMY_URI": "sqlite+aiosqlite://", "SESSION_SQLALCHEMY_TABLE": ""},
            "TABLE",
        ),
    ],
)
def test_bad_settings_are_refused(config: dict[str, Any], problem: str) -> None:
    with pytest.raises(SessionConfigError, match=problem):
        from_settings(settings(**config))


def sqlite_app(database: Path) -> Quart:
    """The test app on a SQLite file, with a 1 s timeout (SQLite waits 0.5 s
    for a lock)."""
    config = {
        "SESSION_TYPE": "sqlalchemy",
        "SESSION_SQLALCHEMY_URI": f"sqlite+aiosqlite:///{database}",
        "SESSION_BACKEND_TIMEOUT": 1.0,
    }
    return build_app(config, database.parent)


@contextmanager
def locked(database: Path, mode: str) -> Iterator[None]:
    """*database* locked by another connection (``BEGIN`` *mode*) in the block."""
    locker = sqlite3.connect(database)
    locker.execute(f"BEGIN {mode}")
    try:
        yield
    finally:
        locker.rollback()
        locker.close()


async def timed(browser: Browser, path: str) -> tuple[int, float]:
    """The status of GET *path* and the seconds it took."""
    started = time.monotonic()
    response = await browser.get(path)
    return response.status_code, time.monotonic() - started


@pytest.mark.anyio
async def test_a_locked_sqlite_database_answers_503_in_time_and_leaves_nothing_hanging(
    tmp_path: Path,
) -> None:
    database = tmp_path / "locked.db"
    app = sqlite_app(database)
    browser = Browser(app)
    await browser.text("/set/user/alice")
    with locked(database, "EXCLUSIVE"):
        status, elapsed = await timed(browser, "/set/user/bob")
    assert (status, elapsed < 2.0) == (503, True), elapsed
    assert await browser.text("/get/user") == "'alice'"
    await app.session_interface.close()  # type: ignore[attr-defined]


@pytest.mark.anyio
async def test_a_save_with_less_time_left_than_sqlite_waits_for_a_lock_hangs_nothing(
    tmp_path: Path,
) -> None:
    # After a 0.7 s load the save has 0.3 s left, less than SQLite's own wait
    # for the lock: cut short by our timeout, aiosqlite's call would leave the
    # connection stuck. It must not start: a 503 in time, the store working
    # after, the app able to close.
    database = tmp_path / "locked.db"
    app = sqlite_app(database)
    browser = Browser(app)
    await browser.text("/set/user/alice")
    interface = app.session_interface
    assert isinstance(interface, ServerSideSessionInterface)
    fast = interface.store
    interface.engine.store = SlowStore(fast, 0.7, saves=False)
    with locked(database, "IMMEDIATE"):  # writers wait, readers do not
        status, elapsed = await timed(browser, "/set/user/bob")
    assert (status, elapsed < 1.5) == (503, True), elapsed
    interface.engine.store = fast
    assert await browser.text("/get/user") == "'alice'"
    assert await browser.text("/set/user/carol") == "ok"
    assert await browser.text("/get/user") == "'carol'"
    with anyio.fail_after(3):
        await interface.close()
