"""Many writers on one session: store round trips per request.

    .venv/bin/python -m benchmarks.conflict_storm [--writers 200] [--workers 1]

Serves a tiny app with hypercorn on a Redis server of its own, seeds one
session, then sends N requests at once that each set their own key in it, and
reads Redis's own command counters: reads (GETEX/GET) and compare-and-set
scripts (EVALSHA/EVAL) per request, answers by status, and whether every key
arrived. Runs against whatever ``quart_session`` is importable, so the code of
another revision can be measured by putting its ``src`` first on PYTHONPATH.
With ``--workers 2`` hypercorn runs two processes, whose saves collide in the
store rather than in one process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import redis
from tests.servers.processes import free_port, port_open

from .servers import redis_server

APP = """
import os
from quart import Quart, session
from quart_session import Session

app = Quart(__name__)
app.config.update(SESSION_TYPE="redis", SESSION_URI=os.environ["STORM_REDIS"])

@app.get("/set/<key>")
async def set_(key):
    session[key] = key
    return "ok"

@app.get("/keys")
async def keys():
    return sorted(session.keys())

Session(app)
"""


def commands(port: int) -> Counter[str]:
    client = redis.Redis(port=port, protocol=2)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return Counter({name.removeprefix("cmdstat_"): int(s["calls"]) for name, s in stats.items()})


async def storm(url: str, writers: int) -> tuple[Counter[int | str], bool, float]:
    limits = httpx.Limits(max_connections=writers + 5)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as client:
        seeded = await client.get("/set/seed")
        cookie = {"Cookie": f"session={seeded.cookies['session']}"}
        started = time.monotonic()
        answers = await asyncio.gather(
            *(client.get(f"/set/k{n}", headers=cookie) for n in range(writers)),
            return_exceptions=True,  # the server's listen backlog may refuse some
        )
        elapsed = time.monotonic() - started
        stored = json.loads((await client.get("/keys", headers=cookie)).text)
    answered = {f"k{n}" for n, a in enumerate(answers) if isinstance(a, httpx.Response)}
    complete = answered <= set(stored)
    statuses = Counter(
        a.status_code if isinstance(a, httpx.Response) else type(a).__name__ for a in answers
    )
    return statuses, complete, elapsed


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writers", type=int, default=200)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, redis_server(Path(tmp)) as redis_port:
        (Path(tmp) / "storm_app.py").write_text(APP)
        port = free_port()
        env = {**os.environ, "STORM_REDIS": f"redis://127.0.0.1:{redis_port}/0"}
        env["PYTHONPATH"] = os.pathsep.join([tmp, env.get("PYTHONPATH", "")])
        argv_ = [sys.executable, "-m", "hypercorn", "--workers", str(args.workers)]
        argv_ += ["--bind", f"127.0.0.1:{port}", "storm_app:app"]
        server = subprocess.Popen(argv_, env=env, cwd=tmp)
        try:
            deadline = time.monotonic() + 20
            while not port_open(port):
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the app server did not start")
                time.sleep(0.05)
            before = commands(redis_port)
            url = f"http://127.0.0.1:{port}"
            statuses, complete, elapsed = asyncio.run(storm(url, args.writers))
            used = commands(redis_port) - before
        finally:
            server.terminate()
            server.wait(timeout=20)
    n = args.writers + 2  # the seeding request and the final read
    reads = used["getex"] + used["get"]
    scripts = used["evalsha"] + used["eval"]
    print(f"{args.writers} writers, {args.workers} worker process(es): answers {dict(statuses)}")
    print(f"  every answered key stored: {complete}; {elapsed:.2f} s for the storm")
    print(
        f"  per request: {reads / n:.2f} reads + {scripts / n:.2f} compare-and-sets "
        f"= {(reads + scripts) / n:.2f} store round trips"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
