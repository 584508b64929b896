"""Figures from the raw measurements: overheads, tables, the goals."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .inprocess import SCENARIOS, Timings
from .overhttp import HTTP_SCENARIOS, WrkResult
from .variants import Variant

BASELINE = "none"
NOISE = "none-again"
FLOOR = "floor"
#: Bytes our Redis store puts before the payload (marker + version).
REDIS_HEADER = 20
#: µs of A/A difference above which a run is reported as disturbed.
DISTURBED = 5.0
#: Scenarios that must cost no store call and no more than noise.
STORELESS = ("nocookie", "badcookie", "static")


@dataclass
class Measurements:
    variants: list[Variant]
    infos: dict[str, Any] = field(default_factory=dict)
    calls: dict[tuple[str, str], float] = field(default_factory=dict)
    trips: dict[tuple[str, str], tuple[float, str]] = field(default_factory=dict)
    sizes: dict[str, dict[str, int]] = field(default_factory=dict)
    timings: Timings = field(default_factory=Timings)
    http: dict[tuple[str, str], list[WrkResult]] = field(default_factory=dict)
    rss: dict[str, Any] = field(default_factory=dict)
    breakdown: list[tuple[str, float]] = field(default_factory=list)


#: Share of the slowest requests a round's mean leaves out: on a shared
#: machine they are mostly other processes' time slices, not ours.
TRIM = 0.05


def mean_us(times: Sequence[int]) -> float:
    """Mean of the fastest 95% of a round's requests, in µs."""
    kept = sorted(times)[: max(1, round(len(times) * (1 - TRIM)))]
    return sum(kept) / len(kept) / 1000


def fast_phase(values: Iterable[float]) -> float:
    """The lower quartile of per-round figures.

    This machine alternates between fast and slow phases that each cover whole
    rounds (seen: no-session rounds of 122 or of 175 µs, nothing between), and
    every variant gets its share of slow rounds. A median, or the median of
    per-round differences, mixes the phases as soon as a third of the rounds
    are slow; the lower quartile stays in the fast phase, the undisturbed cost.
    """
    figures = list(values)
    if len(figures) < 2:  # a --rounds 1 run
        return figures[0]
    return statistics.quantiles(figures, n=4, method="inclusive")[0]


def p99_us(rounds: Iterable[Sequence[int]]) -> float:
    pooled = sorted(t for times in rounds for t in times)
    return pooled[min(len(pooled) - 1, int(len(pooled) * 0.99))] / 1000


class Figures:
    def __init__(self, m: Measurements) -> None:
        self.m = m

    def has(self, name: str, scenario: str) -> bool:
        return (name, scenario) in self.m.timings.rounds

    def mean(self, name: str, scenario: str) -> float:
        """The fast-phase figure over rounds of the round's mean, in µs."""
        return fast_phase(mean_us(t) for t in self.m.timings.rounds[(name, scenario)])

    def p99(self, name: str, scenario: str) -> float:
        return p99_us(self.m.timings.rounds[(name, scenario)])

    def overhead(self, name: str, scenario: str) -> float:
        """This variant's mean minus the no-session one, in µs."""
        return self.mean(name, scenario) - self.mean(BASELINE, scenario)

    def noise(self, scenario: str) -> float:
        """How far from zero the overhead of a second, identical no-session
        process came in this run, in *scenario*."""
        return abs(self.overhead(NOISE, scenario))

    def disturbance(self) -> float:
        """The worst noise of the scenarios without a file: a static file is
        read in a thread, whose scheduling spreads it by 10-20 µs anyway."""
        return max(self.noise(s) for s in SCENARIOS if s != "static" and self.has(NOISE, s))

    def stored_bytes(self, name: str, serializer: str) -> int | None:
        """What the store holds: our Redis store puts a header before the payload."""
        size = self.m.sizes.get(name, {}).get(serializer)
        if size is None:
            return None
        return size + REDIS_HEADER if name in self.ours_on_redis else size

    @property
    def ours_on_redis(self) -> set[str]:
        return {
            v.name
            for v in self.m.variants
            if v.spec["kind"] == "ours" and v.spec["config"].get("SESSION_TYPE") == "redis"
        }


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _us(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 10 else f"{value:.1f}"


def timing_table(f: Figures) -> list[str]:
    header = ["variant", "read mean", "read p99", "**read +**", "write mean", "write p99"]
    header += ["**write +**", "plain +", "no cookie +", "bad cookie +", "static +"]
    rows = []
    for v in f.m.variants:
        row = [v.label]
        # The floor's views other than /read do nothing: only its read means something.
        relevant = ("read",) if v.name == FLOOR else SCENARIOS
        for scenario in ("read", "write"):
            if scenario not in relevant:
                row += ["—"] * 3
                continue
            row += [_us(f.mean(v.name, scenario)), _us(f.p99(v.name, scenario))]
            row.append(f"**{_us(f.overhead(v.name, scenario))}**")
        row += [_us(f.overhead(v.name, s)) if s in relevant else "—" for s in ("plain", *STORELESS)]
        rows.append(row)
    return _table(header, rows)


def calls_table(f: Figures) -> list[str]:
    header = ["variant", *(s.replace("nocookie", "no cookie") for s in SCENARIOS)]
    header += ["server round trips: read", "write"]
    rows = []
    for v in f.m.variants:
        row = [v.label] + [f"{f.m.calls.get((v.name, s), 0):g}" for s in SCENARIOS]
        for scenario in ("read", "write"):
            trips = f.m.trips.get((v.name, scenario))
            row.append("—" if trips is None else f"{trips[0]:g} {trips[1]}".strip())
        rows.append(row)
    return _table(header, rows)


def http_table(f: Figures) -> list[str]:
    header = ["variant"]
    for scenario in HTTP_SCENARIOS:
        header += [f"{scenario} req/s", f"{scenario} p99 ms"]
    rows = []
    for v in f.m.variants:
        row = [v.label]
        for scenario in HTTP_SCENARIOS:
            results = f.m.http.get((v.name, scenario))
            if not results:
                row += ["—", "—"]
                continue
            rate = statistics.median(r.requests_per_second for r in results)
            p99 = statistics.median(r.p99_ms for r in results)
            errors = sum(r.errors for r in results)
            row += [f"{rate:.0f}" + (f" ({errors} errors)" if errors else ""), f"{p99:.2f}"]
        rows.append(row)
    return _table(header, rows)


def size_table(f: Figures) -> list[str]:
    rows = []
    for v in f.m.variants:
        sizes = f.m.sizes.get(v.name) or {}
        if not sizes:
            continue
        cells = [str(f.stored_bytes(v.name, s) or "—") for s in ("json", "msgpack")]
        rows.append([v.label, *cells, str(sizes.get("cookie", "—"))])
    return _table(["variant", "JSON bytes", "msgpack bytes", "cookie bytes"], rows)


@dataclass(frozen=True)
class Goal:
    text: str
    figure: str
    met: bool


def goals(f: Figures) -> list[Goal]:
    found = []
    if all(f.has(n, "read") for n in ("redis", "qs3-redis", "floor")):
        ours, qs3, floor = (f.overhead(n, "read") for n in ("redis", "qs3-redis", "floor"))
        found.append(
            Goal(
                "read overhead on Redis (sliding expiry) <= 0.9x Quart-Session 3.0.0's",
                f"{ours:.0f} µs vs {qs3:.0f} µs = {ours / qs3:.2f}x",
                ours <= 0.9 * qs3,
            )
        )
        found.append(
            Goal(
                "read overhead on Redis <= 1.25x the bare GET floor",
                f"{ours:.0f} µs vs {floor:.0f} µs = {ours / floor:.2f}x",
                ours <= 1.25 * floor,
            )
        )
    if all(f.has(n, "write") for n in ("redis", "qs3-redis")):
        ours, qs3 = (f.overhead(n, "write") for n in ("redis", "qs3-redis"))
        found.append(
            Goal(
                "write overhead on Redis (compare-and-set) <= 0.9x Quart-Session 3.0.0's",
                f"{ours:.0f} µs vs {qs3:.0f} µs = {ours / qs3:.2f}x",
                ours <= 0.9 * qs3,
            )
        )
    for scenario in STORELESS:
        names = [
            v.name for v in f.m.variants if v.spec["kind"] == "ours" and f.has(v.name, scenario)
        ]
        if "redis" not in names or not f.has(NOISE, scenario):
            continue
        calls = max(f.m.calls.get((n, scenario), 0) for n in names)
        redis, noise = f.overhead("redis", scenario), f.noise(scenario)
        worst = max(names, key=lambda n: f.overhead(n, scenario))
        found.append(
            Goal(
                f"{scenario}: zero store calls (every store of ours), overhead within noise",
                f"{calls:g} calls; overhead {redis:.1f} µs on Redis (at most "
                f"{f.overhead(worst, scenario):.1f} µs: {worst}), noise {noise:.1f} µs",
                calls == 0 and redis <= noise,
            )
        )
    ours_size, qs3_size = f.stored_bytes("redis", "msgpack"), f.stored_bytes("qs3-redis", "json")
    if ours_size and qs3_size:
        found.append(
            Goal(
                "msgpack session <= 0.7x Quart-Session 3.0.0's stored bytes (Redis, with header)",
                f"{ours_size} B vs {qs3_size} B = {ours_size / qs3_size:.2f}x",
                ours_size <= 0.7 * qs3_size,
            )
        )
    return found


def render(m: Measurements) -> str:
    f = Figures(m)
    out: list[str] = []
    if m.timings.rounds:
        out += ["### In-process (ASGI, no server): µs per request", ""]
        out += [
            "mean = lower quartile over rounds of the round's mean without its slowest 5% of "
            "requests (slow phases of the machine cover whole rounds: the lower quartile is the "
            "undisturbed cost); p99 over all requests; **+** = overhead over *no session* (the "
            "difference of those means).",
            "",
        ]
        out += timing_table(f)
        out += ["", "### Store calls per request (counted)", ""]
        out += calls_table(f)
    if m.breakdown:
        out += [
            "",
            "### Where a Redis read's time goes (one process, µs over no session)",
            "",
        ]
        out += _table(["what /read does", "+ µs"], [[label, _us(v)] for label, v in m.breakdown])
    if m.http:
        out += ["", "### Over HTTP (Hypercorn + wrk)", ""]
        out += http_table(f)
    if m.sizes:
        out += ["", "### Bytes stored for the realistic session", ""]
        out += size_table(f)
    if m.rss:
        r = m.rss
        peak, before = r["rss_peak_kib"] / 1024, r["rss_before_kib"] / 1024
        per_session = (r["rss_after_kib"] - r["rss_before_kib"]) * 1024 / r["sessions"]
        out += [
            "",
            f"Memory store, {r['sessions']:,} live sessions (realistic, JSON): peak RSS "
            f"{peak:.1f} MiB, {before:.1f} MiB before creating them: "
            f"{per_session:.0f} bytes per session.",
        ]
    out += ["", "### Goals", ""]
    if m.timings.rounds and f.has(NOISE, "read") and f.disturbance() > DISTURBED:
        out += [
            f"**This run was disturbed**: two identical no-session processes differ by "
            f"{f.disturbance():.0f} µs (a full run on a quiet machine: 1-4 µs). Something else "
            "used the CPU, or the run was short (--quick): do not trust these ratios.",
            "",
        ]
    for goal in goals(f):
        out.append(f"- [{'x' if goal.met else ' '}] {goal.text}: {goal.figure}")
    return "\n".join(out) + "\n"
