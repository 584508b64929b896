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
MINIMAL = "minimal"
QS3 = "qs3-redis"
#: Ours on Redis (redis-py): what the Redis goals are about.
OURS = "redis"
FLOOR = "floor"
#: Our SQL variants and the bare-SELECT floor each is held to, with the ratio.
SQL_FLOORS = {"sqlite": ("floor-sqlite", 1.5), "postgres": ("floor-postgres", 1.3)}
#: Bytes our Redis store puts before the payload (marker + version).
REDIS_HEADER = 20
#: µs of A/A difference above which a run is reported as disturbed.
DISTURBED = 5.0
#: Scenarios that must cost no store call and no more than noise.
STORELESS = ("nocookie", "badcookie", "static")
#: The two session sizes: (what the tables call it, its read, its write).
SIZES = (("realistic", "read", "write"), ("tiny", "read-tiny", "write-tiny"))
#: The scenarios of the overhead-only table: views that need no stored session.
OTHERS = ("plain", "no_session", *STORELESS)
SESSION_SHAPES = {
    "realistic": "user id, CSRF token, a cart of 5 items, a datetime, flash messages",
    "tiny": '`{"n": <int>}`',
}
LABELS = {"nocookie": "no cookie", "badcookie": "bad cookie", "no_session": "no_session view"}


@dataclass
class Measurements:
    variants: list[Variant]
    infos: dict[str, Any] = field(default_factory=dict)
    calls: dict[tuple[str, str], float] = field(default_factory=dict)
    trips: dict[tuple[str, str], tuple[float, str]] = field(default_factory=dict)
    sizes: dict[str, dict[str, int]] = field(default_factory=dict)
    timings: Timings = field(default_factory=Timings)
    http: dict[tuple[str, str], list[WrkResult]] = field(default_factory=dict)
    #: Rows the SQL database wrote per request (counted), per (variant, scenario).
    writes: dict[tuple[str, str], float] = field(default_factory=dict)
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

    def variant(self, name: str) -> Variant | None:
        return next((v for v in self.m.variants if v.name == name), None)

    def current_ours(self) -> list[Variant]:
        """Our variants at this revision (not --baseline ones)."""
        return [v for v in self.m.variants if v.spec["kind"] == "ours" and v.revision is None]

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


def timing_table(f: Figures, read: str, write: str) -> list[str]:
    header = ["variant", "read mean", "read p99", "**read +**", "write mean", "write p99"]
    rows = []
    for v in f.m.variants:
        if not (v.runs(read) or v.runs(write)):
            continue
        row = [v.label]
        for scenario in (read, write):
            if not (v.runs(scenario) and f.has(v.name, scenario)):
                row += ["—"] * 3
                continue
            row += [_us(f.mean(v.name, scenario)), _us(f.p99(v.name, scenario))]
            row.append(f"**{_us(f.overhead(v.name, scenario))}**")
        rows.append(row)
    return _table([*header, "**write +**"], rows)


def login_table(f: Figures) -> list[str]:
    """What SESSION_USER_KEY adds where it costs: at login (the user's index)."""
    rows = [
        [v.label, _us(f.overhead(v.name, "login"))]
        for v in f.m.variants
        if v.name not in ("none", "none-again") and f.has(v.name, "login")
    ]
    return _table(["variant", "login +"], rows)


def others_table(f: Figures) -> list[str]:
    rows = []
    for v in f.m.variants:
        cells = [_us(f.overhead(v.name, s)) if f.has(v.name, s) else "—" for s in OTHERS]
        if any(cell != "—" for cell in cells):
            rows.append([v.label, *cells])
    return _table(["variant", *(LABELS.get(s, s) + " +" for s in OTHERS)], rows)


def calls_table(f: Figures) -> list[str]:
    header = ["variant", *(LABELS.get(s, s) for s in SCENARIOS)]
    header += ["server round trips: read", "write"]
    rows = []
    for v in f.m.variants:
        row = [v.label]
        row += [f"{f.m.calls[(v.name, s)]:g}" if v.runs(s) else "—" for s in SCENARIOS]
        for scenario in ("read", "write"):
            trips = f.m.trips.get((v.name, scenario))
            row.append("—" if trips is None else f"{trips[0]:g} {trips[1]}".strip())
        rows.append(row)
    return _table(header, rows)


def writes_table(f: Figures) -> list[str]:
    """Rows the database wrote per read, counted where the store is a SQL
    database (elsewhere a sliding expiry rides along with the read: "—")."""
    rows = []
    for v in f.m.variants:
        if v.spec["kind"] in ("none", "cookie", "minimal"):
            continue
        cells = [f.m.writes.get((v.name, s)) for s in ("read", "read-tiny")]
        rows.append([v.label, *("—" if c is None else f"{c:g}" for c in cells)])
    return _table(["variant", "writes per read", "per tiny read"], rows)


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


def _ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}x" if theirs > 0 else "no ratio (not above zero)"


def _at_most(text: str, ours: float, theirs: float, limit: float) -> Goal:
    """ours <= limit x theirs (overheads in µs)."""
    figure = f"{ours:.0f} µs vs {theirs:.0f} µs = {_ratio(ours, theirs)}"
    return Goal(text, figure, theirs > 0 and ours <= limit * theirs)


def redis_goals(f: Figures) -> list[Goal]:
    found = []
    for size, read, write in SIZES:
        for scenario in (read, write):
            if f.has(OURS, scenario) and f.has(QS3, scenario):
                ours, qs3 = f.overhead(OURS, scenario), f.overhead(QS3, scenario)
                what = "read" if scenario == read else "write"
                text = f"{what} overhead on Redis, {size} session, <= 0.8x Quart-Session 3.0.0's"
                found.append(_at_most(text, ours, qs3, 0.8))
        if f.has(OURS, read) and f.has(FLOOR, read):
            ours, floor = f.overhead(OURS, read), f.overhead(FLOOR, read)
            text = f"read overhead on Redis, {size} session, <= 1.25x the bare GET floor"
            found.append(_at_most(text, ours, floor, 1.25))
    return found


def sql_goals(f: Figures) -> list[Goal]:
    found = []
    for name, (floor, limit) in SQL_FLOORS.items():
        variant = f.variant(name)
        if variant is None:
            continue
        for size, read, _ in SIZES:
            if f.has(name, read) and f.has(floor, read):
                ours, bare = f.overhead(name, read), f.overhead(floor, read)
                text = f"{variant.label}: read overhead, {size} session, <= {limit}x bare SELECT"
                found.append(_at_most(text, ours, bare, limit))
        writes = [f.m.writes[(name, s)] for s in ("read", "read-tiny") if (name, s) in f.m.writes]
        if writes:
            found.append(
                Goal(
                    f"{variant.label}: 0 writes per read while the expiry is fresh (counted)",
                    " and ".join(f"{w:g}" for w in writes) + " rows per read (realistic, tiny)",
                    not any(writes),
                )
            )
    return found


def no_session_goal(f: Figures) -> list[Goal]:
    names = [v.name for v in f.current_ours() if f.has(v.name, "no_session")]
    if OURS not in names or not f.has(MINIMAL, "no_session") or not f.has(NOISE, "no_session"):
        return []
    calls = max(f.m.calls.get((n, "no_session"), 0) for n in names)
    ours, minimal = f.overhead(OURS, "no_session"), f.overhead(MINIMAL, "no_session")
    noise = f.noise("no_session")
    return [
        Goal(
            "no_session view with a valid cookie: 0 store calls (every store of ours), "
            "overhead within noise of the do-nothing interface",
            f"{calls:g} calls; overhead {ours:.1f} µs on Redis vs {minimal:.1f} µs do-nothing "
            f"(difference {ours - minimal:.1f} µs), noise {noise:.1f} µs",
            calls == 0 and abs(ours - minimal) <= noise,
        )
    ]


def storeless_goals(f: Figures) -> list[Goal]:
    found = []
    for scenario in STORELESS:
        names = [v.name for v in f.current_ours() if f.has(v.name, scenario)]
        if OURS not in names or not f.has(NOISE, scenario):
            continue
        calls = max(f.m.calls.get((n, scenario), 0) for n in names)
        redis, noise = f.overhead(OURS, scenario), f.noise(scenario)
        worst = max(names, key=lambda n: f.overhead(n, scenario))
        found.append(
            Goal(
                f"{scenario}: zero store calls (every store of ours), overhead within noise",
                f"{calls:g} calls; overhead {redis:.1f} µs on Redis (at most "
                f"{f.overhead(worst, scenario):.1f} µs: {worst}), noise {noise:.1f} µs",
                calls == 0 and redis <= noise,
            )
        )
    return found


def http_goal(f: Figures) -> list[Goal]:
    ours, qs3 = f.m.http.get((OURS, "read")), f.m.http.get((QS3, "read"))
    if not ours or not qs3:
        return []
    rate = statistics.median(r.requests_per_second for r in ours)
    theirs = statistics.median(r.requests_per_second for r in qs3)
    return [
        Goal(
            "over HTTP: read req/s on Redis >= 1.1x Quart-Session 3.0.0's",
            f"{rate:.0f} vs {theirs:.0f} req/s = {rate / theirs:.2f}x",
            rate >= 1.1 * theirs,
        )
    ]


def size_goal(f: Figures) -> list[Goal]:
    ours_size, qs3_size = f.stored_bytes(OURS, "msgpack"), f.stored_bytes(QS3, "json")
    if not (ours_size and qs3_size):
        return []
    return [
        Goal(
            "msgpack session <= 0.7x Quart-Session 3.0.0's stored bytes (Redis, with header)",
            f"{ours_size} B vs {qs3_size} B = {ours_size / qs3_size:.2f}x",
            ours_size <= 0.7 * qs3_size,
        )
    ]


def goals(f: Figures) -> list[Goal]:
    return [
        *redis_goals(f),
        *no_session_goal(f),
        *storeless_goals(f),
        *sql_goals(f),
        *http_goal(f),
        *size_goal(f),
    ]


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
        for size, read, write in SIZES:
            out += [f"#### The {size} session ({SESSION_SHAPES[size]})", ""]
            out += [*timing_table(f, read, write), ""]
        out += ["#### Views that need no stored session: overhead (µs)", ""]
        out += [
            "plain: a view that does not touch the session; no_session view: one marked "
            "`no_session` (a plain view where the library lacks it); both carry a valid cookie.",
            "",
        ]
        out += others_table(f)
        out += ["", "#### Logging in: a new session holding a user id, overhead (µs)", ""]
        out += login_table(f)
        out += ["", "### Store calls per request (counted)", ""]
        out += calls_table(f)
        if m.writes:
            out += ["", "### Rows the SQL database wrote per read (counted)", ""]
            out += writes_table(f)
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
