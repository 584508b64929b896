"""The soak run's invariants, judged at the end per store and per fault.

A run is split into *phases*: warm-up, steady, one per fault (from its
injection to the next one's), then the two phases of limits under abuse (the
normal load alone, then with the abuser; each its own load, judged alone).
Every observation of a load falls in one, so each fault gets its own line of
figures and its own violations.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

from .load import Answer, CounterCheck, Observations

#: The longest a service may take to answer 200 again after a fault ended.
RECOVERY_LIMIT = 5.0
#: The most a worker's resident memory may grow after warm-up.
RSS_GROWTH_LIMIT = 20 * 1024 * 1024


class InvariantBroken(AssertionError):
    """At least one invariant broke; the message lists them."""


@dataclass(frozen=True)
class Phase:
    name: str
    start: float
    end: float
    loses_data: bool = False
    #: Seconds from the fault's end until an increment was answered 200 (None: never).
    recovery: float | None = None
    is_fault: bool = False
    #: When the fault (injection plus recovery) was over: a data-losing fault
    #: excuses vanished sessions that were live before this.
    fault_end: float = 0.0


@dataclass
class PhaseFigures:
    name: str
    served: int = 0
    acknowledged: int = 0
    lost: int = 0
    errors_500: int = 0
    answered_503: int = 0
    longest_unavailable: float = 0.0
    recovery: float | None = None
    violations: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Resources:
    """Store connections and worker memory after warm-up and at the end."""

    connections_before: int | None
    connections_after: int | None
    #: Connections the app's pools may hold open on top of the warm-up count.
    connection_slack: int
    rss_before: dict[int, int]
    rss_after: dict[int, int]


def served(answer: Answer) -> bool:
    return answer.status == 200 or answer.status == 101 or 300 <= answer.status < 400


def excused(phases: Sequence[Phase], since: float | None, until: float) -> bool:
    """Whether a fault that loses data by design overlapped [since, until]."""
    if since is None:
        return False
    return any(p.loses_data and p.start <= until and p.fault_end >= since for p in phases)


def phase_of(phases: Sequence[Phase], at: float) -> int:
    for index, phase in enumerate(phases):
        if at < phase.end:
            return index
    return len(phases) - 1


def answer_violation(answer: Answer, phases: Sequence[Phase], limit: float) -> str | None:
    """What is wrong with one answer, if anything."""
    if served(answer):
        if answer.end - answer.start > limit:
            return f"{answer.kind} answered after {answer.end - answer.start:.2f} s (> {limit} s)"
        return None
    if answer.status == 503:
        return None if answer.retry_after else f"{answer.kind}: 503 without Retry-After"
    if answer.status == 401 and excused(phases, answer.login_at, answer.end):
        return None
    if answer.status == 0:
        return f"{answer.kind}: no answer within {limit} s (timeout or broken connection)"
    return f"{answer.kind}: status {answer.status}"


def longest_gap(ends: list[float], start: float, end: float) -> float:
    """The longest stretch in [start, end] without a successful answer."""
    marks = [start, *sorted(t for t in ends if start <= t <= end), end]
    return max(b - a for a, b in itertools.pairwise(marks))


def judge(observations: Observations, phases: Sequence[Phase], limit: float) -> list[PhaseFigures]:
    """Figures per phase, each with the invariants broken in it; the run-wide
    ones (connections, memory) are :func:`judge_resources`'."""
    figures = [PhaseFigures(p.name, recovery=p.recovery) for p in phases]
    successes: list[float] = []
    for answer in observations.answers:
        line = figures[phase_of(phases, answer.end)]
        if served(answer):
            line.served += 1
            successes.append(answer.end)
        elif answer.status == 503:
            line.answered_503 += 1
        elif answer.status >= 500:
            line.errors_500 += 1
        if (problem := answer_violation(answer, phases, limit)) is not None:
            line.violations.append(problem)
    for at in observations.acknowledged:
        figures[phase_of(phases, at)].acknowledged += 1
    _judge_checks(observations, phases, figures)
    _judge_replays(observations, figures, phases)
    for phase, line in zip(phases, figures, strict=True):
        line.longest_unavailable = longest_gap(successes, phase.start, phase.end)
        if phase.is_fault and (phase.recovery is None or phase.recovery > RECOVERY_LIMIT):
            line.violations.append(
                f"service not back to 200 within {RECOVERY_LIMIT} s after the fault "
                f"(recovery: {phase.recovery})"
            )
    return figures


def _judge_checks(
    observations: Observations, phases: Sequence[Phase], figures: list[PhaseFigures]
) -> None:
    """Each session judged once, on the worst read of it: a loss seen by
    several reads is one loss."""
    worst: dict[tuple[str, float], CounterCheck] = {}
    for check in observations.checks:
        key = (check.user, check.login_at)
        if key not in worst or shortfall(check) > shortfall(worst[key]):
            worst[key] = check
    for check in worst.values():
        line = figures[phase_of(phases, check.acknowledged_at or check.at)]
        if check.seen_user == check.user:
            if (missing := shortfall(check)) > 0:
                line.lost += missing
                line.violations.append(
                    f"{check.user}: counter {check.seen_counter} < acknowledged "
                    f"{check.acknowledged} (lost {missing})"
                )
        elif check.seen_user is not None:
            line.violations.append(f"{check.user}: read the session of {check.seen_user}")
        elif not excused(phases, check.login_at, check.at):
            line.lost += check.acknowledged
            line.violations.append(
                f"{check.user}: session vanished (acknowledged {check.acknowledged}) "
                "with no data-losing fault"
            )


def shortfall(check: CounterCheck) -> int:
    """Acknowledged increments a read did not show (a vanished session: all)."""
    if check.seen_user != check.user:
        return check.acknowledged + 1  # worse than any partial read
    return check.acknowledged - int(check.seen_counter or 0)


def _judge_replays(
    observations: Observations, figures: list[PhaseFigures], phases: Sequence[Phase]
) -> None:
    for replay in observations.replays:
        if replay.status == 200 and replay.seen_user is not None:
            figures[phase_of(phases, replay.at)].violations.append(
                f"a {replay.how} session of {replay.seen_user} came back"
            )


def judge_resources(resources: Resources) -> list[str]:
    problems = []
    before, after = resources.connections_before, resources.connections_after
    if before is not None and after is not None and after > before + resources.connection_slack:
        problems.append(
            f"store connections leaked: {before} after warm-up, {after} at the end "
            f"(slack {resources.connection_slack})"
        )
    if set(resources.rss_before) != set(resources.rss_after):
        problems.append(
            f"worker processes changed: {sorted(resources.rss_before)} -> "
            f"{sorted(resources.rss_after)}"
        )
    for pid, growth in rss_growth(resources).items():
        if growth >= RSS_GROWTH_LIMIT:
            problems.append(f"worker {pid} grew by {growth / 2**20:.1f} MiB after warm-up")
    return problems


def rss_growth(resources: Resources) -> dict[int, int]:
    return {
        pid: resources.rss_after[pid] - rss
        for pid, rss in resources.rss_before.items()
        if pid in resources.rss_after
    }


def check(figures: Sequence[PhaseFigures], run_wide: Sequence[str], store: str) -> None:
    """Raise :class:`InvariantBroken` listing every violation (a few of each phase)."""
    lines = [f"{store}: {problem}" for problem in run_wide]
    for line in figures:
        for problem in line.violations[:5]:
            lines.append(f"{store} / {line.name}: {problem}")
        if len(line.violations) > 5:
            lines.append(f"{store} / {line.name}: ... {len(line.violations) - 5} more")
    if lines:
        raise InvariantBroken("soak invariants broken:\n  " + "\n  ".join(lines))
