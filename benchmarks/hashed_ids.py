"""Cost per request of hashed ids at rest (SESSION_HASH_IDS) next to raw ids.

Run as ``.venv/bin/python -m benchmarks.hashed_ids [requests per round]``. One
app per setting on the memory store (so the store costs almost nothing and the
hash shows), driven through ASGI in this process; the two are interleaved over
rounds, and the median of the rounds' mean µs per request is printed for a
read and a write, with the cost of the hash alone (``record_name``) below.
"""

from __future__ import annotations

import asyncio
import secrets
import statistics
import sys
import time
import timeit
from typing import Any

from quart import Quart

from quart_session.ids import record_name

from .memory_app import memory_app
from .worker import AsgiClient

ROUNDS = 15
SETTINGS = {"hashed": True, "raw": False}


def build(hash_ids: bool) -> Quart:
    return memory_app(SESSION_HASH_IDS=hash_ids)


async def main(n: int) -> None:
    apps = {name: build(hashed) for name, hashed in SETTINGS.items()}
    for app in apps.values():
        await app.startup()
    clients = {name: AsgiClient(app) for name, app in apps.items()}
    scopes: dict[tuple[str, str], dict[str, Any]] = {}
    for name, client in clients.items():
        await client.call(client.scope("/fill", None))
        sid = client.set_cookie()
        assert sid, name
        for path in ("/read", "/write"):
            scopes[name, path] = client.scope(path, sid)
    means: dict[tuple[str, str], list[float]] = {key: [] for key in scopes}
    for _ in range(ROUNDS):
        for (name, path), scope in scopes.items():
            call = clients[name].call
            for _ in range(n // 10):  # warm-up
                await call(dict(scope))
            start = time.perf_counter()
            for _ in range(n):
                await call(dict(scope))
            means[name, path].append((time.perf_counter() - start) / n * 1e6)
    for app in apps.values():
        await app.shutdown()
    print(f"{'':8}{'read':>10}{'write':>10}   (µs per request, median of {ROUNDS} rounds of {n})")
    for name in clients:
        row = [statistics.median(means[name, path]) for path in ("/read", "/write")]
        print(f"{name:8}{row[0]:10.1f}{row[1]:10.1f}")
    sid = secrets.token_urlsafe(32)
    runs = timeit.repeat(lambda: record_name(sid, True), number=100_000, repeat=5)
    print(f"record_name alone: {min(runs) / 100_000 * 1e6:.2f} µs per id")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000))
