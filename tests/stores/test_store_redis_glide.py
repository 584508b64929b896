"""The Redis store on Valkey GLIDE: clients handed in on asyncio (standalone and
cluster), and the client the store makes itself under Trio."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis
from glide import (
    ClosingError,
    GlideClient,
    GlideClientConfiguration,
    GlideClusterClient,
    GlideClusterClientConfiguration,
    NodeAddress,
)
from redis.asyncio import Redis

from quart_session.errors import SessionConfigError
from quart_session.stores.redis import RedisStore
from quart_session.stores.redis.glide import GlideDriver

from ..servers.redis import (
    Cluster,
    FrozenStandalone,
    Standalone,
    StoreOnClient,
    flush,
    store_for,
)
from ..suites.contract import StoreContract, TrioLoop
from ..suites.outage import CutShortOperations

pytestmark = pytest.mark.servers


async def glide_client(port: int) -> GlideClient:
    config = GlideClientConfiguration([NodeAddress("127.0.0.1", port)], request_timeout=2000)
    return await GlideClient.create(config)


async def glide_cluster_client(port: int) -> GlideClusterClient:
    config = GlideClusterClientConfiguration([NodeAddress("127.0.0.1", port)], request_timeout=2000)
    return await GlideClusterClient.create(config)


class TestGlideStandalone(StoreOnClient, FrozenStandalone, CutShortOperations, StoreContract):
    @pytest.fixture
    async def client(self, redis_standalone: Standalone) -> AsyncIterator[GlideClient]:
        flush([redis_standalone.port])
        client = await glide_client(redis_standalone.port)
        yield client
        await client.close()

    async def test_close_leaves_the_client_open(
        self, store: RedisStore, client: GlideClient, redis_standalone: Standalone
    ) -> None:
        assert store.address == f"glide 127.0.0.1:{redis_standalone.port}"
        await store.save("session:a", b"1", 60, None)
        await store.close()
        assert await client.get("session:a") is not None

    async def test_count_sees_only_keys_with_the_prefix(self, store: RedisStore) -> None:
        for n in range(1500):  # more than one SCAN batch
            await store.save(f"session:{n}", b"1", 60, None)
        await store.save("other:1", b"1", 60, None)
        assert await store.count("session:") == 1500


class TestGlideCluster(StoreContract):
    @pytest.fixture
    async def store(self, redis_cluster: Cluster) -> AsyncIterator[RedisStore]:
        flush(redis_cluster.ports)
        client = await glide_cluster_client(redis_cluster.ports[0])
        store = store_for(SESSION_REDIS=client)
        yield store
        await store.close()
        await client.close()

    async def test_sessions_spread_over_every_master_and_count_sees_all(
        self, store: RedisStore, redis_cluster: Cluster
    ) -> None:
        for n in range(60):
            await store.save(f"session:{n:03}", b"x", 60, None)
        held = []
        for port in redis_cluster.ports:
            with redis.Redis(port=port) as node:
                held.append(sum(1 for _ in node.scan_iter(match="session:*")))
        assert sum(held) == 60
        assert all(n > 0 for n in held), held
        assert await store.count("session:") == 60
        assert store.address.startswith("glide cluster 127.0.0.1:")


class TestGlideOnTrio(TrioLoop, FrozenStandalone, CutShortOperations, StoreContract):
    """Under Trio the store makes a GLIDE client from SESSION_URI."""

    @pytest.fixture
    async def store(self, redis_standalone: Standalone) -> AsyncIterator[RedisStore]:
        flush([redis_standalone.port])
        store = store_for(SESSION_URI=redis_standalone.url)
        assert isinstance(store.driver, GlideDriver)
        yield store
        await store.close()

    async def test_unix_socket_url(self, redis_standalone: Standalone) -> None:
        store = store_for(SESSION_URI=f"unix://{redis_standalone.socket}?db=0")
        await store.save("session:unix", b"1", 60, None)
        with redis.Redis(port=redis_standalone.port) as client:
            assert client.exists("session:unix") == 1
        assert store.address == f"unix://{redis_standalone.socket}"
        await store.close()

    async def test_other_database_from_the_url_path(self, redis_standalone: Standalone) -> None:
        store = store_for(SESSION_URI=f"redis://127.0.0.1:{redis_standalone.port}/3")
        await store.save("session:db3", b"1", 60, None)
        with redis.Redis(port=redis_standalone.port, db=3) as client:
            assert client.exists("session:db3") == 1
        await store.close()

    async def test_the_client_it_made_is_closed(self, store: RedisStore) -> None:
        await store.ping()
        assert isinstance(store.driver, GlideDriver)
        client = store.driver.client
        assert client is not None
        await store.close()
        with pytest.raises(ClosingError):
            await client.ping()

    async def test_a_redis_py_client_is_refused(self, redis_standalone: Standalone) -> None:
        client = Redis(port=redis_standalone.port)
        with pytest.raises(SessionConfigError, match="Trio"):
            store_for(SESSION_REDIS=client)

    async def test_unsupported_url_options_are_refused(self) -> None:
        with pytest.raises(SessionConfigError, match="health_check_interval"):
            store_for(SESSION_URI="redis://127.0.0.1/0?health_check_interval=3")
