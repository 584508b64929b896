"""What the round-trip suites (store operations, whole requests) share: the
command counter, and the five ways they reach Redis — redis-py and GLIDE,
standalone and cluster, asyncio and Trio.

A suite's base class inherits ``CountsCommands``; each test class adds one
setup below, which provides ``ports`` (the servers whose commands are counted)
and ``store_config`` (the ``app.config`` keys of the store).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from glide import (
    GlideClient,
    GlideClientConfiguration,
    GlideClusterClient,
    GlideClusterClientConfiguration,
    NodeAddress,
    PeriodicChecksStatus,
)
from redis.asyncio import RedisCluster

from ..suites.contract import TrioLoop
from .redis import Cluster, CommandCounter, Standalone, flush


class CountsCommands:
    """``counter`` counts the commands the servers at ``ports`` run, from empty."""

    @pytest.fixture
    def counter(self, ports: tuple[int, ...]) -> Iterator[CommandCounter]:
        flush(ports)
        counter = CommandCounter(ports)
        yield counter
        counter.close()


class OnStandalone:
    @pytest.fixture
    def ports(self, redis_standalone: Standalone) -> tuple[int, ...]:
        return (redis_standalone.port,)


class OnCluster:
    @pytest.fixture
    def ports(self, redis_cluster: Cluster) -> tuple[int, ...]:
        return redis_cluster.ports


class StoreFromUrl(OnStandalone):
    """The store makes its own client from the URL: redis-py on asyncio."""

    @pytest.fixture
    def store_config(self, redis_standalone: Standalone) -> dict[str, Any]:
        return {"SESSION_TYPE": "redis", "SESSION_URI": redis_standalone.url}


class StoreFromUrlOnTrio(TrioLoop, StoreFromUrl):
    """Under Trio the store makes a GLIDE client from the URL."""


class RedisPyCluster(OnCluster):
    @pytest.fixture
    async def store_config(self, redis_cluster: Cluster) -> AsyncIterator[dict[str, Any]]:
        client = RedisCluster(host="127.0.0.1", port=redis_cluster.ports[0])
        yield {"SESSION_TYPE": "redis", "SESSION_REDIS": client}
        await client.aclose()


class GlideStandalone(OnStandalone):
    @pytest.fixture
    async def store_config(self, redis_standalone: Standalone) -> AsyncIterator[dict[str, Any]]:
        node = NodeAddress("127.0.0.1", redis_standalone.port)
        client = await GlideClient.create(GlideClientConfiguration([node]))
        yield {"SESSION_TYPE": "redis", "SESSION_REDIS": client}
        await client.close()


class GlideCluster(OnCluster):
    @pytest.fixture
    async def store_config(self, redis_cluster: Cluster) -> AsyncIterator[dict[str, Any]]:
        # GLIDE checks the cluster layout every minute by default: not a
        # command of any session operation, but it would land in the counts.
        config = GlideClusterClientConfiguration(
            [NodeAddress("127.0.0.1", redis_cluster.ports[0])],
            periodic_checks=PeriodicChecksStatus.DISABLED,
        )
        client = await GlideClusterClient.create(config)
        yield {"SESSION_TYPE": "redis", "SESSION_REDIS": client}
        await client.close()
