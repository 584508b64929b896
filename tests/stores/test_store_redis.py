"""The Redis store with redis-py on asyncio: one server (URL, unix socket, a
client), a 3-master cluster, and a Sentinel master that fails over."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest
import redis
from redis.asyncio import Redis
from redis.asyncio.sentinel import Sentinel

from quart_session.errors import SessionConfigError
from quart_session.stores.base import Outcome, Record
from quart_session.stores.redis import RedisPyDriver, RedisStore, decode

from ..servers.processes import free_port
from ..servers.redis import (
    SERVICE,
    Cluster,
    ClusterClient,
    FrozenStandalone,
    SentinelSetup,
    Standalone,
    StandaloneClient,
    StoreOnClient,
    flush,
    sentinel_master_port,
    sentinel_sees_replica,
    settings_for,
    store_for,
    wait_for,
)
from ..suites.contract import StoreContract
from ..suites.outage import CutShortOperations, Unreachable, UnreachableStore

pytestmark = pytest.mark.servers


class TestRedisFromUrl(FrozenStandalone, CutShortOperations, StoreContract):
    @pytest.fixture
    async def store(self, redis_standalone: Standalone) -> AsyncIterator[RedisStore]:
        flush([redis_standalone.port])
        store = store_for(SESSION_URI=redis_standalone.url)
        yield store
        await store.close()

    async def test_every_record_has_a_ttl(
        self, store: RedisStore, redis_standalone: Standalone
    ) -> None:
        await store.save("session:a", b"1", 60, None)
        with redis.Redis(port=redis_standalone.port) as client:
            assert 0 < client.ttl("session:a") <= 60

    async def test_count_sees_only_keys_with_the_prefix(self, store: RedisStore) -> None:
        for n in range(30):
            await store.save(f"session:{n}", b"1", 60, None)
        await store.save("sessionX", b"1", 60, None)
        # Glob characters in a prefix match only themselves.
        await store.save("a*[b]?\\:1", b"1", 60, None)
        await store.save("a*[b]?\\:2", b"1", 60, None)
        await store.save("aXbY\\:3", b"1", 60, None)
        assert await store.count("session:") == 30
        assert await store.count("a*[b]?\\:") == 2

    async def test_a_value_without_header_loads_and_can_be_replaced(
        self, store: RedisStore, redis_standalone: Standalone
    ) -> None:
        # Quart-Session 3.0 stored the bare payload.
        with redis.Redis(port=redis_standalone.port) as client:
            client.set("session:old", b'{"user": "ann"}', ex=60)
        record = await store.load("session:old")
        assert record == Record(b'{"user": "ann"}', "")
        assert await store.save("session:old", b"new", 60, "0" * 16) is Outcome.CONFLICT
        version = await store.save("session:old", b"new", 60, "")
        assert await store.load("session:old") == Record(b"new", version)  # type: ignore[arg-type]

    async def test_commands_survive_idle_connections_the_server_closed(
        self, store: RedisStore, redis_standalone: Standalone
    ) -> None:
        """The store keeps connections between commands (past redis-py's pool):
        one the server closed meanwhile is reconnected, not a failed request."""
        version = await store.save("session:a", b"1", 60, None)
        with redis.Redis(port=redis_standalone.port) as admin:
            killed = admin.client_kill_filter(_type="normal", skipme=True)
        assert killed >= 1
        assert await store.load("session:a", 60) == Record(b"1", version)  # type: ignore[arg-type]
        assert not isinstance(await store.save("session:a", b"2", 60, version), Outcome)  # type: ignore[arg-type]

    async def test_a_burst_past_the_pools_connections_waits_instead_of_failing(
        self, redis_standalone: Standalone
    ) -> None:
        flush([redis_standalone.port])
        client = Redis(port=redis_standalone.port, max_connections=3)
        store = RedisStore(RedisPyDriver(client, owned=False))
        version = await store.save("session:a", b"1", 60, None)
        loaded: list[Record | None] = []

        async def load() -> None:
            loaded.append(await store.load("session:a", 60))

        async with anyio.create_task_group() as group:
            for _ in range(40):
                group.start_soon(load)
            # Some wait for a connection and give up: the rest go on.
            with anyio.move_on_after(0):
                await load()
        assert loaded == [Record(b"1", version)] * 40  # type: ignore[arg-type]
        assert len(client.connection_pool._in_use_connections) <= 3  # type: ignore[attr-defined]
        await store.close()
        assert client.connection_pool._in_use_connections == set()  # type: ignore[attr-defined]
        await client.aclose()

    async def test_a_cancelled_command_leaves_no_reply_for_the_next(
        self, store: RedisStore, redis_standalone: Standalone
    ) -> None:
        """A command cut short after it was sent must not hand its late reply
        to the next command on the same connection."""
        await store.save("session:a", b"first", 60, None)
        await store.save("session:b", b"second", 60, None)
        with redis.Redis(port=redis_standalone.port) as admin:
            admin.execute_command("CLIENT", "PAUSE", 300, "ALL")
            with anyio.move_on_after(0.05):
                await store.load("session:a")
        await anyio.sleep(0.4)  # the paused reply is on its way by now
        record = await store.load("session:b")
        assert record is not None and record.payload == b"second"

    async def test_the_client_it_made_is_closed(self, redis_standalone: Standalone) -> None:
        store = store_for(SESSION_URI=redis_standalone.url)
        await store.ping()
        await store.close()
        assert isinstance(store.driver, RedisPyDriver)
        pool = store.driver.client.connection_pool
        assert pool._in_use_connections == set()  # type: ignore[attr-defined]
        assert all(not c.is_connected for c in pool._available_connections)  # type: ignore[attr-defined]


class TestRedisUnixSocket(StoreContract):
    @pytest.fixture
    async def store(self, redis_standalone: Standalone) -> AsyncIterator[RedisStore]:
        flush([redis_standalone.port])
        store = store_for(SESSION_URI=f"unix://{redis_standalone.socket}?db=0")
        yield store
        await store.close()

    async def test_address_is_the_socket(
        self, store: RedisStore, redis_standalone: Standalone
    ) -> None:
        assert store.address == f"unix://{redis_standalone.socket}"


class TestRedisClientHandedIn(StandaloneClient, StoreOnClient, StoreContract):
    async def test_close_leaves_the_client_open(self, store: RedisStore, client: Redis) -> None:
        await store.save("session:a", b"1", 60, None)
        await store.close()
        assert await client.get("session:a") is not None
        assert await store.load("session:a") is not None

    async def test_a_client_decoding_responses_is_refused(
        self, redis_standalone: Standalone
    ) -> None:
        client = Redis(port=redis_standalone.port, decode_responses=True)
        with pytest.raises(SessionConfigError, match="decode_responses"):
            store_for(SESSION_REDIS=client)
        await client.aclose()


class TestRedisCluster(ClusterClient, StoreOnClient, StoreContract):
    async def test_sessions_spread_over_every_master_and_count_sees_all(
        self, store: RedisStore, redis_cluster: Cluster
    ) -> None:
        for n in range(60):
            await store.save(f"session:{n:03}", b"x", 60, None)
        held = []
        for port in redis_cluster.ports:
            with redis.Redis(port=port) as node:
                keys = [key for key in node.scan_iter(match="session:*") if node.get(key)]
                held.append(len(keys))
        assert sum(held) == 60
        assert all(n > 0 for n in held), held
        assert await store.count("session:") == 60

    async def test_address_names_the_nodes(self, store: RedisStore, redis_cluster: Cluster) -> None:
        await store.ping()
        assert all(f"127.0.0.1:{port}" in store.address for port in redis_cluster.ports)


def sentinel_master(setup: SentinelSetup) -> Redis:
    sentinel = Sentinel([("127.0.0.1", setup.sentinel_port)], socket_timeout=2.0)
    return sentinel.master_for(SERVICE)


def role(port: int) -> str:
    with redis.Redis(port=port, decode_responses=True) as client:
        return str(client.role()[0])


def masters_port(setup: SentinelSetup) -> int:
    """The master's port in ``SENTINEL MASTERS``, where redis-py looks it up."""
    with redis.Redis(port=setup.sentinel_port, decode_responses=True) as client:
        return int(client.sentinel_master(SERVICE)["port"])


class TestRedisSentinel(StoreOnClient, StoreContract):
    @pytest.fixture
    async def client(self, redis_sentinel: SentinelSetup) -> AsyncIterator[Redis]:
        flush([sentinel_master_port(redis_sentinel)])
        client = sentinel_master(redis_sentinel)
        yield client
        await client.aclose()

    async def test_store_follows_the_master_after_failover(
        self, store: RedisStore, redis_sentinel: SentinelSetup
    ) -> None:
        assert store.address == f"sentinel master {SERVICE!r}"
        old = sentinel_master_port(redis_sentinel)
        replica = next(port for port in redis_sentinel.server_ports if port != old)
        version = await store.save("session:a", b"before", 60, None)
        with redis.Redis(port=replica) as client:
            wait_for(lambda: client.get("session:a") is not None, "replication")
        with redis.Redis(port=redis_sentinel.sentinel_port) as sentinel:
            sentinel.execute_command("SENTINEL FAILOVER", SERVICE)
        await anyio.to_thread.run_sync(
            wait_for, lambda: sentinel_master_port(redis_sentinel) == replica, "the failover"
        )
        # Until the old master is turned into a replica it still takes writes
        # (that are lost after): the failover is complete when it is.
        await anyio.to_thread.run_sync(wait_for, lambda: role(replica) == "master", "promotion")
        await anyio.to_thread.run_sync(wait_for, lambda: role(old) == "slave", "demotion")
        assert await store.load("session:a") == Record(b"before", version)  # type: ignore[arg-type]
        after = await store.save("session:a", b"after", 60, version)  # type: ignore[arg-type]
        assert not isinstance(after, Outcome)
        with redis.Redis(port=replica) as client:
            assert client.get("session:a") == b"qs4:" + str(after).encode() + b"after"

    async def test_store_leaves_a_master_that_lost_its_replica(
        self, store: RedisStore, redis_sentinel: SentinelSetup
    ) -> None:
        """With min-replicas-to-write the old master refuses writes (NOREPLICAS)
        from the promotion until Sentinel demotes it, ~10 s later; the store
        asks the Sentinel for the master again at once instead of failing all
        that time (redis-py itself does so only on READONLY)."""
        await anyio.to_thread.run_sync(
            wait_for, lambda: sentinel_sees_replica(redis_sentinel.sentinel_port), "a replica"
        )
        old = sentinel_master_port(redis_sentinel)
        replica = next(port for port in redis_sentinel.server_ports if port != old)
        version = await store.save("session:a", b"before", 60, None)
        with redis.Redis(port=replica) as client:
            wait_for(lambda: client.get("session:a") is not None, "replication")
        with redis.Redis(port=old) as client:
            client.config_set("min-replicas-to-write", 1)
        try:
            with redis.Redis(port=redis_sentinel.sentinel_port) as sentinel:
                sentinel.execute_command("SENTINEL FAILOVER", SERVICE)
            await anyio.to_thread.run_sync(
                wait_for, lambda: sentinel_master_port(redis_sentinel) == replica, "the failover"
            )
            await anyio.to_thread.run_sync(wait_for, lambda: role(replica) == "master", "promotion")
            # What redis-py asks the Sentinel (SENTINEL MASTERS) changes last.
            await anyio.to_thread.run_sync(
                wait_for, lambda: masters_port(redis_sentinel) == replica, "the switch"
            )
            assert role(old) == "master"  # not demoted yet: it answers NOREPLICAS
            with pytest.raises(redis.ResponseError, match="NOREPLICAS"):
                await store.save("session:a", b"after", 60, version)  # type: ignore[arg-type]
            after = await store.save("session:a", b"after", 60, version)  # type: ignore[arg-type]
            assert not isinstance(after, Outcome)
            with redis.Redis(port=replica) as client:
                assert client.get("session:a") == b"qs4:" + str(after).encode() + b"after"
        finally:
            with redis.Redis(port=old) as client:
                client.config_set("min-replicas-to-write", 0)
            # The next test starts from a master with a replica in sync.
            await anyio.to_thread.run_sync(wait_for, lambda: role(old) == "slave", "demotion")
            await anyio.to_thread.run_sync(
                wait_for, lambda: sentinel_sees_replica(redis_sentinel.sentinel_port), "resync"
            )


class TestRedisUnreachable(UnreachableStore):
    @pytest.fixture
    def unreachable(self) -> Unreachable:
        port = free_port()
        return Unreachable(
            config={"SESSION_TYPE": "redis", "SESSION_URI": f"redis://:s3cret@127.0.0.1:{port}/0"},
            address=f"redis://127.0.0.1:{port}/0",
            error=redis.ConnectionError,
            match="Connect call failed",
            hidden=("s3cret",),
        )


class TestSettings:
    def test_default_is_localhost(self) -> None:
        store = store_for()
        assert store.address == "redis://127.0.0.1:6379"

    def test_address_has_no_credentials(self) -> None:
        store = store_for(
            SESSION_URI="redis://user:s3cret@127.0.0.1:6390/2?health_check_interval=5"
        )
        assert store.address == "redis://127.0.0.1:6390/2"
        store = store_for(SESSION_URI="rediss://:s3cret@[::1]/0")
        assert store.address == "rediss://[::1]:6379/0"

    @pytest.mark.parametrize(
        "uri", ["http://localhost", "localhost:6379", "memcached://x", "http://u:s3cret@x"]
    )
    def test_other_urls_are_refused_without_showing_them(self, uri: str) -> None:
        with pytest.raises(SessionConfigError, match="redis://") as refused:
            store_for(SESSION_URI=uri)
        assert "s3cret" not in str(refused.value)

    def test_other_clients_are_refused(self) -> None:
        with pytest.raises(SessionConfigError, match="SESSION_REDIS"):
            store_for(SESSION_REDIS=redis.Redis())

    def test_alias_redis_trio_is_redis(self) -> None:
        assert settings_for(SESSION_TYPE="redis+trio").store_type == "redis"


def test_a_damaged_version_header_loads_as_a_bare_value() -> None:
    """Found by tests/fuzz: a bit flipped in the header's version raised on
    every load (503 until the record expired) instead of a fresh session."""
    value = b"qs4:0b510cC6\xb85f07b4c{}"
    assert decode(value) == Record(value, "")
