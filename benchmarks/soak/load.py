"""The soak load: simulated users driving the soak app, and what they saw.

Each user loops, sequentially (its own requests never race each other), over a
shop-like mix: log in (regenerate), increment its counter (every value
answered with 200 is *acknowledged*), add to its cart, read, increment over a
websocket, now and then log in on a second device and revoke it with
``/revoke-others``, read once more, log out. Every ended session's cookie is
kept and replayed later: it must find an empty session.

The load only records (:class:`Observations`); :mod:`.invariants` judges.
Every loop stops at its deadline and after a bounded number of requests.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus, WebSocketException

from .app import NOT_LOGGED_IN

COOKIE = "session"
#: Requests one user may send per second of run at most (a bound, not a rate).
MAX_REQUESTS_PER_SECOND = 400
#: Ended cookies replayed at the end at most (a random sample beyond).
FINAL_REPLAYS = 1500
#: The soak app is plain HTTP on 127.0.0.1: no certificate to verify. A client
#: that would verify loads the CA bundle when made (~25 ms of CPU), which
#: blocked the load's event loop ~1.5 s whenever 64 users started or
#: reconnected after a fault, and showed up as latency and unavailability.
VERIFY_TLS = False


@dataclass(frozen=True)
class Answer:
    """One request and how it was answered; status 0: no answer in time."""

    kind: str
    start: float
    end: float
    status: int
    retry_after: bool = False
    #: When the session this request used was logged in (None: no session).
    login_at: float | None = None


@dataclass(frozen=True)
class CounterCheck:
    """What a read showed of a live session against what was acknowledged."""

    at: float
    user: str
    login_at: float
    acknowledged: int
    seen_user: str | None
    seen_counter: int | None
    #: Where the last acknowledged increment was made (for the per-fault report).
    acknowledged_at: float


@dataclass(frozen=True)
class Replay:
    """An ended session's cookie sent again."""

    at: float
    ended_at: float
    how: str  # "logout" or "revoked"
    status: int
    seen_user: str | None


@dataclass
class Observations:
    """Everything the users saw, in the order they saw it."""

    answers: list[Answer] = field(default_factory=list)
    checks: list[CounterCheck] = field(default_factory=list)
    replays: list[Replay] = field(default_factory=list)
    #: Acknowledged increments (HTTP and websocket): when each was answered.
    acknowledged: list[float] = field(default_factory=list)


@dataclass
class Ended:
    sid: str
    at: float
    how: str


@dataclass
class LiveSession:
    sid: str
    login_at: float
    acknowledged: int = 0
    acknowledged_at: float = 0.0


def session_cookie(response: httpx.Response) -> str | None:
    """The session cookie the response sets ("" when it deletes it), or None."""
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        if name.strip() == COOKIE:
            return rest.split(";", 1)[0]
    return None


def cookie_header(sid: str | None) -> dict[str, str]:
    return {"Cookie": f"{COOKIE}={sid}"} if sid else {}


class User:
    """One simulated user; *ended* is shared by all users (cookies to replay)."""

    def __init__(self, load: Load, number: int) -> None:
        self.load = load
        self.name = f"user-{number}"
        self.rng = random.Random(number)
        self.session: LiveSession | None = None
        self.client = load.new_client()
        self.sent = 0

    # -- one request --------------------------------------------------------------
    async def send(
        self, kind: str, method: str, path: str, sid: str | None, login_at: float | None
    ) -> httpx.Response | None:
        self.sent += 1
        start = time.monotonic()
        try:
            response = await self.client.request(method, path, headers=cookie_header(sid))
        except httpx.HTTPError:
            self.load.record(Answer(kind, start, time.monotonic(), 0, login_at=login_at))
            # A broken connection may be stuck to a frozen worker: start afresh.
            await self.client.aclose()
            self.client = self.load.new_client()
            return None
        finally:
            self.client.cookies.clear()  # cookies are kept by hand, per session
        retry = "retry-after" in response.headers
        self.load.record(
            Answer(kind, start, time.monotonic(), response.status_code, retry, login_at)
        )
        return response

    async def live(self, kind: str, method: str, path: str) -> httpx.Response | None:
        session = self.session
        assert session is not None
        return await self.send(kind, method, path, session.sid, session.login_at)

    # -- the mix --------------------------------------------------------------------
    async def run(self, deadline: float, max_requests: int) -> None:
        try:
            while time.monotonic() < deadline and self.sent < max_requests:
                await self.cycle(deadline)
                await self.replay_some(2)
        finally:
            await self.client.aclose()

    def think(self) -> Awaitable[None]:
        return asyncio.sleep(self.rng.uniform(0.005, 0.05))

    async def cycle(self, deadline: float) -> None:
        if self.session is None and not await self.log_in():
            await asyncio.sleep(0.2)
            return
        for _ in range(self.rng.randint(3, 8)):
            if time.monotonic() >= deadline or self.session is None:
                return
            await self.increment()
            await self.think()
            if self.session is not None:
                await self.add_to_cart()
            if self.session is not None and self.rng.random() < 0.3:
                await self.websocket_increments(self.rng.randint(1, 3))
            if self.session is not None:
                await self.read()
            await self.think()
        if self.session is not None and self.rng.random() < 0.15:
            await self.second_device_revoked()
        if self.session is not None:
            await self.read()
        if self.session is not None:
            await self.log_out()

    async def log_in(self) -> bool:
        sid = self.session.sid if self.session else None
        response = await self.send("login", "POST", f"/login?user={self.name}", sid, None)
        if response is None or response.status_code != 200:
            return False
        new = session_cookie(response)
        if not new:
            return False
        self.session = LiveSession(new, time.monotonic())
        return True

    def acknowledge(self, value: int) -> None:
        session = self.session
        assert session is not None
        now = time.monotonic()
        self.load.observations.acknowledged.append(now)
        if value > session.acknowledged:
            session.acknowledged, session.acknowledged_at = value, now

    def vanished(self) -> None:
        """The session is gone (a 401): judged later; a new login follows."""
        self.session = None

    async def increment(self) -> None:
        response = await self.live("incr", "POST", "/incr")
        if response is None:
            return
        if response.status_code == 200:
            self.acknowledge(int(response.json()["counter"]))
        elif response.status_code == 401:
            self.vanished()

    async def add_to_cart(self) -> None:
        item = f"item-{self.rng.randint(1, 999)}"
        response = await self.live("cart", "POST", f"/cart?item={item}")
        if response is not None and response.status_code == 401:
            self.vanished()

    async def read(self) -> None:
        """Read the session; check the counter holds every acknowledged increment."""
        session = self.session
        assert session is not None
        response = await self.live("read", "GET", "/read")
        if response is None or response.status_code != 200:
            return
        body: dict[str, Any] = response.json()
        self.load.observations.checks.append(
            CounterCheck(
                time.monotonic(),
                self.name,
                session.login_at,
                session.acknowledged,
                body["user"],
                body["counter"],
                session.acknowledged_at,
            )
        )
        if body["user"] != self.name:
            self.vanished()

    async def websocket_increments(self, count: int) -> None:
        """Open a websocket and increment through it *count* times. The
        opening ("ws-open") and each increment ("ws") are answers of their
        own, each held to the request limit: the library bounds each of them
        (the opening's load, each save) by SESSION_BACKEND_TIMEOUT."""
        session = self.session
        assert session is not None
        kind, start = "ws-open", time.monotonic()
        status, retry = 101, False
        try:
            async with asyncio.timeout(self.load.request_timeout * (count + 1)):
                async with connect(
                    self.load.ws_url,
                    additional_headers=cookie_header(session.sid),
                    open_timeout=self.load.request_timeout,
                    close_timeout=1,
                ) as ws:
                    self.load.record(
                        Answer(kind, start, time.monotonic(), 101, False, session.login_at)
                    )
                    kind = "ws"
                    for _ in range(count):
                        start = time.monotonic()
                        await ws.send("incr")
                        answer = str(await ws.recv())
                        if answer.isdigit():
                            self.acknowledge(int(answer))
                            self.load.record(
                                Answer(kind, start, time.monotonic(), 101, False, session.login_at)
                            )
                            continue
                        if answer == NOT_LOGGED_IN:
                            status = 401
                        else:  # UNAVAILABLE: the store failed; the value was not stored
                            status, retry = 503, True  # the library's outage answer
                        break
                    else:
                        return
        except InvalidStatus as refused:  # the opening request's own answer
            status = refused.response.status_code
            retry = "retry-after" in refused.response.headers
        except (TimeoutError, OSError, WebSocketException):
            status = 0
        self.load.record(Answer(kind, start, time.monotonic(), status, retry, session.login_at))
        if status == 401:
            self.vanished()

    async def second_device_revoked(self) -> None:
        """Log in elsewhere as the same user, then revoke that session from here."""
        response = await self.send("login", "POST", f"/login?user={self.name}", None, None)
        other = session_cookie(response) if response is not None else None
        if response is None or response.status_code != 200 or not other:
            return
        revoke = await self.live("revoke", "POST", "/revoke-others")
        if revoke is not None and revoke.status_code == 200:
            body = revoke.json()
            if body.get("supported", True) and body["revoked"] >= 1:
                self.load.ended.append(Ended(other, time.monotonic(), "revoked"))
                return
        await self.end_session(other, time.monotonic())

    async def log_out(self) -> None:
        session = self.session
        assert session is not None
        await self.end_session(session.sid, session.login_at)
        self.session = None

    async def end_session(self, sid: str, login_at: float) -> None:
        """Log *sid* out, retried while the store is down (a bounded number of times);
        its cookie is replayed later only when the logout was answered."""
        for _ in range(10):
            response = await self.send("logout", "POST", "/logout", sid, login_at)
            if response is not None and response.status_code == 200:
                if session_cookie(response) == "":
                    self.load.ended.append(Ended(sid, time.monotonic(), "logout"))
                return
            await asyncio.sleep(0.3)

    async def replay_some(self, count: int) -> None:
        for ended in self.rng.sample(self.load.ended, min(count, len(self.load.ended))):
            await self.load.replay(ended, self.send)


Sender = Callable[[str, str, str, str | None, float | None], Awaitable[httpx.Response | None]]


class Load:
    """N users against one served soak app."""

    def __init__(self, url: str, users: int, request_timeout: float) -> None:
        self.url = url
        self.ws_url = url.replace("http://", "ws://", 1) + "/ws"
        self.request_timeout = request_timeout
        self.user_count = users
        self.observations = Observations()
        self.ended: list[Ended] = []
        self.users: list[User] = []

    def new_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=self.request_timeout, verify=VERIFY_TLS)

    def record(self, answer: Answer) -> None:
        self.observations.answers.append(answer)

    async def run(self, duration: float) -> None:
        """Run every user for *duration* seconds (each also bounded in requests)."""
        deadline = time.monotonic() + duration
        max_requests = int(duration * MAX_REQUESTS_PER_SECOND) + 100
        self.users = [User(self, number) for number in range(self.user_count)]
        async with asyncio.TaskGroup() as group:
            for user in self.users:
                group.create_task(user.run(deadline, max_requests))

    async def finish(self) -> None:
        """After the run: read every live session, replay ended cookies."""
        client = self.new_client()
        try:
            checker = User(self, -1)
            checker.client = client
            for user in self.users:
                if user.session is not None:
                    checker.name, checker.session = user.name, user.session
                    await self._read_until_answered(checker)
            sample = self.ended
            if len(sample) > FINAL_REPLAYS:
                sample = random.Random(0).sample(sample, FINAL_REPLAYS)
            for ended in sample:
                await self.replay(ended, checker.send)
        finally:
            await client.aclose()

    async def _read_until_answered(self, checker: User, tries: int = 10) -> None:
        """The final read, retried a bounded number of times through a 503."""
        before = len(self.observations.checks)
        for _ in range(tries):
            if checker.session is None:
                return
            await checker.read()
            if len(self.observations.checks) > before:
                return
            await asyncio.sleep(0.3)

    async def replay(self, ended: Ended, send: Sender) -> None:
        response = await send("replay", "GET", "/read", ended.sid, None)
        if response is None:
            return
        user = response.json()["user"] if response.status_code == 200 else None
        self.observations.replays.append(
            Replay(time.monotonic(), ended.at, ended.how, response.status_code, user)
        )


async def probe_recovery(url: str, request_timeout: float, limit: float, name: str) -> float | None:
    """Seconds until an increment on a session is answered 200 again (logging
    in anew if the session was lost), or None if not within *limit*."""
    start = time.monotonic()
    sid: str | None = None
    async with httpx.AsyncClient(
        base_url=url, timeout=request_timeout, verify=VERIFY_TLS
    ) as client:
        while time.monotonic() - start < limit:
            try:
                path = "/incr" if sid else f"/login?user={name}"
                response = await client.post(path, headers=cookie_header(sid))
            except httpx.HTTPError:
                response = None
            client.cookies.clear()
            if response is not None and response.status_code == 200:
                if sid:
                    elapsed = time.monotonic() - start
                    await client.post("/logout", headers=cookie_header(sid))
                    return elapsed
                sid = session_cookie(response) or None
            elif response is not None and response.status_code == 401:
                sid = None
            await asyncio.sleep(0.05)
    return None
