"""Concurrency through a real ASGI server: no lost updates, logout wins,
websocket changes survive a disconnect. Every store runs it.

A store's test class inherits ``ConcurrencyBehaviour`` (usually beside
``SessionBehaviour``) and provides the same ``store_config`` and ``read_raw``
fixtures. Networked stores inherit ``outage.OutageBehaviour`` instead, which
adds a store outage to this suite.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import anyio
import httpx
import pytest
import websockets
from hypercorn.asyncio import serve
from hypercorn.config import Config
from quart import Quart, session, websocket

from quart_session import Session, session_conflict_merged

from ..servers.processes import free_port, port_open
from .behaviour import holds_no_session, parse_set_cookie
from .views import add_session_views

ReadRaw = Callable[[str], Awaitable[bytes | None]]
WRITERS = 40


def concurrency_app(config: dict[str, Any]) -> Quart:
    app = Quart(__name__)
    app.config.update(SECRET_KEY="concurrency", **config)

    add_session_views(app, anyio.sleep)

    @app.websocket("/ws/hold/<value>")
    async def hold(value: str) -> None:
        await websocket.accept()
        session["ws"] = value
        await websocket.send("set")
        while True:  # until the client goes away and Quart cancels us
            await websocket.receive()

    Session(app)
    return app


@dataclass
class Served:
    app: Quart
    url: str
    merges: list[int] = field(default_factory=list)

    def client(self) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=WRITERS + 5)
        return httpx.AsyncClient(base_url=self.url, limits=limits, timeout=30)

    @property
    def cookie_name(self) -> str:
        return str(self.app.config["SESSION_COOKIE_NAME"])

    def cookie_header(self, sid: str) -> dict[str, str]:
        return {"Cookie": f"{self.cookie_name}={sid}"}

    def key(self, sid: str) -> str:
        return str(self.app.session_interface.engine.key_for(sid))  # type: ignore[attr-defined]


@asynccontextmanager
async def serving(app: Quart) -> AsyncIterator[str]:
    """*app* served by hypercorn (asyncio) on a free port: its base URL."""
    port = free_port()
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    stopped = anyio.Event()
    async with anyio.create_task_group() as group:
        group.start_soon(partial(serve, app, config, shutdown_trigger=stopped.wait))  # type: ignore[arg-type]
        with anyio.fail_after(10):
            while not port_open(port):  # noqa: ASYNC110 - polling another task's socket
                await anyio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
        stopped.set()


def session_cookie(response: httpx.Response, name: str) -> str | None:
    """The session cookie a response sets: its value, "" when it deletes it,
    None when it does not touch it."""
    for header in response.headers.get_list("set-cookie"):
        cookie_name, value, attributes = parse_set_cookie(header)
        if cookie_name == name:
            return "" if attributes.get("expires", "").startswith("Thu, 01 Jan 1970") else value
    return None


@pytest.mark.anyio
class ConcurrencyBehaviour:
    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"  # hypercorn's asyncio server

    @property
    def extra_config(self) -> dict[str, Any]:
        """Config on top of the store's (a property, not a fixture: a fixture
        override would be shadowed by a store mixin earlier in the bases)."""
        return {}

    @pytest.fixture
    async def served(self, store_config: dict[str, Any]) -> AsyncIterator[Served]:
        app = concurrency_app({**store_config, **self.extra_config})
        served = Served(app, "")
        session_conflict_merged.connect(
            lambda sender, sid, attempt: served.merges.append(attempt), app, weak=False
        )
        async with serving(app) as served.url:
            yield served

    async def start_session(self, served: Served, client: httpx.AsyncClient) -> str:
        response = await client.get("/set/seed/planted")
        sid = session_cookie(response, served.cookie_name)
        assert sid
        return sid

    async def test_forty_concurrent_writers_on_one_session_all_keep_their_change(
        self, served: Served
    ) -> None:
        async with served.client() as client:
            sid = await self.start_session(served, client)
            cookies = served.cookie_header(sid)
            statuses: list[int] = []

            async def write(n: int) -> None:
                response = await client.get(f"/set/k{n}/v{n}", headers=cookies)
                statuses.append(response.status_code)

            async with anyio.create_task_group() as group:
                for n in range(WRITERS):
                    group.start_soon(write, n)
            assert statuses == [200] * WRITERS
            stored = json.loads((await client.get("/keys", headers=cookies)).text)
        assert stored == {"seed": "planted", **{f"k{n}": f"v{n}" for n in range(WRITERS)}}
        print(
            f"\n{WRITERS} concurrent writers: {len(served.merges)} conflict merges, "
            f"most retries by one request: {max(served.merges, default=0)}"
        )

    async def test_on_the_same_key_the_last_writer_wins(self, served: Served) -> None:
        async with served.client() as client:
            sid = await self.start_session(served, client)
            cookies = served.cookie_header(sid)
            async with anyio.create_task_group() as group:
                group.start_soon(partial(client.get, "/slow-set/color/early/0.1", headers=cookies))
                group.start_soon(partial(client.get, "/slow-set/color/late/0.6", headers=cookies))
            stored = json.loads((await client.get("/keys", headers=cookies)).text)
        assert stored["color"] == "late"

    async def test_a_slow_request_racing_a_logout_does_not_bring_the_session_back(
        self, served: Served, read_raw: ReadRaw
    ) -> None:
        async with served.client() as client:
            sid = await self.start_session(served, client)
            cookies = served.cookie_header(sid)
            responses: dict[str, httpx.Response] = {}

            async def slow() -> None:
                responses["slow"] = await client.get("/slow-set/cart/full/0.8", headers=cookies)

            async def logout() -> None:
                await anyio.sleep(0.2)
                responses["logout"] = await client.get("/logout", headers=cookies)

            async with anyio.create_task_group() as group:
                group.start_soon(slow)
                group.start_soon(logout)
        assert session_cookie(responses["logout"], served.cookie_name) == ""
        assert session_cookie(responses["slow"], served.cookie_name) == ""
        assert await read_raw(served.key(sid)) is None

    async def test_a_request_racing_regenerate_keeps_the_new_id_valid(
        self, served: Served, read_raw: ReadRaw
    ) -> None:
        async with served.client() as client:
            old = await self.start_session(served, client)
            responses: dict[str, httpx.Response] = {}

            async def slow() -> None:
                responses["slow"] = await client.get(
                    "/slow-set/theme/dark/0.8", headers=served.cookie_header(old)
                )

            async def login() -> None:
                await anyio.sleep(0.2)
                responses["login"] = await client.get("/login", headers=served.cookie_header(old))

            async with anyio.create_task_group() as group:
                group.start_soon(slow)
                group.start_soon(login)
            new = session_cookie(responses["login"], served.cookie_name)
            assert new
            assert new != old
            stored = json.loads((await client.get("/keys", headers=served.cookie_header(new))).text)
        assert stored["user"] == "alice"
        assert stored["seed"] == "planted"
        assert holds_no_session(await read_raw(served.key(old)))

    async def test_a_websocket_whose_client_disconnects_still_saves_its_change(
        self, served: Served
    ) -> None:
        async with served.client() as client:
            sid = await self.start_session(served, client)
            cookies = served.cookie_header(sid)
            ws_url = served.url.replace("http://", "ws://") + "/ws/hold/kept"
            async with websockets.connect(ws_url, additional_headers=cookies) as ws:
                assert await ws.recv() == "set"
            # The server notices the disconnect and cancels the handler.
            deadline = time.monotonic() + 5
            stored: dict[str, str] = {}
            while time.monotonic() < deadline and stored.get("ws") != "kept":
                await anyio.sleep(0.05)
                stored = json.loads((await client.get("/keys", headers=cookies)).text)
        assert stored.get("ws") == "kept"
