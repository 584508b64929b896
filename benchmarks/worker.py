"""In-process harness: one variant's app driven through ASGI, no HTTP server.

Run as ``python -m benchmarks.worker '<spec json>'`` with the variant's Python.
It starts the app, creates the sessions the requests carry, then answers JSON
commands, one per line on stdin, one JSON answer per line on stdout, so the
orchestrator can interleave variants (only one works at a time).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import json
import sys
import time
from collections.abc import Callable
from http.cookies import SimpleCookie
from typing import Any

from quart import Quart

from .app import build_app

COOKIE_NAME = "session"
#: Well-formed-looking but not an id: must never reach a store.
MALFORMED = "not/a valid-id!" * 3
#: (path, which cookie) per scenario.
SCENARIOS: dict[str, tuple[str, str | None]] = {
    "read": ("/read", "read"),
    "write": ("/write", "write"),
    "read-tiny": ("/read-tiny", "tiny"),
    "write-tiny": ("/write-tiny", "tiny-write"),
    "plain": ("/plain", "read"),
    "no_session": ("/nosession", "read"),
    "nocookie": ("/read", None),
    "badcookie": ("/read", "malformed"),
    "static": ("/static/bench.txt", "read"),
    "login": ("/login", None),
}


class AsgiClient:
    """Calls the app as an ASGI server would: a scope, a receive, a send."""

    def __init__(self, app: Quart) -> None:
        self.app = app
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []

    def scope(self, path: str, cookie: str | None) -> dict[str, Any]:
        headers = [(b"host", b"127.0.0.1"), (b"user-agent", b"bench")]
        if cookie is not None:
            headers.append((b"cookie", f"{COOKIE_NAME}={cookie}".encode()))
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "extensions": {},
        }

    async def _send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = message["headers"]

    async def call(self, scope: dict[str, Any]) -> int:
        """One request; the response status."""
        body_sent = False

        async def receive() -> dict[str, Any]:
            nonlocal body_sent
            if not body_sent:
                body_sent = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await asyncio.Event().wait()  # no disconnect; Quart cancels this
            raise AssertionError("unreachable")

        await self.app(scope, receive, self._send)  # type: ignore[arg-type]
        return self.status

    def set_cookie(self) -> str | None:
        for name, value in self.headers:
            if name.lower() == b"set-cookie":
                morsel = SimpleCookie(value.decode()).get(COOKIE_NAME)
                if morsel is not None and morsel.value:
                    return morsel.value
        return None


class Worker:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.kind: str = spec["kind"]
        self.app = build_app(spec)
        self.client = AsgiClient(self.app)
        self.cookies: dict[str | None, str | None] = {}

    async def start(self) -> dict[str, Any]:
        await self.app.startup()
        # Sessions without a store (none, floor) still send a cookie header of
        # the same shape, so the requests differ only by the session layer.
        stand_in = "x" * 43
        self.cookies = {
            "read": await self.new_session() or stand_in,
            "write": await self.new_session() or stand_in,
            "tiny": await self.new_session("/fill-tiny") or stand_in,
            "tiny-write": await self.new_session("/fill-tiny") or stand_in,
            "malformed": MALFORMED,
            None: None,
        }
        for scenario in SCENARIOS:
            await self.run(scenario, 1, 0)  # fail early on a non-200
        await self.sql_writes()  # flushes PostgreSQL's statistics of those requests
        return {"ready": True, "python": sys.version.split()[0], "packages": self.versions()}

    def versions(self) -> dict[str, str]:
        from importlib.metadata import PackageNotFoundError, version

        found = {}
        for name in ("quart", "quart-session", "redis", "valkey-glide", "aiomcache", "sqlalchemy"):
            with contextlib.suppress(PackageNotFoundError):
                found[name] = version(name)
        return found

    async def new_session(self, fill: str = "/fill") -> str | None:
        """The cookie of a new session that *fill* stored, if one was set."""
        status = await self.client.call(self.client.scope(fill, None))
        if status != 200:
            raise RuntimeError(f"{fill} answered {status}")
        return self.client.set_cookie()

    async def run(self, scenario: str, n: int, warmup: int) -> list[int]:
        """Nanoseconds of each of *n* requests after *warmup* untimed ones."""
        path, which = SCENARIOS[scenario]
        template = self.client.scope(path, self.cookies[which])
        call = self.client.call
        clock = time.perf_counter_ns
        for _ in range(warmup):
            await call(dict(template))
        times = []
        for _ in range(n):
            scope = dict(template)
            start = clock()
            status = await call(scope)
            times.append(clock() - start)
            if status != 200:
                raise RuntimeError(f"{scenario}: {path} answered {status}")
        return times

    def _count_targets(self) -> list[tuple[Any, tuple[str, ...]]]:
        interface: Any = self.app.session_interface
        if self.kind == "ours":
            store = interface.store
            # A revision given with --baseline may predate take (logout's one command).
            names = ("load", "save", "delete", "take")
            return [(store, tuple(name for name in names if hasattr(store, name)))]
        if self.kind == "qs3":
            return [(interface, ("get", "set", "delete"))]
        return list(self.app.extensions.get("bench_count", []))

    async def count(self, scenario: str, n: int) -> float:
        """Store calls per request, counted by wrapping the store's methods
        (an untimed run: the wrappers cost time)."""
        calls = 0

        def counting(method: Callable[..., Any]) -> Callable[..., Any]:
            @functools.wraps(method)
            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                nonlocal calls
                calls += 1
                return await method(*args, **kwargs)

            return wrapper

        targets = self._count_targets()
        for target, names in targets:
            for name in names:
                setattr(target, name, counting(getattr(target, name)))
        try:
            await self.run(scenario, n, 0)
        finally:
            for target, names in targets:
                for name in names:
                    delattr(target, name)
        return calls / n

    def _sql_engine(self) -> Any:
        """The SQLAlchemy engine of our SQL store or of a SQL floor, else None."""
        if self.kind == "ours":
            interface: Any = self.app.session_interface
            return getattr(interface.store, "_engine", None)
        return self.app.extensions.get("bench_engine")

    async def sql_writes(self) -> int | None:
        """Rows written so far by the store's database (None: not a SQL one).

        SQLite: ``total_changes`` of the engine's one pooled connection (every
        row an INSERT, UPDATE or DELETE changed on it). PostgreSQL: the sessions
        tables' ``n_tup_upd``, after each pooled connection flushed its
        statistics (a backend otherwise holds them up to 10 s; PostgreSQL 15+).
        """
        engine = self._sql_engine()
        if engine is None:
            return None
        if engine.dialect.name == "sqlite":
            async with engine.connect() as conn:
                raw = await conn.get_raw_connection()
                return int(raw.driver_connection.total_changes)
        if engine.dialect.name == "postgresql":
            return await _postgres_updates(engine)
        raise RuntimeError(f"no write counter for {engine.dialect.name}")

    async def size(self) -> dict[str, Any]:
        """Bytes stored for the realistic session, per serializer."""
        sizes: dict[str, Any] = {}
        if self.kind == "cookie":
            cookie = await self.new_session()
            sizes["cookie"] = len(cookie or "")
        elif self.kind == "qs3":
            sid = await self.new_session()
            interface: Any = self.app.session_interface
            value = await interface.get(interface.key_prefix + sid)
            sizes["json"] = len(value.encode())
        elif self.kind == "ours":
            from quart_session.serializers import resolve_serializer

            interface = self.app.session_interface
            original = interface.serializer
            for name in ("json", "msgpack"):
                interface.serializer = resolve_serializer(name)
                sid = interface.ids.from_cookie(await self.new_session())
                record = await interface.store.load(interface.engine.key_for(sid))
                sizes[name] = len(record.payload)
            interface.serializer = original
        return sizes

    async def rss(self, sessions: int) -> dict[str, Any]:
        """Resident memory before and after creating *sessions* live sessions
        (memory store), and the process's peak."""
        interface: Any = self.app.session_interface
        prefix = interface.settings.key_prefix
        live_before = await interface.store.count(prefix)
        gc.collect()
        before = _memory_kib("VmRSS")
        for _ in range(sessions):
            if await self.new_session() is None:
                raise RuntimeError("/fill set no cookie")
        gc.collect()
        return {
            "sessions": await interface.store.count(prefix) - live_before,
            "rss_before_kib": before,
            "rss_after_kib": _memory_kib("VmRSS"),
            "rss_peak_kib": _memory_kib("VmHWM"),
        }

    async def handle(self, command: dict[str, Any]) -> Any:
        op = command["op"]
        if op == "run":
            return {"ns": await self.run(command["scenario"], command["n"], command["warmup"])}
        if op == "count":
            return {"calls": await self.count(command["scenario"], command["n"])}
        if op == "writes":
            return {"rows": await self.sql_writes()}
        if op == "size":
            return await self.size()
        if op == "rss":
            return await self.rss(command["sessions"])
        raise ValueError(f"unknown op {op!r}")


async def serve(spec: dict[str, Any]) -> None:
    worker = Worker(spec)
    loop = asyncio.get_running_loop()
    reply(await worker.start())
    try:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line or json.loads(line)["op"] == "quit":
                break
            try:
                reply(await worker.handle(json.loads(line)))
            except Exception as error:
                reply({"error": repr(error)})
    finally:
        await worker.app.shutdown()


async def _postgres_updates(engine: Any) -> int:
    """Rows updated in the tables named "sessions", stats of every idle pooled
    connection flushed first (each flushes its own on its next idle moment)."""
    from sqlalchemy import text

    held = []
    try:
        for _ in range(max(1, engine.sync_engine.pool.checkedin())):
            conn = await engine.connect()
            held.append(conn)
            await conn.execute(text("SELECT pg_stat_force_next_flush()"))
            await conn.rollback()
    finally:
        for conn in held:
            await conn.close()
    async with engine.connect() as conn:
        updated = await conn.scalar(
            text("SELECT sum(n_tup_upd) FROM pg_stat_user_tables WHERE relname = 'sessions'")
        )
    return int(updated or 0)


def _memory_kib(field: str) -> int:
    """A ``/proc/self/status`` figure: VmRSS (now) or VmHWM (peak), in KiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def reply(answer: Any) -> None:
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(serve(json.loads(sys.argv[1])))
