"""The three-view app the single-feature micro-benchmarks time (hashed ids,
id header): the memory store, so the store costs almost nothing and the
feature's own cost shows."""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from quart import Quart, session


def memory_app(**config: Any) -> Quart:
    """``/fill`` stores a user, ``/read`` reads it, ``/write`` counts."""
    from quart_session import Session

    app = Quart(__name__)
    app.config.update(SECRET_KEY="bench", SESSION_TYPE="memory", **config)

    @app.get("/read")
    async def read() -> str:
        return str(session.get("user"))

    @app.get("/write")
    async def write() -> str:
        session["n"] = session.get("n", 0) + 1
        return "ok"

    @app.get("/fill")
    async def fill() -> str:
        session["user"] = "alice"
        return "ok"

    Session(app)
    return app


Key = tuple[str, str]
"""(setting or client name, path) of one timed scenario."""


async def timed_rounds(
    calls: dict[Key, tuple[Callable[[dict[str, Any]], Awaitable[int]], dict[str, Any]]],
    n: int,
    rounds: int,
    before: Callable[[str], None] = lambda name: None,
) -> dict[Key, list[float]]:
    """The mean µs per request of each scenario's (call, scope), *rounds*
    times *n* requests after n/10 untimed, the scenarios in a new random
    order each round (machine noise hits every scenario alike); *before* runs
    ahead of each block with the scenario's name."""
    means: dict[Key, list[float]] = {key: [] for key in calls}
    order = list(calls)
    for _ in range(rounds):
        random.shuffle(order)
        for key in order:
            before(key[0])
            call, scope = calls[key]
            for _ in range(n // 10):  # warm-up
                await call(dict(scope))
            start = time.perf_counter()
            for _ in range(n):
                await call(dict(scope))
            means[key].append((time.perf_counter() - start) / n * 1e6)
    return means


def print_paired(
    means: dict[Key, list[float]], names: list[str], paths: tuple[str, ...], baseline: str
) -> None:
    """A row per name: the median µs per request of each path and, in
    brackets, the median per-round difference from *baseline*'s."""
    rounds = len(next(iter(means.values())))
    print(f"µs per request: median of {rounds} rounds; in brackets the median")
    print(f"per-round difference from {baseline!r} in the same round")
    print(f"{'':12}" + "".join(f"{path.strip('/'):>20}" for path in paths))
    for name in names:
        cells = []
        for path in paths:
            own, base = means[name, path], means[baseline, path]
            diff = statistics.median(a - b for a, b in zip(own, base, strict=True))
            cells.append(f"{statistics.median(own):8.1f} ({diff:+5.1f})")
        print(f"{name:12}" + "".join(f"{cell:>20}" for cell in cells))
