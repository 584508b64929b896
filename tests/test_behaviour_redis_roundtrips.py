"""What a request costs in Redis commands, through Quart's test client, counted
on the servers (``INFO commandstats``): redis-py and GLIDE, standalone and
cluster, asyncio and Trio.

A request reading a session is one GETEX (sliding refresh included), a request
creating one is one EVALSHA (its script's GETRANGE and SET run inside the
server), a request without a valid cookie is none.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
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
from quart import Quart
from quart_trio import QuartTrio
from redis.asyncio import RedisCluster

from .behaviour import Browser, build_app
from .redis_servers import (  # noqa: F401 - fixtures
    Cluster,
    CommandCounter,
    Standalone,
    flush,
    key_count,
    redis_cluster_fixture,
    redis_standalone_fixture,
)

pytestmark = pytest.mark.servers

GETEX = Counter({"getex": 1})
SAVE = Counter({"evalsha": 1, "getrange": 1, "set": 1})
NOTHING: Counter[str] = Counter()


@pytest.mark.anyio
class RequestRoundTrips:
    """A subclass provides ``ports`` (the servers) and ``store_config``."""

    @pytest.fixture
    def app_class(self) -> type[Quart]:
        return Quart

    @pytest.fixture
    async def make_app(
        self, store_config: dict[str, Any], tmp_path: Path, app_class: type[Quart]
    ) -> AsyncIterator[Callable[..., Quart]]:
        apps: list[Quart] = []

        def make(**config: Any) -> Quart:
            apps.append(build_app({**store_config, **config}, tmp_path, app_class))
            return apps[-1]

        yield make
        for app in apps:
            await app.session_interface.close()  # type: ignore[attr-defined]

    @pytest.fixture
    def counter(self, ports: tuple[int, ...]) -> Iterator[CommandCounter]:
        flush(ports)
        counter = CommandCounter(ports)
        yield counter
        counter.close()

    @staticmethod
    async def commands(counter: CommandCounter, browser: Browser, path: str) -> Counter[str]:
        counter.start()
        await browser.text(path)
        return counter.delta()

    @staticmethod
    async def warm_up(app: Quart, ports: tuple[int, ...]) -> None:
        """Connect to every server, learn the cluster layout, load the script:
        sessions are made until every server holds one."""
        for _ in range(200):
            browser = Browser(app)
            await browser.text("/set/warm/1")
            await browser.text("/get/warm")
            if all(key_count(port) for port in ports):
                return
        raise AssertionError("200 sessions and still a server holds none")

    async def test_commands_per_request(
        self, make_app: Callable[..., Quart], counter: CommandCounter, ports: tuple[int, ...]
    ) -> None:
        app = make_app()
        await self.warm_up(app, ports)
        browser = Browser(app)
        assert await self.commands(counter, browser, "/untouched") == NOTHING
        assert await self.commands(counter, browser, "/get/user") == NOTHING
        browser.cookie = "not-an-id"
        assert await self.commands(counter, browser, "/get/user") == NOTHING
        browser.cookie = None
        assert await self.commands(counter, browser, "/set/user/alice") == SAVE
        assert await self.commands(counter, browser, "/get/user") == GETEX
        assert await self.commands(counter, browser, "/set/user/bob") == GETEX + SAVE
        assert await self.commands(counter, browser, "/get/user") == GETEX
        assert await self.commands(counter, browser, "/clear") == GETEX + Counter({"unlink": 1})
        browser.cookie = secrets.token_urlsafe(32)  # well-formed, unknown
        assert await self.commands(counter, browser, "/get/user") == GETEX
        assert browser.cookie is not None

    async def test_without_sliding_refresh_a_read_is_one_get(
        self, make_app: Callable[..., Quart], counter: CommandCounter, ports: tuple[int, ...]
    ) -> None:
        app = make_app(SESSION_REFRESH_EACH_REQUEST=False)
        await self.warm_up(app, ports)
        browser = Browser(app)
        assert await self.commands(counter, browser, "/set/user/alice") == SAVE
        assert await self.commands(counter, browser, "/get/user") == {"get": 1}


class TestRedisPyStandalone(RequestRoundTrips):
    @pytest.fixture
    def ports(self, redis_standalone: Standalone) -> tuple[int, ...]:
        return (redis_standalone.port,)

    @pytest.fixture
    def store_config(self, redis_standalone: Standalone) -> dict[str, Any]:
        return {"SESSION_TYPE": "redis", "SESSION_URI": redis_standalone.url}


class TestRedisPyCluster(RequestRoundTrips):
    @pytest.fixture
    def ports(self, redis_cluster: Cluster) -> tuple[int, ...]:
        return redis_cluster.ports

    @pytest.fixture
    async def store_config(self, redis_cluster: Cluster) -> AsyncIterator[dict[str, Any]]:
        client = RedisCluster(host="127.0.0.1", port=redis_cluster.ports[0])
        yield {"SESSION_TYPE": "redis", "SESSION_REDIS": client}
        await client.aclose()


class TestGlideStandalone(RequestRoundTrips):
    @pytest.fixture
    def ports(self, redis_standalone: Standalone) -> tuple[int, ...]:
        return (redis_standalone.port,)

    @pytest.fixture
    async def store_config(self, redis_standalone: Standalone) -> AsyncIterator[dict[str, Any]]:
        node = NodeAddress("127.0.0.1", redis_standalone.port)
        client = await GlideClient.create(GlideClientConfiguration([node]))
        yield {"SESSION_TYPE": "redis", "SESSION_REDIS": client}
        await client.close()


class TestGlideCluster(RequestRoundTrips):
    @pytest.fixture
    def ports(self, redis_cluster: Cluster) -> tuple[int, ...]:
        return redis_cluster.ports

    @pytest.fixture
    async def store_config(self, redis_cluster: Cluster) -> AsyncIterator[dict[str, Any]]:
        # GLIDE checks the cluster layout every minute by default: not part of
        # any request, but it would land in the counts.
        config = GlideClusterClientConfiguration(
            [NodeAddress("127.0.0.1", redis_cluster.ports[0])],
            periodic_checks=PeriodicChecksStatus.DISABLED,
        )
        client = await GlideClusterClient.create(config)
        yield {"SESSION_TYPE": "redis", "SESSION_REDIS": client}
        await client.close()


class TestGlideOnTrio(RequestRoundTrips):
    """A QuartTrio app; its store makes a GLIDE client from the URL."""

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "trio"

    @pytest.fixture
    def app_class(self) -> type[Quart]:
        return QuartTrio

    @pytest.fixture
    def ports(self, redis_standalone: Standalone) -> tuple[int, ...]:
        return (redis_standalone.port,)

    @pytest.fixture
    def store_config(self, redis_standalone: Standalone) -> dict[str, Any]:
        return {"SESSION_TYPE": "redis", "SESSION_URI": redis_standalone.url}
