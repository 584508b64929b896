"""Check a soak target on its own: start it, write sessions, inject each fault.

    python -m benchmarks.soak.targets.selfcheck redis-sentinel redis-cluster mongodb dynamodb

A quick, bounded look before the full soak: a Quart app with ``Session`` on
the target's app config (a "SOAK_REDIS" spec made into a redis-py client
here), a few users incrementing their own counters through Quart's test
client, and each fault injected from a thread mid-way. Per fault it prints
the statuses seen, the longest a user waited for a 200, the slowest request,
and whether every increment acknowledged with 200 is still there. Exits 1 on
a 500, a request slower than SESSION_BACKEND_TIMEOUT + 1 s, a user whose last
request failed, or lost data where the fault does not lose data by design.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from quart import Quart, session
from quart.typing import TestClientProtocol
from redis.asyncio import Redis, RedisCluster
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.sentinel import Sentinel

from benchmarks.soak.target import Fault, Target, start
from quart_session import ServerSideSessionInterface, Session

USERS = 8
BACKEND_TIMEOUT = 2.0
#: Seconds of writes before a fault, and after it ended.
BEFORE, AFTER = 1.5, 4.0
#: Longest a fault may take to inject (a failover waits for its replica).
FAULT_LIMIT = 60.0
#: A request slower than this hung (the library promises timeout + 1 s).
HANG = BACKEND_TIMEOUT + 1.0


def redis_client(spec: dict[str, Any]) -> Redis | RedisCluster:
    """The client a "SOAK_REDIS" spec describes (what the soak app makes too)."""
    # No socket_timeout: the store's own SESSION_BACKEND_TIMEOUT bounds each call.
    if spec["kind"] == "sentinel":
        sentinels = [(host, port) for host, port in spec["sentinels"]]
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            sentinels, socket_connect_timeout=BACKEND_TIMEOUT, socket_timeout=None
        )
        return cast(Redis, sentinel.master_for(spec["service"]))
    if spec["kind"] == "cluster":
        nodes = [ClusterNode(host, port) for host, port in spec["nodes"]]
        return RedisCluster(
            startup_nodes=nodes, socket_connect_timeout=BACKEND_TIMEOUT, socket_timeout=None
        )
    raise ValueError(f"unknown SOAK_REDIS kind {spec['kind']!r}")


def build_app(config: dict[str, Any]) -> Quart:
    app = Quart(__name__)
    app.config.update(
        {key: value for key, value in config.items() if key != "SOAK_REDIS"},
        SECRET_KEY="selfcheck",
        SESSION_BACKEND_TIMEOUT=BACKEND_TIMEOUT,
    )
    if spec := config.get("SOAK_REDIS"):

        @app.before_serving
        async def connect() -> None:
            app.config["SESSION_REDIS"] = redis_client(spec)

        @app.after_serving
        async def disconnect() -> None:
            await app.config["SESSION_REDIS"].aclose()

    Session(app)

    @app.post("/login")
    async def login() -> dict[str, Any]:
        await cast(ServerSideSessionInterface, app.session_interface).regenerate(session)
        session.update(user_id="u", counter=0)
        return {"user": "u"}

    @app.post("/incr")
    async def incr() -> tuple[dict[str, Any], int] | dict[str, Any]:
        if "user_id" not in session:
            return {"error": "not logged in"}, 401
        session["counter"] += 1
        return {"counter": session["counter"]}

    @app.get("/read")
    async def read() -> dict[str, Any]:
        return {"user": session.get("user_id"), "counter": session.get("counter")}

    return app


@dataclass
class User:
    client: TestClientProtocol
    #: The last counter the server acknowledged with 200 (0: logged in only).
    acked: int | None = None
    statuses: Counter[str] = field(default_factory=Counter)
    last_status: str = ""
    longest_gap: float = 0.0
    slowest: float = 0.0
    lost_sessions: int = 0
    lost_increments: int = 0
    _last_ok: float = field(default_factory=time.monotonic)

    async def send(self, method: str, path: str) -> tuple[str, Any]:
        began = time.monotonic()
        try:
            async with asyncio.timeout(HANG + 5):
                response = await self.client.open(path, method=method, json=None)
            status, body = str(response.status_code), await response.get_json()
        except TimeoutError:
            status, body = "hang", None
        ended = time.monotonic()
        self.slowest = max(self.slowest, ended - began)
        self.statuses[status] += 1
        self.last_status = status
        if status == "200":
            self.longest_gap = max(self.longest_gap, began - self._last_ok)
            self._last_ok = ended
        return status, body

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if self.acked is None:
                status, _ = await self.send("POST", "/login")
                self.acked = 0 if status == "200" else None
            else:
                status, body = await self.send("POST", "/incr")
                if status == "200":
                    # A counter that went back lost what it had acknowledged.
                    self.lost_increments += max(0, self.acked + 1 - body["counter"])
                    self.acked = body["counter"]
                elif status == "401":
                    self.session_lost()  # and log in again, as a user would
            if status != "200":
                await asyncio.sleep(0.05)

    def session_lost(self) -> None:
        self.lost_sessions += 1
        self.lost_increments += self.acked or 0
        self.acked = None

    async def verify(self) -> None:
        """Whether the session still holds every increment acknowledged."""
        if self.acked is None:
            return
        _, body = await self.send("GET", "/read")
        if not (body and body["user"]):
            self.session_lost()
        else:
            self.lost_increments += max(0, self.acked - body["counter"])


@dataclass
class Outcome:
    fault: str
    loses_data: bool
    statuses: Counter[str]
    longest_gap: float
    slowest: float
    #: Users whose session is gone, and increments acknowledged but not kept.
    lost_sessions: int
    lost_increments: int
    unrecovered: int
    fault_seconds: float

    def problems(self) -> list[str]:
        found = []
        if self.statuses["500"]:
            found.append(f"{self.statuses['500']} responses 500")
        if self.slowest > HANG:
            found.append(f"a request took {self.slowest:.2f} s (> {HANG:g} s)")
        if self.unrecovered:
            found.append(f"{self.unrecovered} users' last request failed")
        if not self.loses_data and (self.lost_sessions or self.lost_increments):
            lost = f"{self.lost_sessions} sessions, {self.lost_increments} acknowledged increments"
            found.append(f"lost {lost}")
        return found

    def report(self) -> str:
        shown = ", ".join(f"{status}: {n}" for status, n in sorted(self.statuses.items()))
        verdict = "; ".join(self.problems()) or "ok"
        return (
            f"  {self.fault}: fault took {self.fault_seconds:.1f} s; statuses {{{shown}}}; "
            f"longest gap without 200 {self.longest_gap:.2f} s; slowest request "
            f"{self.slowest:.2f} s; lost sessions {self.lost_sessions}, lost acknowledged "
            f"increments {self.lost_increments} (loses_data={self.loses_data}) -> {verdict}"
        )


@asynccontextmanager
async def serving(config: dict[str, Any]) -> AsyncIterator[Quart]:
    app = build_app(config)
    async with app.test_app():
        yield app


async def check_fault(app: Quart, fault: Fault) -> Outcome:
    users = [User(app.test_client()) for _ in range(USERS)]
    stop = asyncio.Event()
    load = [asyncio.create_task(user.run(stop)) for user in users]
    await asyncio.sleep(BEFORE)
    began = time.monotonic()
    try:
        await asyncio.wait_for(asyncio.to_thread(fault.inject), FAULT_LIMIT)
    finally:
        fault_seconds = time.monotonic() - began
        await asyncio.sleep(AFTER)
        stop.set()
        await asyncio.gather(*load)
    unrecovered = sum(user.last_status != "200" for user in users)
    for user in users:
        await user.verify()
    return Outcome(
        fault.name,
        fault.loses_data,
        sum((user.statuses for user in users), Counter()),
        max(user.longest_gap for user in users),
        max(user.slowest for user in users),
        sum(user.lost_sessions for user in users),
        sum(user.lost_increments for user in users),
        unrecovered,
        fault_seconds,
    )


async def check_target(target: Target) -> list[Outcome]:
    outcomes = []
    async with serving(target.app_config()) as app:
        for fault in target.faults():
            outcome = await check_fault(app, fault)
            print(outcome.report(), flush=True)
            outcomes.append(outcome)
        print(f"  connections held while serving: {target.connections()}", flush=True)
    print(f"  connections held after the app closed: {target.connections()}", flush=True)
    return outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="+", metavar="NAME")
    args = parser.parse_args(argv)
    failed = False
    for name in args.names:
        print(f"{name}:", flush=True)
        with (
            tempfile.TemporaryDirectory(prefix=f"soak-{name}-") as folder,
            start(name, Path(folder)) as target,
        ):
            print(f"  connections before: {target.connections()}", flush=True)
            outcomes = asyncio.run(check_target(target))
        failed |= any(outcome.problems() for outcome in outcomes)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
