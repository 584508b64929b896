"""Limits under abuse: an abusive client the soak runs next to its normal users.

    report = await abuse(base_url, deadline=time.monotonic() + 60)
    python -m benchmarks.soak.abuse http://127.0.0.1:PORT --seconds 20

It speaks the soak app's contract (``/login``, ``/incr``, ``/cart``, ``/read``,
``/logout``, ``/revoke-others``, ``/big``). Each kind of abuse is bounded in
requests and in time and stops by itself at *deadline* (a ``time.monotonic()``
moment); ``abuse()`` runs the chosen kinds at once and returns an
:class:`AbuseReport`: per kind, requests sent, answers by status, the longest
request, notes (figures) and violations (empty when the library held).

``oversized``
    Logs in and grows its session past ``SESSION_MAX_SIZE`` (``POST /big``).
    Half the limit is answered 200; over it, 400 (the default answer to
    ``SessionDataError``, docs/configuration.rst) and the stored session stays
    as it was.
``parallel-writers``
    200 ``POST /incr`` at once on ONE session. docs/concurrency.rst promises a
    merge per top-level key on conflict, the last save winning a key both
    changed, and ``409`` with ``Retry-After`` for a save that lost every retry.
    Checked: every answer 200 or 409; the counter ends at a value some 200
    answered; the session's other keys (user, cart) untouched. Parallel
    increments of one key are *not* all kept (each request writes what it
    loaded plus one): how many were is a note, not a violation.
``malformed-cookies``
    Garbled session cookies (random, over-long, non-ASCII, a live cookie
    mutated), at most ``rate`` a second: an empty session every time (``/read``
    shows no user, ``/incr`` answers 401), never the garbage set back as a cookie.
``dead-cookies``
    Cookies of sessions logged out, revoked by another login's
    ``/revoke-others``, replaced by a new login (``regenerate``) and, when
    *expired_after* is given, expired: an empty session every time, never the
    old data, also after a write sent with the dead cookie.

Everywhere: never a 5xx but 503, 503 and 409 only with ``Retry-After``, never
a request longer than ``SESSION_BACKEND_TIMEOUT`` + 1 s (*backend_timeout* + 1).
A refused connection (the server's listen backlog full under 200 writers) is
counted, not a violation: no request reached the library.

What the abuse cost the normal users is :class:`AbuseCost`, filled by run.py:

1. run a phase of normal load alone; keep every request's latency and the
   count of acknowledged increments lost;
2. run the same load again (same users, same length) with ``abuse()`` alongside,
   its deadline the end of the phase::

       latencies, report = await asyncio.gather(load(...), abuse(url, deadline=end))

3. ``cost = AbuseCost.of(alone, abused, lost_alone=..., lost_abused=...)``;
   print ``cost.line()`` and ``report.lines()``; the run fails on
   ``report.violations + cost.violations`` (nothing of the normal users lost).
"""

from __future__ import annotations

import argparse
import asyncio
import http.cookiejar
import json
import math
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

OVERSIZED = "oversized"
PARALLEL_WRITERS = "parallel-writers"
MALFORMED_COOKIES = "malformed-cookies"
DEAD_COOKIES = "dead-cookies"
ALL_KINDS = (OVERSIZED, PARALLEL_WRITERS, MALFORMED_COOKIES, DEAD_COOKIES)

#: The library's default SESSION_MAX_SIZE and SESSION_BACKEND_TIMEOUT.
DEFAULT_MAX_SIZE = 256 * 1024
DEFAULT_BACKEND_TIMEOUT = 2.0
#: Violations kept per kind; more are counted, so a broken run stays readable.
KEPT_VIOLATIONS = 50
#: Answers that must say when to retry.
NEEDS_RETRY_AFTER = frozenset({409, 503})
#: A well-formed id as a cookie value: base64url, then optionally ".signature".
WELL_FORMED = re.compile(r"[A-Za-z0-9_-]{16,}(\.[A-Za-z0-9_-]+)?")
#: Bounds of each kind, besides the deadline.
OVERSIZED_ROUNDS = 200
WRITER_ROUNDS = 20
MALFORMED_LIMIT = 20_000
MALFORMED_LANES = 4
DEAD_CYCLES = 2_000
#: Seconds between rounds, so that abuse is a load and not a busy loop.
OVERSIZED_PAUSE = 0.2
WRITER_PAUSE = 1.0
DEAD_PAUSE = 0.25
#: A write with each dead cookie every this many cycles (each starts a new session).
DEAD_WRITE_EVERY = 8
#: Seconds past *expired_after* before an expired session must read empty
#: (a store's expiry is not to the millisecond).
EXPIRY_SLACK = 1.0


@dataclass
class KindReport:
    """What one kind of abuse sent, got and found wrong."""

    kind: str
    sent: int = 0
    #: Status code (as text) or "refused", "timeout", an exception's name.
    statuses: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    more_violations: int = 0
    longest: float = 0.0
    notes: list[str] = field(default_factory=list)

    def violate(self, message: str) -> None:
        if len(self.violations) < KEPT_VIOLATIONS:
            self.violations.append(message)
        else:
            self.more_violations += 1

    def line(self) -> str:
        statuses = ", ".join(f"{status}: {n}" for status, n in sorted(self.statuses.items()))
        found = len(self.violations) + self.more_violations
        return (
            f"{self.kind:17} {self.sent:6} sent, longest {self.longest:.3f} s, "
            f"{found} violations ({statuses})"
        )


@dataclass
class AbuseReport:
    """Per kind of abuse, a :class:`KindReport`."""

    kinds: dict[str, KindReport]

    @property
    def violations(self) -> list[str]:
        found = [f"{k.kind}: {v}" for k in self.kinds.values() for v in k.violations]
        more = sum(k.more_violations for k in self.kinds.values())
        return [*found, f"... and {more} more"] if more else found

    def lines(self) -> list[str]:
        out = []
        for kind in self.kinds.values():
            out.append(kind.line())
            out += [f"    {note}" for note in kind.notes]
            out += [f"    VIOLATION {v}" for v in kind.violations]
            if kind.more_violations:
                out.append(f"    ... and {kind.more_violations} more violations")
        return out


def p99(latencies: Sequence[float]) -> float:
    """The 99th percentile of *latencies* (nearest rank: a value that occurred)."""
    if not latencies:
        raise ValueError("p99 of no latencies")
    ordered = sorted(latencies)
    return ordered[math.ceil(0.99 * len(ordered)) - 1]


@dataclass(frozen=True)
class AbuseCost:
    """The normal users' p99 latency without and with the abuser, and what
    they lost in each phase (see the module docstring for how run.py fills it)."""

    alone_p99: float
    abused_p99: float
    alone_requests: int
    abused_requests: int
    #: Acknowledged increments of the normal users lost in each phase: 0.
    lost_alone: int = 0
    lost_abused: int = 0

    @classmethod
    def of(
        cls,
        alone: Sequence[float],
        abused: Sequence[float],
        *,
        lost_alone: int = 0,
        lost_abused: int = 0,
    ) -> AbuseCost:
        """From each phase's request latencies (seconds)."""
        return cls(p99(alone), p99(abused), len(alone), len(abused), lost_alone, lost_abused)

    @property
    def ratio(self) -> float:
        """How many times slower the normal users' p99 was with the abuser."""
        return self.abused_p99 / self.alone_p99 if self.alone_p99 > 0 else math.inf

    @property
    def violations(self) -> list[str]:
        return [
            f"normal users lost {lost} acknowledged increments {phase}"
            for lost, phase in ((self.lost_alone, "alone"), (self.lost_abused, "under abuse"))
            if lost
        ]

    def line(self) -> str:
        return (
            f"normal users' p99: {self.alone_p99 * 1000:.1f} ms alone "
            f"({self.alone_requests} requests), {self.abused_p99 * 1000:.1f} ms with the "
            f"abuser ({self.abused_requests} requests): x{self.ratio:.2f}; "
            f"lost {self.lost_alone} / {self.lost_abused}"
        )


@dataclass(frozen=True)
class Settings:
    """What the server is configured with, and how hard to abuse it."""

    max_size: int = DEFAULT_MAX_SIZE
    backend_timeout: float = DEFAULT_BACKEND_TIMEOUT
    writers: int = 200
    #: Malformed cookies per second at most.
    rate: float = 100.0
    #: Seconds after its login an unused session has expired on this server
    #: (its PERMANENT_SESSION_LIFETIME or SESSION_ABSOLUTE_LIFETIME); None:
    #: no expired cookie is tried (the default lifetimes outlast a run).
    expired_after: float | None = None
    seed: int = 0
    #: Seconds after which an answer counts as a hang; None: backend_timeout + 1.
    slowest: float | None = None

    @property
    def hang_after(self) -> float:
        return self.slowest if self.slowest is not None else self.backend_timeout + 1.0


def refusing_jar() -> http.cookiejar.CookieJar:
    """A cookie jar that keeps nothing: every request names its own cookie."""
    return http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))


def set_cookies(response: httpx.Response) -> dict[str, str]:
    """name -> value of each cookie *response* sets ("" for one it deletes)."""
    found = {}
    for header in response.headers.get_list("set-cookie"):
        pair, _, attributes = header.partition(";")
        name, _, value = pair.partition("=")
        deleted = "01 jan 1970" in attributes.lower() or "max-age=0" in attributes.lower()
        found[name.strip()] = "" if deleted else value.strip().strip('"')
    return found


class Abuser:
    """Sends one kind's requests, timing and checking each answer."""

    def __init__(self, client: httpx.AsyncClient, report: KindReport, settings: Settings) -> None:
        self.client = client
        self.report = report
        self.settings = settings
        self.cookie_name = "session"

    async def send(
        self,
        method: str,
        path: str,
        *,
        cookie: bytes | None,
        expect: Collection[int],
        what: str,
    ) -> httpx.Response | None:
        """The answer to one request, or None if none came; a violation for a
        status outside *expect* (a 503 with Retry-After always passes), a 5xx,
        a 409/503 without Retry-After, a hang."""
        headers = [(b"Cookie", self.cookie_name.encode() + b"=" + cookie)] if cookie else []
        self.report.sent += 1
        started = time.monotonic()
        try:
            response = await self.client.request(method, path, headers=headers)
        except httpx.ConnectError:
            self.report.statuses["refused"] += 1
            return None
        except httpx.TimeoutException:
            self.report.statuses["timeout"] += 1
            self.report.violate(f"{what}: no answer in {self.client.timeout.read} s (a hang)")
            return None
        except httpx.TransportError as error:
            self.report.statuses[type(error).__name__] += 1
            self.report.violate(f"{what}: the connection ended without an answer ({error!r})")
            return None
        finally:
            elapsed = time.monotonic() - started
            self.report.longest = max(self.report.longest, elapsed)
        self.report.statuses[str(response.status_code)] += 1
        self._check(response, elapsed, expect, what)
        return response

    def _check(
        self, response: httpx.Response, elapsed: float, expect: Collection[int], what: str
    ) -> None:
        status = response.status_code
        if elapsed > self.settings.hang_after:
            self.report.violate(f"{what}: took {elapsed:.2f} s, over {self.settings.hang_after} s")
        if status in NEEDS_RETRY_AFTER and "retry-after" not in response.headers:
            self.report.violate(f"{what}: answered {status} without Retry-After")
        elif status not in expect and status != 503:
            self.report.violate(f"{what}: answered {status}, expected {sorted(expect)}")

    async def login(self, user: str, cookie: bytes | None = None) -> bytes | None:
        """Log *user* in (regenerating the session of *cookie*): the new cookie value."""
        response = await self.send(
            "POST", f"/login?user={user}", cookie=cookie, expect={200}, what="a login"
        )
        if response is None or response.status_code != 200:
            return None
        cookies = {name: value for name, value in set_cookies(response).items() if value}
        if len(cookies) != 1:
            self.report.violate(f"a login set {len(cookies)} session cookies, not one")
            return None
        ((self.cookie_name, value),) = cookies.items()
        return value.encode()

    async def read(self, cookie: bytes, what: str) -> dict[str, Any] | None:
        """The session as ``/read`` shows it (None if it was not answered 200)."""
        response = await self.send("GET", "/read", cookie=cookie, expect={200}, what=what)
        if response is None or response.status_code != 200:
            return None
        shown: dict[str, Any] = response.json()
        return shown

    async def expect_session(self, cookie: bytes, expected: dict[str, Any], what: str) -> None:
        """A violation unless ``/read`` shows *expected* (or is not answered)."""
        shown = await self.read(cookie, what)
        if shown is not None and shown != expected:
            self.report.violate(f"{what}: the session reads {shown}, expected {expected}")


async def pause(seconds: float, deadline: float) -> None:
    await asyncio.sleep(max(0.0, min(seconds, deadline - time.monotonic())))


# -- oversized --------------------------------------------------------------------------
async def oversized(abuser: Abuser, deadline: float) -> None:
    limit = abuser.settings.max_size
    for round_ in range(OVERSIZED_ROUNDS):
        if time.monotonic() >= deadline:
            return
        user = f"abuse-big-{round_}"
        cookie = await abuser.login(user)
        if cookie is not None:
            await oversized_round(abuser, cookie, user, limit)
        await pause(OVERSIZED_PAUSE, deadline)


async def oversized_round(abuser: Abuser, cookie: bytes, user: str, limit: int) -> None:
    await abuser.send(
        "POST", f"/big?bytes={limit // 2}", cookie=cookie, expect={200}, what="half the limit"
    )
    for size in (limit + 1, 4 * limit):
        await abuser.send(
            "POST",
            f"/big?bytes={size}",
            cookie=cookie,
            expect={400},
            what=f"{size} bytes, past SESSION_MAX_SIZE",
        )
    untouched = {"user": user, "counter": 0, "cart": []}
    await abuser.expect_session(cookie, untouched, "after refused oversized writes")


# -- parallel writers -------------------------------------------------------------------
async def parallel_writers(abuser: Abuser, deadline: float) -> None:
    for round_ in range(WRITER_ROUNDS):
        if deadline - time.monotonic() < abuser.settings.hang_after:
            return  # a round started now would outlive the deadline
        user = f"abuse-writers-{round_}"
        cookie = await abuser.login(user)
        if cookie is not None:
            await writers_round(abuser, cookie, user)
        await pause(WRITER_PAUSE, deadline)


async def writers_round(abuser: Abuser, cookie: bytes, user: str) -> None:
    added = await abuser.send(
        "POST", "/cart?item=kept", cookie=cookie, expect={200}, what="an item before the storm"
    )
    if added is None or added.status_code != 200:
        return
    writers = abuser.settings.writers
    answers = await asyncio.gather(
        *(
            abuser.send("POST", "/incr", cookie=cookie, expect={200, 409}, what="a parallel incr")
            for _ in range(writers)
        )
    )
    acknowledged = [a.json()["counter"] for a in answers if a is not None and a.status_code == 200]
    unknown = sum(1 for a in answers if a is None or a.status_code not in (200, 409))
    shown = await abuser.read(cookie, "after the storm")
    if shown is None:
        return
    if shown["user"] != user or shown["cart"] != ["kept"]:
        abuser.report.violate(f"parallel writers changed other keys: {shown}, user {user!r}")
    counter = shown["counter"]
    # With an answer unknown (503, no answer), its write may have landed or not.
    possible = {0, *acknowledged} if not unknown else set(range(writers + 1))
    if counter not in possible:
        abuser.report.violate(
            f"the counter ended at {counter}, a value no acknowledged increment wrote"
        )
    abuser.report.notes.append(
        f"{user}: {len(acknowledged)} of {writers} increments acknowledged "
        f"({len(set(acknowledged))} distinct values), counter ended at {counter}"
    )


# -- malformed cookies ------------------------------------------------------------------
def garbage(rng: random.Random, live: bytes) -> bytes:
    """A session cookie value no session has: random, over-long, non-ASCII,
    or *live* (a real cookie) mutated."""
    urlsafe = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    printable = bytes(c for c in range(0x21, 0x7F) if c not in b';,\\"')
    choice = rng.randrange(8)
    if choice == 0:  # well-formed but unknown: a store lookup that finds nothing
        return bytes(rng.choices(urlsafe, k=len(live.split(b".")[0])))
    if choice == 1:
        return bytes(rng.choices(printable, k=rng.randrange(1, 80)))
    if choice == 2:
        return bytes(rng.choices(urlsafe, k=rng.randrange(1000, 4000)))
    if choice == 3:
        return bytes(rng.choices(range(0x80, 0x100), k=rng.randrange(1, 60)))
    if choice == 4:  # one character of the live cookie changed
        at = rng.randrange(len(live))
        other = rng.choice([c for c in urlsafe if c != live[at]])
        return live[:at] + bytes([other]) + live[at + 1 :]
    if choice == 5:
        return live[: rng.randrange(len(live))] or b"x"
    if choice == 6:
        return live + bytes(rng.choices(printable, k=rng.randrange(1, 8)))
    return live.swapcase() if live.swapcase() != live else live + b"A"


async def malformed_cookies(abuser: Abuser, deadline: float) -> None:
    live = await abuser.login("abuse-malformed")
    if live is None:
        return
    rng = random.Random(abuser.settings.seed)
    interval = MALFORMED_LANES / abuser.settings.rate
    per_lane = MALFORMED_LIMIT // MALFORMED_LANES
    await asyncio.gather(
        *(
            malformed_lane(abuser, deadline, rng, live, interval, per_lane)
            for _ in range(MALFORMED_LANES)
        )
    )


async def malformed_lane(
    abuser: Abuser, deadline: float, rng: random.Random, live: bytes, interval: float, count: int
) -> None:
    for n in range(count):
        started = time.monotonic()
        if started >= deadline:
            return
        await one_malformed(abuser, garbage(rng, live), reading=n % 2 == 0)
        await pause(interval - (time.monotonic() - started), deadline)


async def one_malformed(abuser: Abuser, value: bytes, *, reading: bool) -> None:
    if reading:
        response = await abuser.send(
            "GET", "/read", cookie=value, expect={200}, what="a read with a garbled cookie"
        )
        if response is not None and response.status_code == 200 and response.json()["user"]:
            abuser.report.violate("a garbled cookie loaded a session with a user in it")
    else:
        response = await abuser.send(
            "POST", "/incr", cookie=value, expect={401}, what="an incr with a garbled cookie"
        )
    if response is not None and value.decode("latin-1") in set_cookies(response).values():
        abuser.report.violate("a garbled cookie was set back as the session cookie")


# -- dead cookies -----------------------------------------------------------------------
async def dead_cookies(abuser: Abuser, deadline: float) -> None:
    dead = await make_dead(abuser)
    expired_after = abuser.settings.expired_after
    expiring = None if expired_after is None else await abuser.login("abuse-dead-expired")
    expires = time.monotonic() + (expired_after or 0.0) + EXPIRY_SLACK
    for cycle in range(DEAD_CYCLES):
        if time.monotonic() >= deadline:
            break
        if expiring is not None and time.monotonic() >= expires:
            dead.append(("expired", expiring))
            expiring = None
        for why, cookie in dead:
            await check_dead(abuser, why, cookie, write=cycle % DEAD_WRITE_EVERY == 0)
        await pause(DEAD_PAUSE, deadline)
    if expiring is not None:
        abuser.report.notes.append("the expired cookie was not tried: the deadline came first")
    abuser.report.notes.append(f"dead cookies tried: {', '.join(why for why, _ in dead)}")


async def make_dead(abuser: Abuser) -> list[tuple[str, bytes]]:
    """(why, cookie) of sessions that have ended."""
    dead = []
    logged_out = await abuser.login("abuse-dead-logout")
    if logged_out is not None:
        await abuser.send("POST", "/incr", cookie=logged_out, expect={200}, what="an incr")
        await abuser.send("POST", "/logout", cookie=logged_out, expect={200}, what="a logout")
        dead.append(("logged out", logged_out))
    revoked = await revoked_cookie(abuser)
    if revoked is not None:
        dead.append(("revoked", revoked))
    replaced = await abuser.login("abuse-dead-replaced")
    if replaced is not None and await abuser.login("abuse-dead-replaced", replaced) is not None:
        dead.append(("replaced by a new login", replaced))
    return dead


async def revoked_cookie(abuser: Abuser) -> bytes | None:
    """A session revoked by another session of its user (None where the store
    cannot revoke: the app answers 4xx or 501 there)."""
    victim = await abuser.login("abuse-dead-revoked")
    other = await abuser.login("abuse-dead-revoked")
    if victim is None or other is None:
        return None
    not_here = {*range(400, 500), 501}
    response = await abuser.send(
        "POST", "/revoke-others", cookie=other, expect={200, *not_here}, what="a revoke-others"
    )
    if response is None or response.status_code != 200:
        status = response.status_code if response is not None else "no answer"
        abuser.report.notes.append(f"no revoked cookie: /revoke-others answered {status}")
        return None
    if response.json().get("supported") is False:
        abuser.report.notes.append("no revoked cookie: the store cannot revoke (no user index)")
        return None
    if response.json()["revoked"] < 1:
        abuser.report.violate(f"/revoke-others revoked {response.json()['revoked']} sessions")
    return victim


async def check_dead(abuser: Abuser, why: str, cookie: bytes, *, write: bool) -> None:
    empty = {"user": None, "counter": None, "cart": None}
    await abuser.expect_session(cookie, empty, f"a {why} cookie")
    await abuser.send("POST", "/incr", cookie=cookie, expect={401}, what=f"incr, {why} cookie")
    if not write:
        return
    # /big needs no login: the write starts a new session, under a new id.
    response = await abuser.send(
        "POST", "/big?bytes=16", cookie=cookie, expect={200}, what=f"a write, {why} cookie"
    )
    if response is not None and cookie.decode() in set_cookies(response).values():
        abuser.report.violate(f"a write with a {why} cookie stored it under the dead id")
    await abuser.expect_session(cookie, empty, f"a {why} cookie after a write with it")


# -- running ----------------------------------------------------------------------------
KINDS: dict[str, Callable[[Abuser, float], Awaitable[None]]] = {
    OVERSIZED: oversized,
    PARALLEL_WRITERS: parallel_writers,
    MALFORMED_COOKIES: malformed_cookies,
    DEAD_COOKIES: dead_cookies,
}


async def run_kind(abuser: Abuser, deadline: float) -> None:
    try:
        await KINDS[abuser.report.kind](abuser, deadline)
    except Exception as error:  # an answer the abuser could not read is a finding too
        abuser.report.violate(f"the abuser stopped: {error!r}")


async def abuse(
    base_url: str,
    *,
    deadline: float,
    kinds: Sequence[str] = ALL_KINDS,
    settings: Settings | None = None,
) -> AbuseReport:
    """Abuse the soak app at *base_url* with *kinds* at once until *deadline*
    (a ``time.monotonic()`` moment); *settings* name what the server is
    configured with (SESSION_MAX_SIZE, SESSION_BACKEND_TIMEOUT, a short
    lifetime) and how hard to push."""
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown kinds of abuse: {sorted(unknown)}; known: {ALL_KINDS}")
    settings = settings or Settings()
    report = AbuseReport({kind: KindReport(kind) for kind in kinds})
    # Idle connections closed before Hypercorn's keep-alive timeout (5 s) can
    # close them under a request just sent (a RemoteProtocolError).
    limits = httpx.Limits(
        max_connections=settings.writers + 2 * MALFORMED_LANES + 8, keepalive_expiry=2.0
    )
    async with httpx.AsyncClient(
        base_url=base_url,
        cookies=refusing_jar(),
        timeout=settings.hang_after + 2.0,
        limits=limits,
    ) as client:
        await asyncio.gather(
            *(run_kind(Abuser(client, report.kinds[k], settings), deadline) for k in kinds)
        )
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("base_url")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--kinds", nargs="+", default=list(ALL_KINDS), choices=ALL_KINDS)
    parser.add_argument("--max-size", type=int, default=DEFAULT_MAX_SIZE)
    parser.add_argument("--expired-after", type=float, default=None)
    args = parser.parse_args()
    settings = Settings(max_size=args.max_size, expired_after=args.expired_after)
    deadline = time.monotonic() + args.seconds
    report = asyncio.run(
        abuse(args.base_url, deadline=deadline, kinds=args.kinds, settings=settings)
    )
    print("\n".join(report.lines()))
    print(json.dumps({"violations": len(report.violations)}))
    sys.exit(1 if report.violations else 0)


if __name__ == "__main__":
    main()
