"""Logout wins over ``regenerate()``, through a real server with two worker
processes. Every store runs it.

A request that loaded a session and then moves it to a new id (login, step-up
auth) must not bring back a session that another request logged out
meanwhile, and a logout must end the session wherever it moved; a write racing
the move must land in the moved session. Each scenario starts a slow request,
sends the racing one 0.2 s later while the slow one waits, and checks what a
browser sees (cookies, ``/keys``) and what the store holds (``read_raw``).

A store's test class inherits ``RegenerateRaceBehaviour`` and provides
``read_raw`` (the session payload at a key, read with the store's own client)
and a class-scoped ``worker_config``: the app config as JSON-able values (URLs,
hosts, ports, never client objects), since each worker process builds its own
app from it (``tests/suites/race_app.py``). The server starts once per class.
``InProcessRegenerateRace`` runs the same scenarios in one in-process worker
for stores that cannot be shared by processes; it needs ``store_config``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from hypercorn.asyncio import serve
from hypercorn.config import Config
from quart import Quart

from quart_session.ids import record_name
from quart_session.records import is_marker

from ..servers.processes import free_port, port_open, running
from .concurrency import ReadRaw, session_cookie
from .race_app import CONFIG_VARIABLE, HOLD_KEY, PID_HEADER, race_app

ROOT = Path(__file__).resolve().parents[2]
#: How long the slow request of a race waits between loading and acting.
SLOW = 0.8
#: When the racing request is sent, after the slow one.
RACING_AT = 0.2
#: How long the slow request blocks its worker (see race_app._pause): past
#: RACING_AT, so the racing request is accepted by the other worker.
HOLD = 0.4
WORKERS = 2
#: Seconds the server may take to start, and a request to be answered.
START_TIMEOUT = 30.0
REQUEST_TIMEOUT = 10.0


@dataclass
class RaceTarget:
    """Where the race app is served, and what a test needs to address it."""

    url: str
    workers: int
    cookie_name: str = "session"
    key_prefix: str = "session:"
    hash_ids: bool = True
    app: Quart | None = None  # only when served in-process

    def client(self) -> httpx.AsyncClient:
        # A new connection per request: a kept-alive one stays with its worker.
        limits = httpx.Limits(max_keepalive_connections=0)
        return httpx.AsyncClient(base_url=self.url, limits=limits, timeout=REQUEST_TIMEOUT)

    def cookie_header(self, sid: str) -> dict[str, str]:
        return {"Cookie": f"{self.cookie_name}={sid}"}

    def key(self, sid: str) -> str:
        return self.key_prefix + record_name(sid, self.hash_ids)


def holds_no_session(payload: bytes | None) -> bool:
    """Whether a key holds no session data: no record, or a marker (the
    record regenerate() or logout may leave at the old key)."""
    return payload is None or is_marker(payload)


def target_for(config: dict[str, Any], url: str, workers: int) -> RaceTarget:
    return RaceTarget(
        url,
        workers,
        cookie_name=str(config.get("SESSION_COOKIE_NAME", "session")),
        key_prefix=str(config.get("SESSION_KEY_PREFIX", "session:")),
        hash_ids=bool(config.get("SESSION_HASH_IDS", True)),
    )


def worker_log_ready(log: Path) -> bool:
    """Whether every worker has started serving (each logs "Running on" once
    its app, and so its store, has started)."""
    return log.exists() and log.read_text(errors="replace").count("Running on") >= WORKERS


@pytest.mark.anyio
class RegenerateRaceBehaviour:
    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"

    @pytest.fixture(scope="class")
    @classmethod
    def worker_env(cls) -> dict[str, str]:
        """Environment variables the workers need beyond the tests' own."""
        return {}

    @pytest.fixture(scope="class")
    @classmethod
    def race_target(
        cls,
        worker_config: dict[str, Any],
        worker_env: dict[str, str],
        tmp_path_factory: pytest.TempPathFactory,
    ) -> Iterator[RaceTarget]:
        """``hypercorn --workers 2`` serving ``tests.race_app:create_app()``,
        in its own process group, stopped (and waited for) after the class."""
        port = free_port()
        log = tmp_path_factory.mktemp("race-server") / "hypercorn.log"
        config = {**worker_config, HOLD_KEY: HOLD}
        argv = [sys.executable, "-m", "hypercorn", "--workers", str(WORKERS)]
        argv += ["--bind", f"127.0.0.1:{port}", "tests.suites.race_app:create_app()"]
        env = {**worker_env, CONFIG_VARIABLE: json.dumps(config)}
        ready = partial(worker_log_ready, log)
        with running(argv, port, log, ready=ready, timeout=START_TIMEOUT, cwd=ROOT, env=env):
            yield target_for(config, f"http://127.0.0.1:{port}", WORKERS)

    # -- helpers ----------------------------------------------------------------
    async def start_session(self, target: RaceTarget, client: httpx.AsyncClient) -> str:
        response = await client.get("/set/seed/planted")
        sid = session_cookie(response, target.cookie_name)
        assert sid
        return sid

    async def race(
        self, client: httpx.AsyncClient, slow: tuple[str, str], racing: tuple[str, str]
    ) -> tuple[httpx.Response, httpx.Response]:
        """Send *slow* (path, cookie), then *racing* RACING_AT seconds later;
        both responses once both are answered."""
        responses: dict[str, httpx.Response] = {}

        async def send(name: str, path: str, cookie: str, after: float) -> None:
            await anyio.sleep(after)
            responses[name] = await client.get(path, headers={"Cookie": cookie})

        with anyio.fail_after(SLOW + REQUEST_TIMEOUT):
            async with anyio.create_task_group() as group:
                group.start_soon(send, "slow", *slow, 0.0)
                group.start_soon(send, "racing", *racing, RACING_AT)
        return responses["slow"], responses["racing"]

    def check_served_apart(
        self, target: RaceTarget, slow: httpx.Response, racing: httpx.Response
    ) -> None:
        """With two workers, the two requests of a race ran in two processes."""
        if target.workers > 1:
            pids = slow.headers[PID_HEADER], racing.headers[PID_HEADER]
            assert pids[0] != pids[1], f"both requests were served by process {pids[0]}"

    async def keys(self, target: RaceTarget, client: httpx.AsyncClient, sid: str) -> Any:
        return json.loads((await client.get("/keys", headers=target.cookie_header(sid))).text)

    # -- the scenarios --------------------------------------------------------------
    async def test_a_login_finishing_after_a_logout_does_not_bring_the_old_data_back(
        self, race_target: RaceTarget, read_raw: ReadRaw
    ) -> None:
        """A loads the session, B logs it out, then A regenerates and logs in."""
        target = race_target
        async with target.client() as client:
            old = await self.start_session(target, client)
            cookie = f"{target.cookie_name}={old}"
            login, logout = await self.race(
                client, (f"/slow-login/{SLOW}", cookie), ("/logout", cookie)
            )
            self.check_served_apart(target, login, logout)
            assert session_cookie(logout, target.cookie_name) == "", "logout kept the cookie"
            assert holds_no_session(await read_raw(target.key(old)))
            assert await self.keys(target, client, old) == {}
            new = session_cookie(login, target.cookie_name)
            if new:  # a login after the logout may start a session, without the old data
                assert new != old
                stored = await self.keys(target, client, new)
                assert "seed" not in stored, f"the logged-out data came back: {stored}"

    async def test_a_logout_finishing_after_a_login_ends_the_moved_session(
        self, race_target: RaceTarget, read_raw: ReadRaw
    ) -> None:
        """B loads the session, A regenerates it (login), then B logs out."""
        target = race_target
        async with target.client() as client:
            old = await self.start_session(target, client)
            cookie = f"{target.cookie_name}={old}"
            logout, login = await self.race(
                client, (f"/slow-logout/{SLOW}", cookie), ("/login", cookie)
            )
            self.check_served_apart(target, logout, login)
            new = session_cookie(login, target.cookie_name)
            assert new, "login set no cookie"
            assert new != old
            assert session_cookie(logout, target.cookie_name) == "", "logout kept the cookie"
            stored = await self.keys(target, client, new)
            assert stored == {}, f"the moved session outlived the logout: {stored}"
            assert holds_no_session(await read_raw(target.key(new)))
            assert holds_no_session(await read_raw(target.key(old)))
            assert await self.keys(target, client, old) == {}

    async def test_a_write_finishing_after_a_login_lands_in_the_moved_session(
        self, race_target: RaceTarget
    ) -> None:
        """C loads the session, A regenerates it (login), then C writes."""
        target = race_target
        async with target.client() as client:
            old = await self.start_session(target, client)
            cookie = f"{target.cookie_name}={old}"
            write, login = await self.race(
                client, (f"/slow-set/theme/dark/{SLOW}", cookie), ("/login", cookie)
            )
            self.check_served_apart(target, write, login)
            new = session_cookie(login, target.cookie_name)
            assert new, "login set no cookie"
            assert new != old
            # The browser now holds the new id: C's response arrives last, and
            # deleting the cookie or setting the old id would log the user out.
            cookie_set = session_cookie(write, target.cookie_name)
            assert cookie_set in (None, new), "the write logged the user out: " + (
                "it deleted the cookie" if cookie_set == "" else "it set the old id"
            )
            stored = await self.keys(target, client, new)
        assert stored == {"seed": "planted", "user": "alice", "theme": "dark"}, stored


class InProcessRegenerateRace(RegenerateRaceBehaviour):
    """The scenarios in one worker, served in-process by hypercorn: for a store
    that lives inside one process (memory) or whose client the config cannot
    describe (a class provides ``store_config``). The order of each race is
    set by sleeps, so it is the same race, without a second process."""

    @pytest.fixture
    async def race_target(self, store_config: dict[str, Any]) -> AsyncIterator[RaceTarget]:
        app = race_app(store_config)
        port = free_port()
        config = Config()
        config.bind = [f"127.0.0.1:{port}"]
        config.accesslog = None
        target = target_for(store_config, f"http://127.0.0.1:{port}", workers=1)
        target.app = app
        stopped = anyio.Event()
        async with anyio.create_task_group() as group:
            group.start_soon(partial(serve, app, config, shutdown_trigger=stopped.wait))
            with anyio.fail_after(START_TIMEOUT):
                while not port_open(port):  # noqa: ASYNC110 - polling another task's socket
                    await anyio.sleep(0.02)
            yield target
            stopped.set()
