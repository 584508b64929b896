from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiomcache
import anyio
import pytest
from quart import Quart

from quart_session.config import Settings
from quart_session.errors import SessionConfigError
from quart_session.stores.base import Record
from quart_session.stores.memcached import (
    HASH_MARK,
    MemcachedStore,
    from_settings,
    memcached_key,
)

from ..servers.memcached import MemcachedServer
from ..servers.processes import free_port
from ..suites.contract import StoreContract, create
from ..suites.outage import CutShortOperations, Unreachable, UnreachableStore

pytestmark = [pytest.mark.servers, pytest.mark.anyio]

DAY = 24 * 60 * 60


@pytest.fixture
async def raw(memcached_server: MemcachedServer) -> AsyncIterator[aiomcache.Client]:
    """A plain aiomcache client on the test server, flushed before each test."""
    client = aiomcache.Client(memcached_server.host, memcached_server.port)
    await client.flush_all()
    yield client
    await client.close()


class TestMemcachedStore(StoreContract):
    @pytest.fixture
    async def store(
        self,
        memcached_server: MemcachedServer,
        raw: aiomcache.Client,
    ) -> AsyncIterator[MemcachedStore]:
        store = MemcachedStore.connect(memcached_server.host, memcached_server.port)
        yield store
        await store.close()

    async def test_ttl_over_30_days_is_sent_as_an_absolute_time(
        self, store: MemcachedStore, raw: aiomcache.Client
    ) -> None:
        # Sent as a relative 40 days, memcached would read a date in 1970 and drop it.
        await create(store, key="session:long", ttl=40 * DAY)
        assert await store.load("session:long", refresh_ttl=35 * DAY) is not None
        # memcached's clock ticks once a second, so it may lag ours by a second.
        remaining = await remaining_ttl(raw, b"session:long")
        assert 35 * DAY - 10 <= remaining <= 35 * DAY + 2
        assert await store.load("session:long", refresh_ttl=50 * DAY) is not None
        assert 50 * DAY - 10 <= await remaining_ttl(raw, b"session:long") <= 50 * DAY + 2
        assert await store.expire("session:long", 45 * DAY)
        assert 45 * DAY - 10 <= await remaining_ttl(raw, b"session:long") <= 45 * DAY + 2

    async def test_valid_keys_are_stored_readable(
        self, store: MemcachedStore, raw: aiomcache.Client
    ) -> None:
        await create(store, key="session:abc-DEF_123", payload=b"readable")
        assert await raw.get(b"session:abc-DEF_123") == b"readable"

    @pytest.mark.parametrize(
        "key",
        ["with space", "tab\there", "new\nline", "ünïcode", "x" * 251, HASH_MARK + "abc"],
    )
    async def test_keys_memcached_would_refuse_are_hashed(
        self, store: MemcachedStore, raw: aiomcache.Client, key: str
    ) -> None:
        stored = memcached_key(key)
        assert stored.startswith(HASH_MARK.encode()) and len(stored) <= 250
        await create(store, key=key, payload=b"hashed")
        assert await raw.get(stored) == b"hashed"

    async def test_keys_differing_only_in_refused_characters_stay_apart(
        self, store: MemcachedStore
    ) -> None:
        keys = ["a b", "a\tb", "a_b", "x" * 251, "x" * 252, "x" * 250]
        for n, key in enumerate(keys):
            await create(store, key=key, payload=b"%d" % n)
        for n, key in enumerate(keys):
            record = await store.load(key)
            assert record is not None and record.payload == b"%d" % n

    async def test_each_operation_is_one_round_trip(
        self,
        store: MemcachedStore,
        memcached_server: MemcachedServer,
    ) -> None:
        async def round_trips(operation: Any) -> int:
            before = memcached_server.command_count()
            await operation
            return memcached_server.command_count() - before

        assert await round_trips(store.load("session:rt")) == 1  # miss
        assert await round_trips(store.save("session:rt", b"a", 60, None)) == 1
        record = await store.load("session:rt")
        assert record is not None
        assert await round_trips(store.load("session:rt")) == 1
        assert await round_trips(store.load("session:rt", refresh_ttl=60)) == 1
        assert await round_trips(store.expire("session:rt", 60)) == 1
        assert await round_trips(store.expire("session:missing", 60)) == 1
        assert await round_trips(store.save("session:rt", b"b", 60, record.version)) == 1
        assert await round_trips(store.save("session:rt", b"c", 60, record.version)) == 1
        assert await round_trips(store.delete("session:rt")) == 1
        assert await round_trips(store.save("session:rt", b"d", 60, record.version)) == 1

    async def test_a_reply_left_on_a_shared_client_is_never_taken_for_ours(
        self, memcached_server: MemcachedServer, raw: aiomcache.Client
    ) -> None:
        # aiomcache's own commands, cut short, put their connection back with the
        # reply still unread; the application may share its client with the store.
        client = aiomcache.Client(memcached_server.host, memcached_server.port, pool_size=1)
        store = MemcachedStore(client)
        await create(store, key="session:a", payload=b"a")
        await create(store, key="session:b", payload=b"b")
        await memcached_server.stop()
        try:
            with anyio.move_on_after(0.5):
                await client.get(b"session:a")
        finally:
            await memcached_server.start()
        with pytest.raises(aiomcache.ClientException, match="unexpected reply"):
            await store.load("session:b")
        record = await store.load("session:b")
        assert record is not None and record.payload == b"b"
        await client.close()


class TestMemcachedCutShort(CutShortOperations):
    @pytest.fixture
    async def store(
        self, memcached_server: MemcachedServer, raw: aiomcache.Client
    ) -> AsyncIterator[MemcachedStore]:
        # One connection, so the next command would reuse the interrupted one.
        client = aiomcache.Client(memcached_server.host, memcached_server.port, pool_size=1)
        yield MemcachedStore(client)
        await client.close()

    @pytest.fixture
    def store_control(self, memcached_server: MemcachedServer) -> MemcachedServer:
        return memcached_server


class TestMemcachedUnreachable(UnreachableStore):
    @pytest.fixture
    def unreachable(self) -> Unreachable:
        port = free_port()
        return Unreachable(
            config={"SESSION_TYPE": "memcached", "SESSION_MEMCACHED_PORT": port},
            address=f"127.0.0.1:{port}",
            error=ConnectionRefusedError,
        )


async def remaining_ttl(raw: aiomcache.Client, key: bytes) -> int:
    """Seconds left on *key*, asked over the test's own client."""
    conn = await raw._pool.acquire()
    try:
        conn.writer.write(b"mg %s t\r\n" % key)
        reply = await conn.reader.readline()
    finally:
        raw._pool.release(conn)
    status, flag = reply.split()
    assert status == b"HD", reply
    return int(flag[1:])


def settings(**config: Any) -> Settings:
    app = Quart(__name__)
    app.config.update(SESSION_TYPE="memcached", **config)
    return Settings.from_app(app)


async def test_a_client_handed_in_is_used_and_left_open(
    memcached_server: MemcachedServer,
    raw: aiomcache.Client,
) -> None:
    store = from_settings(settings(SESSION_MEMCACHED=raw))
    version = await store.save("session:handed", b"x", 60, None)
    await store.close()
    assert await store.load("session:handed") == Record(b"x", version)  # type: ignore[arg-type]
    assert await raw.get(b"session:handed") == b"x"


@pytest.mark.parametrize(
    ("config", "address"),
    [
        ({}, "127.0.0.1:11211"),
        ({"SESSION_MEMCACHED_HOST": "cache", "SESSION_MEMCACHED_PORT": 1234}, "cache:1234"),
        ({"SESSION_URI": "cache:1234"}, "cache:1234"),
        ({"SESSION_URI": "memcached://cache"}, "cache:11211"),
        ({"SESSION_URI": "[::1]:1234"}, "::1:1234"),
    ],
)
def test_where_to_connect_comes_from_the_settings(config: dict[str, Any], address: str) -> None:
    assert from_settings(settings(**config)).address == address


@pytest.mark.parametrize(
    "config",
    [
        {"SESSION_URI": "redis://cache:1234"},
        {"SESSION_URI": "cache:port"},
        {"SESSION_MEMCACHED_PORT": "11211"},
        {"SESSION_MEMCACHED": object()},
    ],
)
def test_bad_settings_are_refused(config: dict[str, Any]) -> None:
    with pytest.raises(SessionConfigError):
        from_settings(settings(**config))


async def test_a_zero_ttl_is_refused_rather_than_stored_forever() -> None:
    store = MemcachedStore.connect("127.0.0.1", free_port())
    with pytest.raises(ValueError, match="at least one second"):
        await store.save("session:zero", b"x", 0, None)
