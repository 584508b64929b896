"""Limits under abuse in a store's soak run: what the abusive client
(:mod:`.abuse`) costs the normal users, and that nothing of theirs is lost.

After the store's fault phases, on a healthy store, the same normal load runs
twice for the same length: alone, then with :func:`.abuse.abuse` alongside
until the same deadline. Each run is a fresh :class:`.load.Load` with the same
users (same names, same random seeds: the same mix of requests), judged by
:mod:`.invariants` like any phase (statuses, hangs, lost increments, ended
sessions back). :class:`.abuse.AbuseCost` compares the normal users' p99
request latency of the two runs; the abuser's own findings are its
:class:`.abuse.AbuseReport`. The run fails on any of its violations.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .abuse import AbuseCost, AbuseReport, Settings, abuse
from .invariants import Phase, PhaseFigures, judge
from .load import Load, Observations

#: How often the load's event loop is sampled for lag (its own stalls, which
#: the clients would count as the server's latency).
LAG_SAMPLE = 0.05
ALONE = "abuse: normal alone"
ABUSED = "abuse: with abuser"
#: Notes of the abuser's kinds shown per store in the markdown report at most.
SHOWN_NOTES = 8


@dataclass(frozen=True)
class AbuseOutcome:
    seconds: float
    cost: AbuseCost
    report: AbuseReport
    #: The two phases (alone, with the abuser), judged like every other phase.
    figures: list[PhaseFigures]
    #: Each worker's resident memory (bytes) before and after the two phases.
    rss_before: dict[int, int]
    rss_after: dict[int, int]
    #: The longest the load's own event loop stalled in each phase (seconds).
    loop_lag: tuple[float, float]

    @property
    def violations(self) -> list[str]:
        """The abuser's findings, the normal users' losses and a worker that
        died (run-wide), each different one once (the same refusal broken every
        round is one line)."""
        found = Counter([*self.report.violations, *self.cost.violations])
        if set(self.rss_before) != set(self.rss_after):
            changed = f"{sorted(self.rss_before)} -> {sorted(self.rss_after)}"
            found[f"worker processes changed: {changed}"] += 1
        return [f"abuse: {v}" + (f" ({n} times)" if n > 1 else "") for v, n in found.items()]

    def rss_shown(self) -> str:
        growth = [
            after - self.rss_before[pid]
            for pid, after in self.rss_after.items()
            if pid in self.rss_before
        ]
        return ", ".join(f"{g / 2**20:+.1f} MiB" for g in growth) or "n/a"

    def lines(self) -> list[str]:
        alone, abused = self.loop_lag
        return [
            self.cost.line(),
            f"workers' RSS over the abuse phases: {self.rss_shown()}; the load's longest "
            f"event-loop stall: {alone * 1000:.0f} ms alone, {abused * 1000:.0f} ms with "
            "the abuser",
            *self.report.lines(),
        ]


def default_seconds(duration: float) -> float:
    """Each of the two phases: a sixth of the store's run, 5 to 30 s (a round
    of 200 parallel writers needs more than SESSION_BACKEND_TIMEOUT + 1 s)."""
    return min(30.0, max(5.0, duration / 6))


def request_latencies(observations: Observations, until: float) -> list[float]:
    """Seconds each normal HTTP request took that started before *until* (the
    phase's deadline; the final reads and replays after it are not load).
    Websocket openings and messages are left out, as in the runs before they
    were answers of their own (the figures stay comparable)."""
    return [
        a.end - a.start
        for a in observations.answers
        if not a.kind.startswith("ws") and a.start < until
    ]


async def longest_stall(until: float) -> float:
    """The longest this event loop was late to wake a sleeper, until *until*:
    time the clients count as latency though no server was slow."""
    longest = 0.0
    while (now := time.monotonic()) < until:
        await asyncio.sleep(LAG_SAMPLE)
        longest = max(longest, time.monotonic() - now - LAG_SAMPLE)
    return longest


@dataclass(frozen=True)
class NormalRun:
    """One run of the normal load, judged."""

    figures: PhaseFigures
    latencies: list[float]
    loop_lag: float
    report: AbuseReport | None


async def normal_load(
    url: str, users: int, seconds: float, name: str, limit: float, abuser: Settings | None
) -> NormalRun:
    """One run of the normal load, with the abuser alongside when *abuser* is given."""
    load = Load(url, users, limit)
    start = time.monotonic()
    deadline = start + seconds
    lag = asyncio.create_task(longest_stall(deadline))
    report = None
    if abuser is None:
        await load.run(seconds)
    else:
        _, report = await asyncio.gather(
            load.run(seconds), abuse(url, deadline=deadline, settings=abuser)
        )
    loop_lag = await lag
    await load.finish()
    (figures,) = judge(load.observations, [Phase(name, start, time.monotonic())], limit)
    return NormalRun(figures, request_latencies(load.observations, deadline), loop_lag, report)


async def measure_abuse(
    url: str,
    users: int,
    seconds: float,
    limit: float,
    abuser: Settings,
    worker_rss: Callable[[], dict[int, int]],
) -> AbuseOutcome:
    """The normal load alone, then with the abuser: what the abuse cost.
    *worker_rss* reads each worker's resident memory (bytes)."""
    print(f"  abuse: {seconds:g} s of normal load alone, then with the abuser", flush=True)
    rss_before = worker_rss()
    alone = await normal_load(url, users, seconds, ALONE, limit, None)
    abused = await normal_load(url, users, seconds, ABUSED, limit, abuser)
    assert abused.report is not None
    cost = AbuseCost.of(
        alone.latencies,
        abused.latencies,
        lost_alone=alone.figures.lost,
        lost_abused=abused.figures.lost,
    )
    return AbuseOutcome(
        seconds,
        cost,
        abused.report,
        [alone.figures, abused.figures],
        rss_before,
        worker_rss(),
        (alone.loop_lag, abused.loop_lag),
    )


# -- the report -------------------------------------------------------------------------
COST_HEADER = (
    "| store | seconds per phase | normal requests alone | p99 alone "
    "| normal requests with abuser | p99 with abuser | AbuseCost (p99 ratio) "
    "| lost alone / with abuser | workers' RSS growth over both phases "
    "| load's longest loop stall alone / with abuser |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)
KIND_HEADER = (
    "| store | abuse | sent | answers | longest request | violations |\n"
    "|---|---|---:|---|---:|---:|"
)


def cost_row(store: str, outcome: AbuseOutcome) -> str:
    cost = outcome.cost
    return (
        f"| {store} | {outcome.seconds:g} | {cost.alone_requests} "
        f"| {cost.alone_p99 * 1000:.1f} ms | {cost.abused_requests} "
        f"| {cost.abused_p99 * 1000:.1f} ms | x{cost.ratio:.2f} "
        f"| {cost.lost_alone} / {cost.lost_abused} | {outcome.rss_shown()} "
        f"| {outcome.loop_lag[0] * 1000:.0f} / {outcome.loop_lag[1] * 1000:.0f} ms |"
    )


def kind_rows(store: str, outcome: AbuseOutcome) -> list[str]:
    rows = []
    for kind in outcome.report.kinds.values():
        answers = ", ".join(f"{status}: {n}" for status, n in sorted(kind.statuses.items()))
        found = len(kind.violations) + kind.more_violations
        rows.append(
            f"| {store} | {kind.kind} | {kind.sent} | {answers} | {kind.longest:.3f} s | {found} |"
        )
    return rows


def note_lines(store: str, outcome: AbuseOutcome) -> list[str]:
    notes = [
        f"- {store} / {kind.kind}: {note}"
        for kind in outcome.report.kinds.values()
        for note in kind.notes
    ]
    if len(notes) > SHOWN_NOTES:
        notes = [*notes[:SHOWN_NOTES], f"- {store}: ... {len(notes) - SHOWN_NOTES} more notes"]
    return notes


def abuse_section(outcomes: Sequence[tuple[str, AbuseOutcome]]) -> list[str]:
    """The markdown section of the report: the cost, then the abuser's figures."""
    if not outcomes:
        return []
    return [
        "### Limits under abuse",
        "",
        "The normal users' p99 request latency (websockets left out) with the same load "
        "alone and with the abusive client alongside (oversized sessions, 200 parallel "
        "writers on one session, malformed cookies, dead cookies):",
        "",
        COST_HEADER,
        *(cost_row(store, outcome) for store, outcome in outcomes),
        "",
        KIND_HEADER,
        *(row for store, outcome in outcomes for row in kind_rows(store, outcome)),
        "",
        *(line for store, outcome in outcomes for line in note_lines(store, outcome)),
        "",
    ]
