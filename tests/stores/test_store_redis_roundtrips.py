"""Every store operation is ONE command sent to Redis, counted on the servers
(``INFO commandstats`` deltas) for redis-py and GLIDE, standalone and cluster.

A save shows as EVALSHA plus the GETRANGE and SET its script runs inside the
server: one round trip.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import pytest
import redis

from quart_session.stores.base import Outcome
from quart_session.stores.redis import RedisStore

from ..servers import redis_roundtrips
from ..servers.redis import CommandCounter, key_count, store_for

pytestmark = pytest.mark.servers

KEY = "session:counted"
SAVE = Counter({"evalsha": 1, "getrange": 1, "set": 1})


@pytest.mark.anyio
class RoundTrips(redis_roundtrips.CountsCommands):
    """A subclass adds a setup from ``redis_roundtrips``."""

    @pytest.fixture
    async def store(self, store_config: dict[str, Any]) -> AsyncIterator[RedisStore]:
        store = store_for(**store_config)
        yield store
        await store.close()

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
        assert await self.commands(counter, store.expire(KEY, 60)) == {"expire": 1}
        assert await self.commands(counter, store.expire("session:missing", 60)) == {"expire": 1}
        assert await self.commands(counter, store.save(KEY, b"2", 60, version.version)) == SAVE
        stale = store.save(KEY, b"3", 60, version.version)
        assert await self.commands(counter, stale) == {"evalsha": 1, "getrange": 1}
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


class TestRedisPyStandalone(redis_roundtrips.StoreFromUrl, RoundTrips):
    pass


class TestRedisPyCluster(redis_roundtrips.RedisPyCluster, RoundTrips):
    pass


class TestGlideStandalone(redis_roundtrips.GlideStandalone, RoundTrips):
    pass


class TestGlideCluster(redis_roundtrips.GlideCluster, RoundTrips):
    pass


class TestGlideOnTrio(redis_roundtrips.StoreFromUrlOnTrio, RoundTrips):
    pass
