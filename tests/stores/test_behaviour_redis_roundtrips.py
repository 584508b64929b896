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
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from quart import Quart

from ..servers import redis_roundtrips
from ..servers.redis import CommandCounter, key_count
from ..suites.behaviour import Browser, OnTrio, build_app
from ..suites.lifetimes import add_lifetime_views

pytestmark = pytest.mark.servers

GETEX = Counter({"getex": 1})
EXPIRE = Counter({"expire": 1})
SAVE = Counter({"evalsha": 1, "getrange": 1, "set": 1})
NOTHING: Counter[str] = Counter()


@pytest.mark.anyio
class RequestRoundTrips(redis_roundtrips.CountsCommands):
    """A subclass adds a setup from ``redis_roundtrips``."""

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
        # Logout reads and removes the record in one command (GETDEL), so that a
        # regenerate() it races cannot move the data away unseen.
        assert await self.commands(counter, browser, "/clear") == GETEX + Counter({"getdel": 1})
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

    async def test_a_session_with_a_lifetime_of_its_own_is_read_in_one_command(
        self, make_app: Callable[..., Quart], counter: CommandCounter, ports: tuple[int, ...]
    ) -> None:
        """A read refreshes to the configured lifetime unless the process
        knows the session's own TTL: the process that saved it knows, another
        process corrects the TTL with one EXPIRE on its first read, then knows."""
        app = make_app()
        add_lifetime_views(app)
        await self.warm_up(app, ports)
        browser = Browser(app)
        await browser.text("/set/user/alice")
        await browser.text("/lifetime/30d")
        for _ in range(3):
            assert await self.commands(counter, browser, "/get/user") == GETEX
        other = make_app()  # another worker process: knows nothing of the session
        await self.warm_up(other, ports)
        elsewhere = Browser(other)
        elsewhere.cookie = browser.cookie
        assert await self.commands(counter, elsewhere, "/get/user") == GETEX + EXPIRE
        assert await self.commands(counter, elsewhere, "/get/user") == GETEX
        browser.cookie = elsewhere.cookie
        assert await self.commands(counter, browser, "/lifetime/none") == GETEX + SAVE
        assert await self.commands(counter, browser, "/get/user") == GETEX


class TestRedisPyStandalone(redis_roundtrips.StoreFromUrl, RequestRoundTrips):
    pass


class TestRedisPyCluster(redis_roundtrips.RedisPyCluster, RequestRoundTrips):
    pass


class TestGlideStandalone(redis_roundtrips.GlideStandalone, RequestRoundTrips):
    pass


class TestGlideCluster(redis_roundtrips.GlideCluster, RequestRoundTrips):
    pass


class TestGlideOnTrio(OnTrio, redis_roundtrips.StoreFromUrl, RequestRoundTrips):
    """A QuartTrio app; its store makes a GLIDE client from the URL."""
