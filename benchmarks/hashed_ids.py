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
import secrets
import sys
import timeit
from dataclasses import replace
from typing import Any

from quart_session.ids import record_name

from .memory_app import memory_app, print_paired, timed_rounds
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
    calls = {key: (client.call, scope) for key, scope in scopes.items()}
    means = await timed_rounds(
        calls, n, ROUNDS, before=lambda name: interface._configure(settings[name])
    )
    await app.shutdown()
    print_paired(means, list(SETTINGS), PATHS, "raw")
    sid = secrets.token_urlsafe(32)
    runs = timeit.repeat(lambda: record_name(sid, True), number=100_000, repeat=5)
    print(f"record_name alone: {min(runs) / 100_000 * 1e6:.2f} µs per id")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000))
