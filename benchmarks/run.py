"""Run every benchmark and print the tables: ``./scripts/bench [options]``.

Starts Redis, memcached and PostgreSQL on free 127.0.0.1 ports in a temp dir,
one worker process per variant (ours and Quart-Session 3.0.0 both import as
``quart_session``), measures, stops everything, prints Markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from .inprocess import COMMAND_TIMEOUT, SCENARIOS, WorkerProcess, log, time_all, workers
from .overhttp import load_all, serving
from .report import Measurements, render
from .servers import Memcached, Postgres, RedisMonitor, memcached, postgres, redis_server
from .variants import OURS_PYTHON, ROOT, Endpoints, Variant, all_variants, at_revision

#: Requests per scenario in the (untimed) counting pass.
COUNT_REQUESTS = 50
RSS_SESSIONS = 10_000


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__)
    parser.add_argument("--requests", type=int, default=400, help="timed requests per run")
    parser.add_argument("--warmup", type=int, default=100, help="untimed requests before each run")
    parser.add_argument("--rounds", type=int, default=16, help="interleaved rounds (in-process)")
    parser.add_argument("--http-seconds", type=int, default=5, help="wrk -d per run")
    parser.add_argument("--http-rounds", type=int, default=2, help="interleaved rounds (HTTP)")
    parser.add_argument("--connections", type=int, default=16, help="wrk -c")
    parser.add_argument("--threads", type=int, default=2, help="wrk -t")
    parser.add_argument("--no-http", action="store_true", help="skip the Hypercorn + wrk harness")
    parser.add_argument(
        "--no-inprocess", action="store_true", help="skip the in-process harness and counts"
    )
    parser.add_argument("--only", help="comma-separated variant names (none is always run)")
    parser.add_argument("--quick", action="store_true", help="small runs, to check the set-up")
    parser.add_argument("--results", type=Path, help="also write the report to this file")
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="also run our variants on the code of this git revision, to see what a change bought",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.requests, args.warmup, args.rounds, args.http_seconds = 200, 20, 2, 1
    return args


def pick(variants: list[Variant], only: str | None) -> list[Variant]:
    if not only:
        return variants
    wanted = {"none", "none-again", *only.split(",")}
    unknown = wanted - {v.name for v in variants}
    if unknown:
        raise SystemExit(f"unknown variants: {', '.join(sorted(unknown))}")
    return [v for v in variants if v.name in wanted]


def baseline_variants(variants: list[Variant], revision: str, tmp: Path) -> list[Variant]:
    """Our variants again, importing quart_session from *revision* (git archive)."""
    folder = tmp / "baseline"
    folder.mkdir()
    archive = subprocess.run(
        ["git", "archive", revision, "src/quart_session"],
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True, timeout=60)
    ours = [v for v in variants if v.spec["kind"] == "ours"]
    return [at_revision(v, revision, folder / "src") for v in ours]


@dataclass(frozen=True)
class Counted:
    """What one counting pass saw, per request."""

    calls: float
    #: (server round trips, which), where the variant's server counts them.
    trips: tuple[float, str] | None
    #: Rows the SQL database wrote, where the variant has one.
    writes: float | None


class TripCounter:
    """Round trips the servers saw during one counting pass."""

    def __init__(self, redis_port: int, cache: Memcached, pg: Postgres) -> None:
        self.redis_port, self.cache, self.pg = redis_port, cache, pg

    def measure(self, worker: WorkerProcess, scenario: str, n: int) -> Counted:
        # One request first: a read long after the session was stored refreshes
        # its expiry; the pass counts the reads while the expiry is fresh.
        worker.ask("run", scenario=scenario, n=1, warmup=0)
        written = worker.ask("writes")["rows"]
        calls, trips = self._calls_and_trips(worker, scenario, n)
        if written is not None:
            written = (worker.ask("writes")["rows"] - written) / n
        return Counted(calls, trips, written)

    def _calls_and_trips(
        self, worker: WorkerProcess, scenario: str, n: int
    ) -> tuple[float, tuple[float, str] | None]:
        server = worker.variant.server
        if server == "redis":
            monitor = RedisMonitor(self.redis_port)
            calls = worker.ask("count", scenario=scenario, n=n)["calls"]
            return calls, _per_request(monitor.stop(), n)
        if server == "memcached":
            before = self.cache.command_count()
            calls = worker.ask("count", scenario=scenario, n=n)["calls"]
            return calls, ((self.cache.command_count() - before) / n, "")
        if server == "postgres":
            offset = self.pg.log_size()
            calls = worker.ask("count", scenario=scenario, n=n)["calls"]
            time.sleep(0.2)  # the server's log is written asynchronously
            return calls, (self.pg.statements_since(offset) / n, "statements")
        return worker.ask("count", scenario=scenario, n=n)["calls"], None


def _per_request(commands: Counter[str], n: int) -> tuple[float, str]:
    total = sum(commands.values()) / n
    names = " + ".join(
        name if count == n else f"{count / n:g} {name}" for name, count in sorted(commands.items())
    )
    return total, f"({names})" if names else ""


def in_process(m: Measurements, trips: TripCounter, args: argparse.Namespace) -> None:
    log(f"starting {len(m.variants)} in-process workers")
    with workers(m.variants) as running:
        m.infos = {name: w.info for name, w in running.items()}
        log("counting store calls and round trips")
        for name, worker in running.items():
            for scenario in filter(worker.variant.runs, SCENARIOS):
                counted = trips.measure(worker, scenario, COUNT_REQUESTS)
                m.calls[(name, scenario)] = counted.calls
                if counted.trips is not None:
                    m.trips[(name, scenario)] = counted.trips
                if counted.writes is not None:
                    m.writes[(name, scenario)] = counted.writes
            m.sizes[name] = worker.ask("size")
        log("timing")
        m.timings = time_all(
            running,
            requests=args.requests,
            warmup=args.warmup,
            rounds=args.rounds,
            progress=log,
        )
    memory = [v for v in m.variants if v.name == "memory"]
    if memory:
        log(f"peak RSS for {RSS_SESSIONS:,} sessions in the memory store")
        with workers(memory) as fresh:
            m.rss = fresh["memory"].ask("rss", sessions=RSS_SESSIONS)


def breakdown(redis_url: str) -> list[tuple[str, float]]:
    done = subprocess.run(
        [str(OURS_PYTHON), "-m", "benchmarks.breakdown", redis_url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=COMMAND_TIMEOUT,
    )
    return [(label, value) for label, value in json.loads(done.stdout)]


def machine() -> list[str]:
    model = "unknown CPU"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    versions = []
    for argv in (["redis-server", "--version"], ["memcached", "-V"], ["wrk", "-v"]):
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            versions.append((done.stdout or done.stderr).splitlines()[0].strip())
        except (OSError, IndexError, subprocess.TimeoutExpired):
            pass
    return [
        f"- Machine: {model}, {os.cpu_count()} cores, {memory:.0f} GiB RAM, "
        f"{platform.system()} {platform.release()}",
        f"- Servers: {'; '.join(versions)}; PostgreSQL from /usr/lib/postgresql",
    ]


def header(args: argparse.Namespace, argv: list[str], m: Measurements) -> str:
    lines = ["# Benchmark results", "", *machine()]
    for name, label in (("redis", "ours"), ("qs3-redis", "Quart-Session 3.0.0 side")):
        info = m.infos.get(name)
        if info:
            packages = ", ".join(f"{k} {v}" for k, v in sorted(info["packages"].items()))
            lines.append(f"- Python {info['python']} ({label}): {packages}")
    lines.append(f"- Command: `{shlex.join(['./scripts/bench', *argv])}`")
    lines.append(
        f"- In-process: {args.rounds} interleaved rounds x {args.requests} requests "
        f"(after {args.warmup} warm-up) per variant and scenario; HTTP: wrk -d{args.http_seconds}s "
        f"-c{args.connections} -t{args.threads}, {args.http_rounds} round(s)"
    )
    return "\n".join(lines) + "\n\n"


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    m = Measurements(variants=[])
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="quart-session-bench-")))
        log("starting redis, memcached, postgres")
        redis_port = stack.enter_context(redis_server(tmp))
        cache = stack.enter_context(memcached(tmp))
        pg = stack.enter_context(postgres())
        (tmp / "sessions").mkdir()
        at = Endpoints(redis_port, cache.port, pg.url, tmp)
        m.variants = pick(all_variants(at), args.only)
        if args.baseline:
            m.variants += baseline_variants(m.variants, args.baseline, tmp)
        trips = TripCounter(redis_port, cache, pg)

        if not args.no_inprocess:
            in_process(m, trips, args)
            log("where a Redis read's time goes")
            m.breakdown = breakdown(at.redis_url)
        if not args.no_http:
            log("HTTP: starting one Hypercorn per variant")
            with serving(m.variants, tmp) as served:
                m.http = load_all(
                    served,
                    seconds=args.http_seconds,
                    connections=args.connections,
                    threads=args.threads,
                    rounds=args.http_rounds,
                    progress=log,
                )
        log("stopping servers")
    report = header(args, argv, m) + render(m)
    print(report)
    if args.results:
        args.results.write_text(report)
        log(f"written to {args.results}")


if __name__ == "__main__":
    main(sys.argv[1:])
