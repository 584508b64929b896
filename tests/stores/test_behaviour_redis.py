"""The behaviour and concurrency suites on real Redis: one server (redis-py
from a URL), a 3-master cluster (a RedisCluster handed in), Valkey GLIDE
clients handed in on asyncio, and a QuartTrio app whose store makes its own
GLIDE client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

import pytest
import redis
from glide import (
    GlideClient,
    GlideClientConfiguration,
    GlideClusterClient,
    GlideClusterClientConfiguration,
    NodeAddress,
)
from quart import Quart
from redis.asyncio import Redis, RedisCluster

from quart_session.stores.redis import decode
from quart_session.stores.redis.glide import GlideDriver

from ..servers.redis import (
    Cluster,
    ClusterClient,
    FrozenStandalone,
    Standalone,
    StandaloneClient,
    flush,
)
from ..suites.behaviour import AllRecords, Browser, OnTrio, ReadRaw, SessionBehaviour
from ..suites.concurrency import ConcurrencyBehaviour
from ..suites.encryption import EncryptionBehaviour
from ..suites.lifetimes import LifetimeBehaviour, ReadTtl
from ..suites.outage import OutageBehaviour
from ..suites.race import InProcessRegenerateRace, RegenerateRaceBehaviour
from ..suites.users import SpreadOverMasters, UserBehaviour

pytestmark = pytest.mark.servers


def payload(value: bytes | None) -> bytes | None:
    """The session payload of a stored value (without its version header)."""
    return None if value is None else decode(value).payload


def records_on(ports: Iterable[int]) -> AllRecords:
    """Every key and its whole value on the servers at *ports* (SCAN + GET
    on each node of a cluster), read with a plain redis-py client."""

    async def every() -> list[tuple[bytes, bytes]]:
        found = []
        for port in ports:
            with redis.Redis(port=port, protocol=2) as client:
                for key in client.scan_iter(count=1000):
                    found.append((key, client.get(key) or b""))
        return found

    return every


class ClosesApps:
    """Closes the stores of the apps a test built (they never shut down): the
    clients a store made itself must not outlive the test's event loop."""

    @pytest.fixture(autouse=True)
    async def close_apps(self, built_apps: list[Quart]) -> AsyncIterator[None]:
        yield
        for app in built_apps:
            await app.session_interface.close()  # type: ignore[attr-defined]


class StandaloneFixtures(StandaloneClient):
    @pytest.fixture
    def store_config(self, redis_standalone: Standalone) -> dict[str, Any]:
        return {"SESSION_TYPE": "redis", "SESSION_URI": redis_standalone.url}

    @pytest.fixture
    def read_raw(self, client: Redis) -> ReadRaw:
        async def read(key: str) -> bytes | None:
            return payload(await client.get(key))

        return read


class TestRedisBehaviour(StandaloneFixtures, ClosesApps, EncryptionBehaviour, SessionBehaviour):
    @pytest.fixture
    def all_records(self, redis_standalone: Standalone) -> AllRecords:
        return records_on([redis_standalone.port])


class TestRedisConcurrency(StandaloneFixtures, FrozenStandalone, OutageBehaviour):
    @pytest.fixture
    def store_config(self, redis_standalone: Standalone) -> dict[str, Any]:
        # Pytest sees one store_config per class, so OutageBehaviour's own
        # override (adding the timeout) is shadowed by StandaloneFixtures'.
        return {
            "SESSION_TYPE": "redis",
            "SESSION_URI": redis_standalone.url,
            "SESSION_BACKEND_TIMEOUT": self.TIMEOUT,
        }


class ClusterFixtures(ClusterClient):
    @pytest.fixture
    def store_config(self, client: RedisCluster) -> dict[str, Any]:
        return {"SESSION_TYPE": "redis", "SESSION_REDIS": client}

    @pytest.fixture
    def read_raw(self, client: RedisCluster) -> ReadRaw:
        async def read(key: str) -> bytes | None:
            return payload(await client.get(key))

        return read


class TestRedisClusterBehaviour(ClusterFixtures, EncryptionBehaviour, SessionBehaviour):
    @pytest.fixture
    def all_records(self, redis_cluster: Cluster) -> AllRecords:
        return records_on(redis_cluster.ports)


class TestRedisClusterConcurrency(ClusterFixtures, ConcurrencyBehaviour):
    pass


class GlideFixtures:
    @pytest.fixture
    def store_config(self, client: GlideClient | GlideClusterClient) -> dict[str, Any]:
        return {"SESSION_TYPE": "redis", "SESSION_REDIS": client}

    @pytest.fixture
    def read_raw(self, client: GlideClient | GlideClusterClient) -> ReadRaw:
        async def read(key: str) -> bytes | None:
            return payload(await client.get(key))

        return read


class TestGlideBehaviour(GlideFixtures, EncryptionBehaviour, SessionBehaviour):
    @pytest.fixture
    def all_records(self, redis_standalone: Standalone) -> AllRecords:
        return records_on([redis_standalone.port])

    @pytest.fixture
    async def client(self, redis_standalone: Standalone) -> AsyncIterator[GlideClient]:
        flush([redis_standalone.port])
        node = NodeAddress("127.0.0.1", redis_standalone.port)
        client = await GlideClient.create(GlideClientConfiguration([node]))
        yield client
        await client.close()


class TestGlideClusterBehaviour(GlideFixtures, EncryptionBehaviour, SessionBehaviour):
    @pytest.fixture
    def all_records(self, redis_cluster: Cluster) -> AllRecords:
        return records_on(redis_cluster.ports)

    @pytest.fixture
    async def client(self, redis_cluster: Cluster) -> AsyncIterator[GlideClusterClient]:
        flush(redis_cluster.ports)
        node = NodeAddress("127.0.0.1", redis_cluster.ports[0])
        client = await GlideClusterClient.create(GlideClusterClientConfiguration([node]))
        yield client
        await client.close()


class TestGlideBehaviourOnTrio(OnTrio, ClosesApps, EncryptionBehaviour, SessionBehaviour):
    """A QuartTrio app with SESSION_TYPE "redis+trio" and a URL: its store makes
    a GLIDE client on the Trio loop."""

    @pytest.fixture
    def all_records(self, redis_standalone: Standalone) -> AllRecords:
        return records_on([redis_standalone.port])

    @pytest.fixture
    async def client(self, redis_standalone: Standalone) -> AsyncIterator[GlideClient]:
        flush([redis_standalone.port])
        node = NodeAddress("127.0.0.1", redis_standalone.port)
        client = await GlideClient.create(GlideClientConfiguration([node]))
        yield client
        await client.close()

    @pytest.fixture
    def store_config(self, redis_standalone: Standalone) -> dict[str, Any]:
        return {"SESSION_TYPE": "redis+trio", "SESSION_URI": redis_standalone.url}

    async def test_the_store_talks_through_glide(self, app: Quart, read_raw: ReadRaw) -> None:
        browser = Browser(app)
        await browser.text("/set/user/alice")
        store = app.session_interface.store  # type: ignore[attr-defined]
        assert isinstance(store.driver, GlideDriver)
        assert store.driver.client is not None
        assert await read_raw(self.key(app, browser.sid)) is not None

    @pytest.fixture
    def read_raw(self, client: GlideClient) -> ReadRaw:
        async def read(key: str) -> bytes | None:
            return payload(await client.get(key))

        return read


class TestRedisRegenerateRace(StandaloneFixtures, RegenerateRaceBehaviour):
    @pytest.fixture(scope="class")
    @classmethod
    def worker_config(cls, redis_standalone: Standalone) -> dict[str, Any]:
        return {"SESSION_TYPE": "redis", "SESSION_URI": redis_standalone.url}


class TestRedisClusterRegenerateRace(ClusterFixtures, InProcessRegenerateRace):
    """In one in-process worker: a cluster needs a RedisCluster client in
    SESSION_REDIS, and SESSION_URI makes a plain client, which a cluster node
    answers with MOVED for the keys of the other nodes' slots."""


def redis_ttl(client: Redis | RedisCluster | GlideClient | GlideClusterClient) -> ReadTtl:
    """Seconds Redis will keep a key (``PTTL``; None: no such key)."""

    async def read(key: str) -> float | None:
        milliseconds = await client.pttl(key)
        if milliseconds == -2:
            return None
        return float("inf") if milliseconds == -1 else milliseconds / 1000

    return read


class RedisTtl:
    @pytest.fixture
    def read_ttl(self, client: Redis | RedisCluster | GlideClient | GlideClusterClient) -> ReadTtl:
        return redis_ttl(client)


class GlideStandaloneClient:
    @pytest.fixture
    async def client(self, redis_standalone: Standalone) -> AsyncIterator[GlideClient]:
        flush([redis_standalone.port])
        node = NodeAddress("127.0.0.1", redis_standalone.port)
        client = await GlideClient.create(GlideClientConfiguration([node]))
        yield client
        await client.close()


class TestRedisLifetimes(StandaloneFixtures, ClosesApps, RedisTtl, LifetimeBehaviour):
    pass


class TestRedisClusterLifetimes(ClusterFixtures, RedisTtl, LifetimeBehaviour):
    pass


class TestGlideLifetimes(GlideFixtures, GlideStandaloneClient, RedisTtl, LifetimeBehaviour):
    pass


class TestGlideClusterLifetimes(GlideFixtures, RedisTtl, LifetimeBehaviour):
    @pytest.fixture
    async def client(self, redis_cluster: Cluster) -> AsyncIterator[GlideClusterClient]:
        flush(redis_cluster.ports)
        node = NodeAddress("127.0.0.1", redis_cluster.ports[0])
        client = await GlideClusterClient.create(GlideClusterClientConfiguration([node]))
        yield client
        await client.close()


class TestGlideLifetimesOnTrio(
    OnTrio, ClosesApps, GlideFixtures, GlideStandaloneClient, RedisTtl, LifetimeBehaviour
):
    """A QuartTrio app whose store makes a GLIDE client from the URL."""

    @pytest.fixture
    def store_config(self, redis_standalone: Standalone) -> dict[str, Any]:
        return {"SESSION_TYPE": "redis+trio", "SESSION_URI": redis_standalone.url}


class TestRedisUsers(StandaloneFixtures, ClosesApps, UserBehaviour):
    @pytest.fixture(autouse=True)
    def emptied(self, client: Redis) -> None:
        """Every test on an emptied server: the ``client`` fixture flushes it."""

    @pytest.fixture
    def all_records(self, redis_standalone: Standalone) -> AllRecords:
        return records_on([redis_standalone.port])


class TestRedisClusterUsers(ClusterFixtures, SpreadOverMasters):
    @pytest.fixture
    def all_records(self, redis_cluster: Cluster) -> AllRecords:
        return records_on(redis_cluster.ports)


class TestGlideUsers(GlideFixtures, GlideStandaloneClient, UserBehaviour):
    @pytest.fixture
    def all_records(self, redis_standalone: Standalone) -> AllRecords:
        return records_on([redis_standalone.port])


class TestGlideClusterUsers(GlideFixtures, SpreadOverMasters):
    @pytest.fixture
    def all_records(self, redis_cluster: Cluster) -> AllRecords:
        return records_on(redis_cluster.ports)

    @pytest.fixture
    async def client(self, redis_cluster: Cluster) -> AsyncIterator[GlideClusterClient]:
        flush(redis_cluster.ports)
        node = NodeAddress("127.0.0.1", redis_cluster.ports[0])
        client = await GlideClusterClient.create(GlideClusterClientConfiguration([node]))
        yield client
        await client.close()


class TestGlideUsersOnTrio(OnTrio, ClosesApps, GlideFixtures, GlideStandaloneClient, UserBehaviour):
    """A QuartTrio app whose store makes a GLIDE client from the URL."""

    @pytest.fixture(autouse=True)
    def emptied(self, client: GlideClient) -> None:
        """Every test on an emptied server: the ``client`` fixture flushes it."""

    @pytest.fixture
    def store_config(self, redis_standalone: Standalone) -> dict[str, Any]:
        return {"SESSION_TYPE": "redis+trio", "SESSION_URI": redis_standalone.url}

    @pytest.fixture
    def all_records(self, redis_standalone: Standalone) -> AllRecords:
        return records_on([redis_standalone.port])
