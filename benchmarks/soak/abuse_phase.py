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
    #: Each worker's resident memory growth over the two phases (bytes).
    rss_growth: dict[int, int]

    @property
    def violations(self) -> list[str]:
        """The abuser's findings and the normal users' losses (run-wide), each
        different one once (the same refusal broken every round is one line)."""
        found = Counter([*self.report.violations, *self.cost.violations])
        return [f"abuse: {v}" + (f" ({n} times)" if n > 1 else "") for v, n in found.items()]

    def rss_shown(self) -> str:
        return ", ".join(f"{g / 2**20:+.1f} MiB" for g in self.rss_growth.values()) or "n/a"

    def lines(self) -> list[str]:
        memory = f"workers' RSS over the abuse phases: {self.rss_shown()}"
        return [self.cost.line(), memory, *self.report.lines()]


def default_seconds(duration: float) -> float:
    """Each of the two phases: a sixth of the store's run, 5 to 30 s (a round
    of 200 parallel writers needs more than SESSION_BACKEND_TIMEOUT + 1 s)."""
    return min(30.0, max(5.0, duration / 6))


def request_latencies(observations: Observations, until: float) -> list[float]:
    """Seconds each normal HTTP request took that started before *until* (the
    phase's deadline; the final reads and replays after it are not load). A
    websocket's answer spans its connection and several messages: left out."""
    return [a.end - a.start for a in observations.answers if a.kind != "ws" and a.start < until]


async def normal_load(
    url: str, users: int, seconds: float, name: str, limit: float, abuser: Settings | None
) -> tuple[PhaseFigures, list[float], AbuseReport | None]:
    """One run of the normal load (with the abuser when *abuser* is given):
    its judged figures, its request latencies, the abuser's report."""
    load = Load(url, users, limit)
    start = time.monotonic()
    deadline = start + seconds
    report = None
    if abuser is None:
        await load.run(seconds)
    else:
        _, report = await asyncio.gather(
            load.run(seconds), abuse(url, deadline=deadline, settings=abuser)
        )
    await load.finish()
    (figures,) = judge(load.observations, [Phase(name, start, time.monotonic())], limit)
    return figures, request_latencies(load.observations, deadline), report


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
    alone, alone_latencies, _ = await normal_load(url, users, seconds, ALONE, limit, None)
    abused, abused_latencies, report = await normal_load(url, users, seconds, ABUSED, limit, abuser)
    assert report is not None
    cost = AbuseCost.of(
        alone_latencies, abused_latencies, lost_alone=alone.lost, lost_abused=abused.lost
    )
    rss_after = worker_rss()
    growth = {pid: rss_after[pid] - rss for pid, rss in rss_before.items() if pid in rss_after}
    return AbuseOutcome(seconds, cost, report, [alone, abused], growth)


# -- the report -------------------------------------------------------------------------
COST_HEADER = (
    "| store | seconds per phase | normal requests alone | p99 alone "
    "| normal requests with abuser | p99 with abuser | AbuseCost (p99 ratio) "
    "| lost alone / with abuser | workers' RSS growth over both phases |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
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
        f"| {cost.lost_alone} / {cost.lost_abused} | {outcome.rss_shown()} |"
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
