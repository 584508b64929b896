"""Every store operation is ONE command sent to Redis, counted on the servers
(``INFO commandstats`` deltas) for redis-py and GLIDE, standalone and cluster.

A save shows as EVALSHA plus the GETRANGE and SET its script runs inside the
server: one round trip.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Iterator

import pytest
import redis
from glide import (
    GlideClient,
    GlideClientConfiguration,
    GlideClusterClient,
    GlideClusterClientConfiguration,
    NodeAddress,
    PeriodicChecksStatus,
)
from redis.asyncio import RedisCluster

from quart_session.stores.base import Outcome
from quart_session.stores.redis import RedisStore

from .redis_servers import (  # noqa: F401 - fixtures
    Cluster,
    CommandCounter,
    Standalone,
    flush,
    key_count,
    redis_cluster_fixture,
    redis_standalone_fixture,
    store_for,
)

pytestmark = pytest.mark.servers

KEY = "session:counted"
SAVE = Counter({"evalsha": 1, "getrange": 1, "set": 1})


@pytest.mark.anyio
class RoundTrips:
    """A subclass provides ``ports`` (the servers) and ``store`` fixtures."""

    @pytest.fixture
    def counter(self, ports: tuple[int, ...]) -> Iterator[CommandCounter]:
        flush(ports)
        counter = CommandCounter(ports)
        yield counter
        counter.close()

    @staticmethod
    async def commands(counter: CommandCounter, operation: Awaitable[object]) -> Counter[str]:
        counter.start()
        await operation
        return counter.delta()

    async def warm_up(self, store: RedisStore, ports: tuple[int, ...]) -> None:
        """Connect to every server, learn the cluster layout, load the script:
        records are made until every server holds one."""
        for n in range(200):
            key = f"session:warm{n}"
            await store.save(key, b"w", 60, None)
            await store.load(key, 60)
            await store.touch(key, 60)
            if all(key_count(port) for port in ports):
                return
        raise AssertionError("200 records and still a server holds none")

    async def test_each_operation_is_one_command(
        self, store: RedisStore, counter: CommandCounter, ports: tuple[int, ...]
    ) -> None:
        await self.warm_up(store, ports)
        assert await self.commands(counter, store.load(KEY)) == {"get": 1}
        assert await self.commands(counter, store.save(KEY, b"1", 60, None)) == SAVE
        version = await store.load(KEY)
        assert version is not None
        assert await self.commands(counter, store.load(KEY, 60)) == {"getex": 1}
        assert await self.commands(counter, store.save(KEY, b"2", 60, version.version)) == SAVE
        stale = store.save(KEY, b"3", 60, version.version)
        assert await self.commands(counter, stale) == {"evalsha": 1, "getrange": 1}
        assert await self.commands(counter, store.touch(KEY, 60)) == {"expire": 1}
        assert await self.commands(counter, store.delete(KEY)) == {"unlink": 1}

    async def test_script_is_loaded_again_after_noscript(
        self, store: RedisStore, counter: CommandCounter, ports: tuple[int, ...]
    ) -> None:
        await self.warm_up(store, ports)
        for port in ports:
            with redis.Redis(port=port) as client:
                client.script_flush()
        first = await self.commands(counter, store.save(KEY, b"1", 60, None))
        assert first["evalsha"] == 2
        assert 1 <= first["script|load"] <= len(ports)
        second = await self.commands(counter, store.save(KEY, b"2", 60, None))
        assert second == {"evalsha": 1, "getrange": 1}
        assert await store.save(KEY, b"2", 60, None) is Outcome.CONFLICT


class TestRedisPyStandalone(RoundTrips):
    @pytest.fixture
    def ports(self, redis_standalone: Standalone) -> tuple[int, ...]:
        return (redis_standalone.port,)

    @pytest.fixture
    async def store(self, redis_standalone: Standalone) -> AsyncIterator[RedisStore]:
        store = store_for(SESSION_URI=redis_standalone.url)
        yield store
        await store.close()


class TestRedisPyCluster(RoundTrips):
    @pytest.fixture
    def ports(self, redis_cluster: Cluster) -> tuple[int, ...]:
        return redis_cluster.ports

    @pytest.fixture
    async def store(self, redis_cluster: Cluster) -> AsyncIterator[RedisStore]:
        client = RedisCluster(host="127.0.0.1", port=redis_cluster.ports[0])
        store = store_for(SESSION_REDIS=client)
        yield store
        await client.aclose()


class TestGlideStandalone(RoundTrips):
    @pytest.fixture
    def ports(self, redis_standalone: Standalone) -> tuple[int, ...]:
        return (redis_standalone.port,)

    @pytest.fixture
    async def store(self, redis_standalone: Standalone) -> AsyncIterator[RedisStore]:
        node = NodeAddress("127.0.0.1", redis_standalone.port)
        client = await GlideClient.create(GlideClientConfiguration([node]))
        yield store_for(SESSION_REDIS=client)
        await client.close()


class TestGlideCluster(RoundTrips):
    @pytest.fixture
    def ports(self, redis_cluster: Cluster) -> tuple[int, ...]:
        return redis_cluster.ports

    @pytest.fixture
    async def store(self, redis_cluster: Cluster) -> AsyncIterator[RedisStore]:
        # GLIDE checks the cluster layout every minute by default: not a
        # command of any session operation, but it would land in the counts.
        config = GlideClusterClientConfiguration(
            [NodeAddress("127.0.0.1", redis_cluster.ports[0])],
            periodic_checks=PeriodicChecksStatus.DISABLED,
        )
        client = await GlideClusterClient.create(config)
        yield store_for(SESSION_REDIS=client)
        await client.close()


class TestGlideOnTrio(RoundTrips):
    @pytest.fixture
    def anyio_backend(self) -> str:
        return "trio"

    @pytest.fixture
    def ports(self, redis_standalone: Standalone) -> tuple[int, ...]:
        return (redis_standalone.port,)

    @pytest.fixture
    async def store(self, redis_standalone: Standalone) -> AsyncIterator[RedisStore]:
        store = store_for(SESSION_URI=redis_standalone.url)
        yield store
        await store.close()
