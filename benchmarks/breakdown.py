"""Where a Redis read's time goes: the floor taken apart, in one process.

Run as ``python -m benchmarks.breakdown REDIS_URL`` with our Python; prints JSON
rows (label, overhead in µs over no session). Every app runs in this one process
and event loop, interleaved, so they differ only in what each row names:

- the bare GET, then GETEX (sliding expiry), then our RedisStore.load, then the
  same through the interface's store call (timeout bookkeeping);
- our read on the memory store: all of the session work without the network;
- that plus one bare GET inside its load: the sum of the two parts, measured;
- our read on Redis.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from quart import Quart
from redis.asyncio import Redis

from quart_session.interface import ServerSideSessionInterface
from quart_session.stores.base import Record
from quart_session.stores.redis import RedisPyDriver, RedisStore

from .app import REALISTIC_SESSION, build_app, stored_payload
from .report import fast_phase
from .worker import AsgiClient

KEY = "breakdown:session"
TTL = 3600
ROUNDS = 12
REQUESTS = 800


def view_app(name: str, work: Callable[[], Awaitable[Any]]) -> Quart:
    """No session: ``/read`` awaits *work*."""
    app = Quart(name)

    async def read() -> str:
        await work()
        return "ok"

    app.add_url_rule("/read", "read", read)
    return app


async def measure(redis_url: str) -> list[tuple[str, float]]:
    client = Redis.from_url(redis_url)
    await client.set(KEY, b"qs4:" + b"0" * 16 + stored_payload(REALISTIC_SESSION))
    store = RedisStore(RedisPyDriver(client, owned=False))
    ours_redis = build_app(
        {"kind": "ours", "config": {"SESSION_TYPE": "redis", "SESSION_URI": redis_url}}
    )
    ours_memory = build_app({"kind": "ours", "config": {"SESSION_TYPE": "memory"}})
    memory_and_get = build_app({"kind": "ours", "config": {"SESSION_TYPE": "memory"}})
    apps = {
        "no session": build_app({"kind": "none"}),
        "bare GET": view_app("get", lambda: client.get(KEY)),
        "GETEX (sliding expiry)": view_app("getex", lambda: client.getex(KEY, ex=TTL)),
        "RedisStore.load (GETEX)": view_app("load", lambda: store.load(KEY, TTL)),
        "the same through the interface's store call": view_app(
            "call", lambda: interface(ours_redis).engine.calls.run(store, store.load, KEY, TTL)
        ),
        "ours, memory store: the session work alone": ours_memory,
        "ours, memory store + a bare GET in its load": memory_and_get,
        "ours, Redis": ours_redis,
    }
    templates = {}
    for name, app in apps.items():
        await app.startup()
        asgi = AsgiClient(app)
        await asgi.call(asgi.scope("/fill", None))
        templates[name] = asgi.scope("/read", asgi.set_cookie() or "x" * 43)
    memory_store = interface(memory_and_get).store
    load = memory_store.load

    async def load_after_get(key: str, refresh_ttl: int | None = None) -> Record | None:
        await client.get(KEY)
        return await load(key, refresh_ttl)

    memory_store.load = load_after_get  # type: ignore[method-assign]
    medians: dict[str, list[float]] = {name: [] for name in apps}
    for _ in range(ROUNDS):
        for name, app in apps.items():
            asgi = AsgiClient(app)
            template = templates[name]
            for _ in range(REQUESTS // 10):
                await asgi.call(dict(template))
            times = []
            for _ in range(REQUESTS):
                start = time.perf_counter_ns()
                await asgi.call(dict(template))
                times.append(time.perf_counter_ns() - start)
            medians[name].append(statistics.median(times) / 1000)
    for app in apps.values():
        await app.shutdown()
    await client.aclose()
    base = fast_phase(medians.pop("no session"))
    return [(name, fast_phase(values) - base) for name, values in medians.items()]


def interface(app: Quart) -> ServerSideSessionInterface:
    found = app.session_interface
    assert isinstance(found, ServerSideSessionInterface)
    return found


if __name__ == "__main__":
    print(json.dumps(asyncio.run(measure(sys.argv[1]))))
