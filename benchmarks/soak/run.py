"""The soak runner: per store, serve the soak app, load it, inject its faults,
judge the invariants, and write the figures.

    python -m benchmarks.soak [--stores redis,postgresql] [--duration 180] [--users 64]
                              [--abuse-seconds 30] [--smoke] [--results FILE]

A store's run: start the target (its servers in a temp dir), serve the app with
two Hypercorn workers, run the users for ``--duration`` seconds; after a
warm-up, read the store's connection count and the workers' memory, then
inject each fault in turn (evenly spread), measuring how long until an
increment is answered 200 again. At the end every live session is read,
ended cookies are replayed and the workers' memory is read again. Then limits
under abuse (:mod:`.abuse_phase`): the same users for ``--abuse-seconds``
alone, then as long with the abusive client alongside. Last, the connections
are counted again, and :mod:`.invariants` judges. Exit status 1 when an
invariant broke on any store.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from . import target as targets
from .abuse import DEFAULT_MAX_SIZE
from .abuse import Settings as AbuseSettings
from .abuse_phase import AbuseOutcome, abuse_section, default_seconds, measure_abuse
from .invariants import (
    Phase,
    PhaseFigures,
    Resources,
    check,
    judge,
    judge_resources,
    rss_growth,
)
from .load import Load, probe_recovery
from .serve import WORKERS, SoakServer, serving
from .target import Fault, Target

#: Seconds of store work per request (SESSION_BACKEND_TIMEOUT) in the soak app.
BACKEND_TIMEOUT = 2.0
#: The longest a request may take: the store's timeout and one second.
REQUEST_LIMIT = BACKEND_TIMEOUT + 1.0
#: The longest an abuser's own request may take: the library holds its store
#: work (load, turn behind the other writers, save) to BACKEND_TIMEOUT, but
#: 200 requests sent at once also wait for a CPU on a machine they saturate
#: (up to 3.6 s seen in total). It must still be answered: past that it hangs.
#: The normal users keep REQUEST_LIMIT, also while the abuser runs.
ABUSER_REQUEST_LIMIT = 2 * BACKEND_TIMEOUT + 1.0
#: How long the recovery probe keeps trying after a fault (the limit is 5 s).
PROBE_LIMIT = 15.0
#: Connections each worker's pool may keep open, by SESSION_TYPE (the leak
#: check's slack): redis-py's pool in our store, aiomcache's, SQLAlchemy's
#: default QueuePool (5 + 10 overflow), PyMongo's maxPoolSize (100) and
#: botocore's max_pool_connections (10).
POOL_SIZES = {"redis": 100, "memcached": 16, "sqlalchemy": 15, "mongodb": 100, "dynamodb": 10}
SMOKE_STORES = ("filesystem", "redis")
SMOKE_DURATION = 10.0
SMOKE_USERS = 8
#: The smoke's limits under abuse: on its first store only, each phase long
#: enough for one round of parallel writers (they need BACKEND_TIMEOUT + 1 s).
SMOKE_ABUSE_SECONDS = 4.5


@dataclass(frozen=True)
class RunSettings:
    duration: float
    users: int
    #: Inject only the first fault of each target (the smoke).
    first_fault_only: bool = False
    #: Each of the two phases of limits under abuse; 0: none.
    abuse_seconds: float = 0.0
    #: The stores that get them (None: every store).
    abuse_stores: frozenset[str] | None = None

    def abuses(self, store: str) -> bool:
        return self.abuse_seconds > 0 and (self.abuse_stores is None or store in self.abuse_stores)


@dataclass
class StoreResult:
    store: str
    figures: list[PhaseFigures]
    run_wide: list[str]
    resources: Resources
    requests: int
    abuse: AbuseOutcome | None = None


def app_config(target: Target) -> dict[str, Any]:
    config = dict(target.app_config())
    config.setdefault("SESSION_BACKEND_TIMEOUT", BACKEND_TIMEOUT)
    if config.get("SESSION_TYPE") != "memcached":  # memcached keeps no user index
        config.setdefault("SESSION_USER_KEY", "user_id")
    return config


def connection_slack(config: dict[str, Any]) -> int:
    return WORKERS * POOL_SIZES.get(str(config.get("SESSION_TYPE")), 0)


def abuser_settings(config: dict[str, Any]) -> AbuseSettings:
    """What the abuser must know of the app: its size limit and timeout."""
    return AbuseSettings(
        max_size=int(config.get("SESSION_MAX_SIZE", DEFAULT_MAX_SIZE)),
        backend_timeout=float(config["SESSION_BACKEND_TIMEOUT"]),
        slowest=ABUSER_REQUEST_LIMIT,
    )


def warm_up_of(duration: float) -> float:
    return min(10.0, max(2.0, duration * 0.15))


async def inject(fault: Fault, server: SoakServer, name: str) -> Phase:
    """Inject *fault* (in a thread: it blocks) and measure the recovery."""
    start = time.monotonic()
    print(f"  fault {fault.name} ...", flush=True)
    await asyncio.to_thread(fault.inject)
    ended = time.monotonic()
    recovery = await probe_recovery(server.url, REQUEST_LIMIT, PROBE_LIMIT, f"probe-{name}")
    shown = "never" if recovery is None else f"{recovery:.2f} s"
    print(f"  fault {fault.name}: {ended - start:.1f} s, back to 200 after {shown}", flush=True)
    return Phase(
        fault.name,
        start,
        start,  # the end is set when the next phase starts
        loses_data=fault.loses_data,
        recovery=recovery,
        is_fault=True,
        fault_end=ended + (recovery or PROBE_LIMIT),
    )


@dataclass(frozen=True)
class Baseline:
    """Store connections and worker memory after warm-up."""

    connections: int | None
    rss: dict[int, int]


async def drive(
    target: Target,
    server: SoakServer,
    load: Load,
    running_load: asyncio.Task[None],
    settings: RunSettings,
) -> tuple[list[Phase], Baseline]:
    """Warm up, read the baseline, inject the faults, wait for the load to end."""
    t0 = time.monotonic()
    warm = warm_up_of(settings.duration)
    faults = list(target.faults())[: 1 if settings.first_fault_only else None]
    await asyncio.sleep(warm)
    baseline = Baseline(await asyncio.to_thread(target.connections), server.worker_rss())
    phases = [Phase("warm-up", t0, time.monotonic())]
    steady_start = time.monotonic()
    # Faults evenly spread over the rest of the run, the last leaving room to recover.
    room = max(0.0, settings.duration - warm - PROBE_LIMIT / 3)
    gap = room / (len(faults) + 1)
    found: list[Phase] = [Phase("steady", steady_start, steady_start)]
    for index, fault in enumerate(faults):
        await asyncio.sleep(max(0.0, steady_start + gap * (index + 1) - time.monotonic()))
        found.append(await inject(fault, server, f"{target.name}-{index}"))
    await running_load
    await load.finish()
    # Each phase ends where the next starts; the last one at the end of the run.
    ends = [p.start for p in found[1:]] + [time.monotonic()]
    phases += [_ended(p, end) for p, end in zip(found, ends, strict=True)]
    return phases, baseline


async def resources_at_end(
    target: Target, baseline: Baseline, rss_after: dict[int, int]
) -> Resources:
    """The baseline against the connections once every load ended (the abuse
    too: its 200 parallel writers may fill the pools, which the slack allows)
    and *rss_after*, the memory at the end of the fault phases (see
    :func:`soak_store`)."""
    await asyncio.sleep(1.0)  # let closed connections go
    return Resources(
        baseline.connections,
        await asyncio.to_thread(target.connections),
        connection_slack(app_config(target)),
        baseline.rss,
        rss_after,
    )


def _ended(phase: Phase, end: float) -> Phase:
    return Phase(
        phase.name,
        phase.start,
        end,
        phase.loses_data,
        phase.recovery,
        phase.is_fault,
        phase.fault_end,
    )


async def soak_store(name: str, settings: RunSettings) -> StoreResult:
    """One store's run, its servers started and stopped here: the faults, then
    limits under abuse on the healthy store, so that neither one's figures
    blur the other's. The memory invariant (20 MiB) spans warm-up to the end
    of the faults: 200 requests at once raise a worker's RSS to a new
    high-water mark that then stays (the same after 7 rounds of writers as
    after 20), which is no leak; the abuse's growth is reported instead."""
    folder = Path(tempfile.mkdtemp(prefix=f"soak-{name}-"))
    try:
        with targets.start(name, folder) as target:
            config = app_config(target)
            with serving(config, folder) as server:
                load = Load(server.url, settings.users, REQUEST_LIMIT)
                running_load = asyncio.create_task(load.run(settings.duration))
                try:
                    phases, baseline = await drive(target, server, load, running_load, settings)
                finally:
                    running_load.cancel()
                figures = judge(load.observations, phases, REQUEST_LIMIT)
                rss_after = server.worker_rss()
                outcome = None
                if settings.abuses(name):
                    outcome = await measure_abuse(
                        server.url,
                        settings.users,
                        settings.abuse_seconds,
                        REQUEST_LIMIT,
                        abuser_settings(config),
                        server.worker_rss,
                    )
                    figures += outcome.figures
                resources = await resources_at_end(target, baseline, rss_after)
                run_wide = judge_resources(resources) + (outcome.violations if outcome else [])
                return StoreResult(
                    name, figures, run_wide, resources, len(load.observations.answers), outcome
                )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- the report -------------------------------------------------------------------------
HEADER = (
    "| store | phase | requests served | acknowledged writes | lost | 500s | 503s "
    "| longest unavailability | recovery | violations |\n"
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def figure_rows(result: StoreResult) -> list[str]:
    rows = []
    for line in result.figures:
        recovery = "" if line.recovery is None else f"{line.recovery:.2f} s"
        rows.append(
            f"| {result.store} | {line.name} | {line.served} | {line.acknowledged} "
            f"| {line.lost} | {line.errors_500} | {line.answered_503} "
            f"| {line.longest_unavailable:.2f} s "
            f"| {recovery} | {len(line.violations)} |"
        )
    return rows


def resources_line(result: StoreResult) -> str:
    r = result.resources
    growth = rss_growth(r)
    shown = ", ".join(f"{g / 2**20:+.1f} MiB" for g in growth.values()) or "n/a"
    if r.connections_before is None:
        connections = "no server to ask"
    else:
        connections = (
            f"{r.connections_before} after warm-up, {r.connections_after} at the end "
            f"(slack allowed: the pools' size, {r.connection_slack})"
        )
    return f"- **{result.store}**: worker RSS growth {shown}; store connections {connections}"


def version_of(argv: Sequence[str]) -> str:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    return (done.stdout or done.stderr).strip().splitlines()[0] if done.returncode == 0 else "?"


def machine() -> str:
    memory = "?"
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory = f"{int(line.split()[1]) / 2**20:.1f} GiB"
    postgres = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    return (
        f"{os.cpu_count()} CPUs (nproc), {memory} RAM, Python {platform.python_version()}, "
        f"{version_of(['redis-server', '--version'])}, "
        f"{version_of([str(postgres[-1]), '--version']) if postgres else 'no PostgreSQL'}, "
        f"{version_of(['memcached', '-V'])}"
    )


def abuse_note(settings: RunSettings) -> str:
    if settings.abuse_seconds <= 0:
        return "; no limits under abuse"
    where = (
        "" if settings.abuse_stores is None else f" on {', '.join(sorted(settings.abuse_stores))}"
    )
    return (
        f"; then{where} {settings.abuse_seconds:g} s of the normal load alone and "
        f"{settings.abuse_seconds:g} s with the abuser"
    )


def report(results: Sequence[StoreResult], command: str, settings: RunSettings) -> str:
    lines = [
        "## Soak run",
        "",
        f"Command: `{command}` ({settings.duration:g} s per store, {settings.users} users, "
        f"SESSION_BACKEND_TIMEOUT={BACKEND_TIMEOUT:g} s, 2 Hypercorn workers"
        f"{abuse_note(settings)}).",
        "",
        f"Machine: {machine()}.",
        "",
        HEADER,
        *(row for result in results for row in figure_rows(result)),
        "",
        *(resources_line(result) for result in results),
        "",
        *abuse_section([(r.store, r.abuse) for r in results if r.abuse is not None]),
    ]
    broken = [
        f"- {r.store}: {problem}"
        for r in results
        for problem in [*r.run_wide, *(v for f in r.figures for v in f.violations)]
    ]
    lines += ["Violations:", "", *(shown(broken) or ["- none: every invariant held"]), ""]
    return "\n".join(lines)


def shown(broken: Sequence[str], per_store: int = 12) -> list[str]:
    """*broken* with at most *per_store* lines per store, so that one store's
    flood of violations never hides another's."""
    lines: list[str] = []
    by_store: dict[str, list[str]] = {}
    for line in broken:
        by_store.setdefault(line.split(":", 1)[0], []).append(line)
    for store, found in by_store.items():
        lines += found[:per_store]
        if len(found) > per_store:
            lines.append(f"{store}: ... and {len(found) - per_store} more")
    return lines


# -- the command line -------------------------------------------------------------------
def available(name: str) -> bool:
    """Whether target *name* can start here (its module imports)."""
    try:
        module, _ = targets.TARGETS[name].split(":")
        __import__(module)
    except ImportError:
        return False
    return True


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__)
    parser.add_argument("--stores", help="comma-separated targets (default: all that start here)")
    parser.add_argument("--duration", type=float, default=180.0, help="seconds per store")
    parser.add_argument("--users", type=int, default=64)
    parser.add_argument(
        "--abuse-seconds",
        type=float,
        help="each of the two phases of limits under abuse (the normal load alone, then "
        "with the abuser) after a store's faults; 0: none (default: a sixth of "
        f"--duration, 5 to 30 s; with --smoke {SMOKE_ABUSE_SECONDS:g} s on its first store)",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help=f"{SMOKE_DURATION:g} s per store, {SMOKE_USERS} users, one fault, "
        f"on {', '.join(SMOKE_STORES)} unless --stores",
    )
    parser.add_argument("--results", type=Path, help="write the markdown report here too")
    return parser.parse_args(argv)


def choose(args: argparse.Namespace) -> tuple[list[str], RunSettings]:
    if args.stores:
        stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    elif args.smoke:
        stores = list(SMOKE_STORES)
    else:
        stores = [name for name in targets.names() if available(name)]
    if args.smoke:
        seconds = SMOKE_ABUSE_SECONDS if args.abuse_seconds is None else args.abuse_seconds
        smoke = RunSettings(SMOKE_DURATION, SMOKE_USERS, first_fault_only=True)
        return stores, replace(smoke, abuse_seconds=seconds, abuse_stores=frozenset(stores[:1]))
    seconds = default_seconds(args.duration) if args.abuse_seconds is None else args.abuse_seconds
    return stores, RunSettings(args.duration, args.users, abuse_seconds=seconds)


async def run_all(stores: Sequence[str], settings: RunSettings) -> list[StoreResult]:
    results = []
    for name in stores:
        print(f"== {name}: {settings.duration:g} s, {settings.users} users", flush=True)
        result = await soak_store(name, settings)
        shown = [HEADER, *figure_rows(result), resources_line(result)]
        if result.abuse is not None:
            shown += result.abuse.lines()
        print("\n".join(shown), flush=True)
        results.append(result)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    stores, settings = choose(args)
    command = "./scripts/soak " + " ".join(sys.argv[1:] if argv is None else argv)
    try:
        results = asyncio.run(run_all(stores, settings))
    except Exception:
        traceback.print_exc()
        return 2
    text = report(results, command.strip(), settings)
    if args.results is not None:
        args.results.write_text(text)
    try:
        for result in results:
            check(result.figures, result.run_wide, result.store)
    except AssertionError as broken:
        print(broken, file=sys.stderr)
        return 1
    print("== every invariant held", flush=True)
    return 0
