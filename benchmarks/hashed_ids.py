"""Cost per request of hashed ids at rest (SESSION_HASH_IDS) next to raw ids.

Run as ``.venv/bin/python -m benchmarks.hashed_ids [requests per round]``. One
app per setting on the memory store (so the store costs almost nothing and the
hash shows), driven through ASGI in this process; the two are interleaved over
rounds in a new random order each, and the median of the rounds' mean µs per
request is printed for a read and a write, with the median paired difference
from raw ids and the cost of the hash alone (``record_name``) below.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import statistics
import sys
import time
import timeit
from dataclasses import replace
from typing import Any

from quart_session.ids import record_name

from .memory_app import memory_app
from .worker import AsgiClient

ROUNDS = 15
PATHS = ("/read", "/write")
SETTINGS = {"hashed": True, "raw": False}


async def main(n: int) -> None:
    # One app, its settings switched between blocks: two apps in one process
    # differ by several µs a request whatever they are configured with (the
    # app built second was slower either way), which hid the hash's cost.
    app = memory_app()
    await app.startup()
    interface = app.session_interface
    base = interface.settings
    settings = {name: replace(base, hash_ids=hashed) for name, hashed in SETTINGS.items()}
    client = AsgiClient(app)
    scopes: dict[tuple[str, str], dict[str, Any]] = {}
    for name in SETTINGS:
        interface._configure(settings[name])
        await client.call(client.scope("/fill", None))
        sid = client.set_cookie()
        assert sid, name
        for path in PATHS:
            scopes[name, path] = client.scope(path, sid)
    means: dict[tuple[str, str], list[float]] = {key: [] for key in scopes}
    order = list(scopes)
    for _ in range(ROUNDS):
        random.shuffle(order)  # machine noise hits every scenario alike
        for name, path in order:
            interface._configure(settings[name])
            scope = scopes[name, path]
            for _ in range(n // 10):  # warm-up
                await client.call(dict(scope))
            start = time.perf_counter()
            for _ in range(n):
                await client.call(dict(scope))
            means[name, path].append((time.perf_counter() - start) / n * 1e6)
    await app.shutdown()
    print(f"µs per request: median of {ROUNDS} rounds of {n}; in brackets the median")
    print("per-round difference from 'raw' in the same round")
    print(f"{'':8}{'read':>20}{'write':>20}")
    for name in SETTINGS:
        cells = []
        for path in PATHS:
            own, other = means[name, path], means["raw", path]
            diff = statistics.median(a - b for a, b in zip(own, other, strict=True))
            cells.append(f"{statistics.median(own):8.1f} ({diff:+5.1f})")
        print(f"{name:8}" + "".join(f"{cell:>20}" for cell in cells))
    sid = secrets.token_urlsafe(32)
    runs = timeit.repeat(lambda: record_name(sid, True), number=100_000, repeat=5)
    print(f"record_name alone: {min(runs) / 100_000 * 1e6:.2f} µs per id")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000))
