"""A store in a SQL table, through SQLAlchemy's asyncio engine (asyncio only).

Every operation is one statement (two for a load that refreshes, or a save
that fails) run in autocommit mode: a single statement is atomic on its own,
and no BEGIN/COMMIT round trips are spent around it.

* load: ``SELECT`` of data, version and expiry (reported as
  ``Record.expires_at``); asked to refresh, an ``UPDATE ... SET expiry``
  follows on the same connection;
* expire: that ``UPDATE ... SET expiry`` alone, on a live row. It never touches
  data or version, so a concurrent save's compare-and-set is not disturbed;
* create: ``INSERT``; a taken id is a conflict, unless its row has expired;
* save: ``UPDATE ... WHERE id = :id AND version = :v`` on live rows; only when
  no row matched does a ``SELECT`` tell a conflict from a deleted record.

Expired rows are never read and are removed by ``purge_expired``. Versions are
random, so a record deleted and created again never repeats an old version.
Expiry times are naive UTC datetimes, which every dialect stores alike.

The load and expire statements are built once per store with bound parameters:
each call only binds values, and the SQL string stays the same, so SQLAlchemy's
compiled cache and the driver's prepared statements (asyncpg's) are reused.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import anyio
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    LargeBinary,
    MetaData,
    String,
    Table,
    bindparam,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.mysql import LONGBLOB
from sqlalchemy.engine import URL, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, InvalidRequestError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from ..errors import SessionConfigError
from .base import Outcome, Record, SaveResult, Store, Version

if TYPE_CHECKING:
    from ..config import Settings

MAX_ID_LENGTH = 255
"""Fits a primary key on every common database (MySQL's included)."""
#: Row ids per statement when listing keys.
LIST_PAGE = 500
_HEAD_LENGTH = MAX_ID_LENGTH - 44  # room for "~" and a 43-character SHA-256


def row_id(key: str) -> str:
    """*key* as a row id: unchanged when shorter than 255 characters, else its
    first 211 characters, "~" and its hash. Ids of exactly 255 characters are
    always hashed ones, so a kept key never equals a hashed one."""
    if len(key) < MAX_ID_LENGTH:
        return key
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
    return f"{key[:_HEAD_LENGTH]}~{base64.urlsafe_b64encode(digest).rstrip(b'=').decode()}"


def session_table(name: str) -> Table:
    return Table(
        name,
        MetaData(),
        Column("id", String(MAX_ID_LENGTH), primary_key=True),
        # MySQL's BLOB stops at 64 KiB.
        Column("data", LargeBinary().with_variant(LONGBLOB(), "mysql", "mariadb"), nullable=False),
        Column("version", BigInteger, nullable=False),
        Column("expiry", DateTime, nullable=False, index=True),
    )


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def epoch(expiry: datetime) -> float:
    """An expiry as stored (naive UTC) in seconds since the epoch."""
    return expiry.replace(tzinfo=UTC).timestamp()


def use_wal(engine: AsyncEngine) -> None:
    """Put the SQLite database of *engine* in WAL mode, with synchronous=NORMAL.

    In WAL mode readers do not wait for a writer (nor it for them), and under
    synchronous=NORMAL a commit appends to the log without an fsync of its
    own: a power cut may lose the last commits, never corrupt the database.
    """
    event.listen(engine.sync_engine, "connect", _switch_to_wal)


def _switch_to_wal(dbapi_connection: DBAPIConnection, _: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    try:
        try:
            # Stored in the database file: a no-op once the file is in WAL mode.
            cursor.execute("PRAGMA journal_mode=WAL")
            in_wal = cursor.fetchone() == ("wal",)
        except sqlite3.OperationalError:
            # Switching needs the file to itself for a moment, and fails at once
            # (no busy wait) while another connection writes, e.g. a second
            # process creating the table: this connection goes on in the old
            # mode, and the next connection (of any process) tries again.
            return
        # Per connection; only in WAL mode, where it cannot corrupt the database.
        if in_wal:
            cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


class SQLAlchemyStore(Store):
    name = "sqlalchemy"
    can_count = True
    can_list = True
    needs_purge = True

    def __init__(
        self, engine: AsyncEngine, table: str = "sessions", *, owns_engine: bool = False
    ) -> None:
        self._engine = engine
        #: The sessions table (tests query it with their own statements).
        self.table = session_table(table)
        self._owns_engine = owns_engine
        #: Whether the engine runs every connection in AUTOCOMMIT (as from_url
        #: builds it); an engine handed in is switched per connection instead.
        self._engine_autocommits = False
        self.table_ready = False
        self.table_lock = anyio.Lock()
        sessions = self.table
        live = (sessions.c.id == bindparam("row_id")) & (sessions.c.expiry > bindparam("now"))
        self._read = select(sessions.c.data, sessions.c.version, sessions.c.expiry).where(live)
        self._set_expiry = update(sessions).where(live).values(expiry=bindparam("new_expiry"))

    @classmethod
    def from_url(
        cls, url: str | URL, table: str = "sessions", *, lock_timeout: float | None = None
    ) -> SQLAlchemyStore:
        """A store with its own engine; ``close`` disposes of it.

        On SQLite, *lock_timeout* bounds the wait for a database locked by
        another process: kept below SESSION_BACKEND_TIMEOUT, the driver gives up
        by itself, because an aiosqlite operation cancelled by our timeout can
        leave its connection stuck; a call with less of its request's time left
        than that wait is not started (``needs_at_least``). Within this process
        one connection serves every request: SQLite writes one at a time anyway,
        and requests then queue in the pool, fairly and cancellably, instead of
        in SQLite's busy loop.

        The engine runs in AUTOCOMMIT (every statement of the store stands
        alone), and a SQLite database it opens is switched to WAL.
        """
        url = make_url(url)
        options: dict[str, Any] = {"isolation_level": "AUTOCOMMIT"}
        sqlite = url.get_backend_name() == "sqlite"
        if sqlite:
            # Closing a connection rolls back what SQLAlchemy began, even in
            # AUTOCOMMIT where there is nothing to roll back: on aiosqlite a
            # thread hop per operation (about 40 us of a 350 us load). The store
            # never opens a transaction, so skipping it is safe.
            # (pool_reset_on_return=None would not help: the pool sees that
            # reset done already.)
            options.update(pool_size=1, max_overflow=0, skip_autocommit_rollback=True)
            if lock_timeout is not None:
                options["connect_args"] = {"timeout": lock_timeout}
        engine = create_async_engine(url, **options)
        if sqlite:
            use_wal(engine)
        store = cls(engine, table, owns_engine=True)
        store._engine_autocommits = True
        if sqlite and lock_timeout is not None:
            # The driver's wait, and a quarter more for its answer to arrive.
            store.needs_at_least = lock_timeout * 1.25
        return store

    @property
    def engine(self) -> AsyncEngine:
        """The engine the store runs on (its own, or the application's)."""
        return self._engine

    @property
    def address(self) -> str:
        return self._engine.url.render_as_string(hide_password=True)

    async def _create_table(self) -> None:
        async with self.table_lock:
            if self.table_ready:
                return
            try:
                await self._create_table_if_missing()
            except DBAPIError:
                # Another process may have created it between our check and our
                # CREATE TABLE: checking again finds it (or raises the real error).
                await self._create_table_if_missing()
            self.table_ready = True

    async def _create_table_if_missing(self) -> None:
        async with self._engine.begin() as conn:
            await conn.run_sync(self.table.create, checkfirst=True)

    @asynccontextmanager
    async def _connect(self) -> AsyncIterator[AsyncConnection]:
        if not self.table_ready:
            await self._create_table()
        async with self._engine.connect() as conn:
            if self._engine_autocommits:
                yield conn
            else:
                yield await conn.execution_options(isolation_level="AUTOCOMMIT")

    async def load(self, key: str, refresh_ttl: int | None = None) -> Record | None:
        now = utcnow()
        live = {"row_id": row_id(key), "now": now}
        async with self._connect() as conn:
            row = (await conn.execute(self._read, live)).first()
            if row is None:
                return None
            record = Record(bytes(row.data), row.version, expires_at=epoch(row.expiry))
            if refresh_ttl is None:
                return record
            new_expiry = now + timedelta(seconds=refresh_ttl)
            refreshed = await conn.execute(self._set_expiry, {**live, "new_expiry": new_expiry})
        # No row matched: deleted between the two statements (the same *now* cannot expire it).
        if not refreshed.rowcount:
            return None
        return replace(record, refreshed=True, expires_at=epoch(new_expiry))

    async def expire(self, key: str, ttl: int) -> bool:
        now = utcnow()
        values = {"row_id": row_id(key), "now": now, "new_expiry": now + timedelta(seconds=ttl)}
        async with self._connect() as conn:
            reset = await conn.execute(self._set_expiry, values)
        return bool(reset.rowcount)

    async def save(
        self, key: str, payload: bytes, ttl: int, expected: Version | None
    ) -> SaveResult:
        table = self.table
        now = utcnow()
        version = secrets.randbits(63)
        id_ = row_id(key)
        values = {"data": payload, "version": version, "expiry": now + timedelta(seconds=ttl)}
        async with self._connect() as conn:
            if expected is None:
                created = await self._insert(conn, {"id": id_, **values}, now)
                return version if created else Outcome.CONFLICT
            same_row = table.c.id == id_
            written = await conn.execute(
                update(table)
                .where(same_row, table.c.version == int(expected), table.c.expiry > now)
                .values(values)
            )
            if written.rowcount == 1:
                return version
            live = await conn.scalar(select(table.c.version).where(same_row, table.c.expiry > now))
        return Outcome.GONE if live is None else Outcome.CONFLICT

    async def _insert(
        self, conn: AsyncConnection, values: dict[str, object], now: datetime
    ) -> bool:
        """Insert a new row; False if a live row holds the id (races included)."""
        table = self.table
        try:
            await conn.execute(insert(table).values(values))
            return True
        except IntegrityError:
            pass
        # The id is taken, by a live row (a conflict) or by an expired one, which gives way.
        purged = await conn.execute(
            delete(table).where(table.c.id == values["id"], table.c.expiry <= now)
        )
        if purged.rowcount == 0:
            return False
        try:
            await conn.execute(insert(table).values(values))
        except IntegrityError:
            return False
        return True

    async def delete(self, key: str) -> None:
        async with self._connect() as conn:
            await conn.execute(delete(self.table).where(self.table.c.id == row_id(key)))

    async def purge_expired(self) -> int:
        async with self._connect() as conn:
            purged = await conn.execute(delete(self.table).where(self.table.c.expiry <= utcnow()))
        return purged.rowcount

    async def count(self, prefix: str) -> int:
        """Live records whose key starts with *prefix* (exact for prefixes of up
        to 211 characters: longer keys are stored hashed after those)."""
        table = self.table
        # substr, not LIKE: LIKE ignores case on SQLite and treats % and _ as wildcards.
        starts = func.substr(table.c.id, 1, len(prefix)) == prefix
        async with self._connect() as conn:
            total = await conn.scalar(
                select(func.count()).select_from(table).where(starts, table.c.expiry > utcnow())
            )
        return int(total or 0)

    async def keys(self, prefix: str) -> AsyncIterator[str]:
        """Keys of live rows starting with *prefix*, a page per statement (no
        transaction stays open while the caller writes). Keys of 255
        characters or more are stored hashed (``row_id``) and left out."""
        table = self.table
        starts = func.substr(table.c.id, 1, len(prefix)) == prefix
        after = ""
        while True:
            page = (
                select(table.c.id)
                .where(starts, table.c.id > after, table.c.expiry > utcnow())
                .order_by(table.c.id)
                .limit(LIST_PAGE)
            )
            async with self._connect() as conn:
                found = list((await conn.scalars(page)).all())
            for key in found:
                if len(key) < MAX_ID_LENGTH:
                    yield key
            if len(found) < LIST_PAGE:
                return
            after = found[-1]

    async def close(self) -> None:
        if self._owns_engine:
            await self._engine.dispose()


def from_settings(settings: Settings) -> SQLAlchemyStore:
    raw = settings.raw
    table = raw["SESSION_SQLALCHEMY_TABLE"]
    if not isinstance(table, str) or not table:
        raise SessionConfigError(f"SESSION_SQLALCHEMY_TABLE must be a table name, not {table!r}")
    engine = raw["SESSION_SQLALCHEMY"]
    if engine is not None:
        if not isinstance(engine, AsyncEngine):
            raise SessionConfigError(
                "SESSION_SQLALCHEMY must be an AsyncEngine (sqlalchemy.ext.asyncio."
                f"create_async_engine), not {type(engine).__name__}"
            )
        return SQLAlchemyStore(engine, table)
    url = raw["SESSION_SQLALCHEMY_URI"] or raw["SESSION_URI"]
    if url is None:
        raise SessionConfigError(
            "SESSION_TYPE 'sqlalchemy' needs SESSION_SQLALCHEMY (an AsyncEngine) "
            "or SESSION_SQLALCHEMY_URI"
        )
    try:
        parsed = make_url(url)
    except ArgumentError:
        # The message would repeat the URL, password included.
        raise SessionConfigError("SESSION_SQLALCHEMY_URI is not a SQLAlchemy URL") from None
    try:
        return SQLAlchemyStore.from_url(parsed, table, lock_timeout=settings.backend_timeout / 2)
    except (ArgumentError, InvalidRequestError, ImportError) as error:
        raise SessionConfigError(
            f"SESSION_SQLALCHEMY_URI {parsed.render_as_string()} cannot be used: {error} "
            "(it needs an asyncio driver, e.g. postgresql+asyncpg:// or sqlite+aiosqlite://)"
        ) from error
