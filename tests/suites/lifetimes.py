"""Absolute and per-session lifetimes over HTTP, run against every store.

``SESSION_ABSOLUTE_LIFETIME`` ends a session that long after it was created or
last regenerated, however active; ``session.lifetime`` gives one session a
lifetime of its own. A store's test class inherits ``LifetimeBehaviour`` (with
the fixtures ``SessionBehaviour`` documents: ``store_config``, ``read_raw``)
and provides one more:

* ``read_ttl``: an async callable ``key -> float | None``, the seconds the
  store itself will keep the record at *key* (Redis ``PTTL``, the SQL expiry
  column, the file's deadline, ...), None when it holds no live record.

A store whose expiry ticks in whole seconds of its own clock (memcached) sets
``COARSE_EXPIRY``: there a record given *n* seconds may be gone after *n - 1*,
so the tests do not insist on a session surviving its last second.

Times are measured against the creation stamp the record holds (``"c"`` in
its metadata, epoch seconds): a session ends at the first request that finds
less than one second of its absolute lifetime left, i.e. once
``c + absolute - 1`` has passed. Time to live is relative, so a store keeps a
record until the TTL a request set plus however long that request took to
reach the store: expiries are checked give or take the longest request so far.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import anyio
import pytest
from quart import Quart, session

from quart_session import records
from quart_session.interface import ServerSideSessionInterface
from quart_session.signals import session_expired

from .behaviour import Browser, ReadRaw, SessionBehaviour, parse_set_cookie

ReadTtl = Callable[[str], Awaitable[float | None]]
#: In a record's metadata: created or last regenerated (epoch seconds), and
#: the session's own lifetime (seconds).
CREATED, LIFETIME = "c", "l"
THIRTY_DAYS = int(timedelta(days=30).total_seconds())
#: How far a 30-day deadline may be from the expected one (slow requests).
SLACK = 60
#: Three seconds, not two: by the "less than one second left" rule a session
#: ends a second before its absolute end, and memcached may drop a record
#: given one second at once; three leave a second in which every store must
#: keep it.
ABSOLUTE = 3
#: Between the reads of an active client.
READ_EVERY = 0.3
#: How long the slow view of the concurrency tests holds its loaded session.
SLOW = 0.3


def cookie_expires(header: str | None) -> float | None:
    """The Expires of a Set-Cookie header, in epoch seconds (None: no Expires)."""
    if header is None:
        return None
    expires = parse_set_cookie(header)[2].get("expires")
    return None if expires is None else parsedate_to_datetime(expires).timestamp()


def lifetime_value(text: str) -> Any:
    """What ``/lifetime/<text>`` assigns: ``none``, ``<n>d`` (a timedelta of
    days) or a number of seconds (int, or float when it has a dot)."""
    if text == "none":
        return None
    if text.endswith("d"):
        return timedelta(days=int(text[:-1]))
    return float(text) if "." in text else int(text)


def add_lifetime_views(app: Quart) -> None:
    """Views that set ``session.lifetime``, and slow ones that hold a loaded
    session while another request changes it."""

    @app.get("/lifetime/<value>")
    async def set_lifetime(value: str) -> str:
        session.lifetime = lifetime_value(value)  # type: ignore[attr-defined]
        return "ok"

    @app.get("/slow-lifetime/<value>")
    async def slow_lifetime(value: str) -> str:
        session.get("user")  # loads the session now
        await anyio.sleep(SLOW)
        session.lifetime = lifetime_value(value)  # type: ignore[attr-defined]
        return "ok"

    @app.get("/slow-set/<key>/<value>")
    async def slow_set(key: str, value: str) -> str:
        session.get("user")
        await anyio.sleep(SLOW)
        session[key] = value
        return "ok"


async def sleep_until(moment: float) -> None:
    await anyio.sleep(max(0.0, moment - time.time()))


@pytest.mark.anyio
class LifetimeBehaviour:
    """Every store runs these; see the module docstring for the fixtures."""

    #: Whether the store may drop a record up to a second before its TTL is up.
    COARSE_EXPIRY = False
    #: How far the TTL a store reports may exceed the true one: a few
    #: milliseconds everywhere, as a store counts it on a clock of its own
    #: (monotonic, the server's) against the test's wall clock, which NTP may
    #: be slewing meanwhile (up to 0.5 ms a second); memcached reports whole
    #: seconds of its own clock.
    TTL_GRAIN = 0.005

    # The behaviour suite's app fixtures, without its tests.
    static_folder = SessionBehaviour.static_folder
    built_apps = SessionBehaviour.built_apps
    app_class = SessionBehaviour.app_class
    make_app = SessionBehaviour.make_app
    key = staticmethod(SessionBehaviour.key)

    @pytest.fixture
    def lifetime_app(self, make_app: Callable[..., Quart]) -> Callable[..., Quart]:
        def make(**config: Any) -> Quart:
            app = make_app(**config)
            add_lifetime_views(app)
            return app

        return make

    @pytest.fixture
    def expired(self) -> Iterator[list[dict[str, Any]]]:
        """The keywords of every ``session_expired`` signal the test sent."""
        received: list[dict[str, Any]] = []

        def receiver(sender: object, **kwargs: Any) -> None:
            received.append(kwargs)

        session_expired.connect(receiver)
        yield received
        session_expired.disconnect(receiver)

    @staticmethod
    async def meta_of(app: Quart, sid: str) -> dict[str, Any]:
        """The metadata of session *sid* as stored (a load that refreshes nothing)."""
        interface = app.session_interface
        assert isinstance(interface, ServerSideSessionInterface)
        engine = interface.engine
        record = await engine.store.load(engine.key_for(sid))
        assert record is not None, "no live record"
        return engine.decode(record.payload)[1]

    async def assert_kept_until_at_most(
        self, read_ttl: ReadTtl, key: str, moment: float, slack: float
    ) -> None:
        """The store keeps the record at *key* no later than *moment* (epoch s),
        give or take *slack*, the longest a request that set its TTL took: a TTL
        counts from when the store got it, after the engine worked it out.
        The TTL is what was left when the store answered, some time after
        *asked*: counting from *asked* leaves the read's own latency out."""
        asked = time.time()
        ttl = await read_ttl(key)
        assert ttl is not None, "no live record"
        over = asked + ttl - moment
        assert over <= slack + self.TTL_GRAIN, (over, slack)

    async def assert_ttl_near(self, read_ttl: ReadTtl, key: str, seconds: float) -> None:
        ttl = await read_ttl(key)
        assert ttl is not None and seconds - SLACK <= ttl <= seconds + 1, (ttl, seconds)

    @staticmethod
    def assert_expires_near(browser: Browser, seconds: float, slack: float = SLACK) -> None:
        expires = cookie_expires(browser.last_set_cookie)
        assert expires is not None, browser.last_set_cookie
        assert abs(expires - time.time() - seconds) <= slack, (expires - time.time(), seconds)

    # -- SESSION_ABSOLUTE_LIFETIME ----------------------------------------------------
    async def test_an_active_session_ends_at_its_absolute_lifetime(
        self,
        lifetime_app: Callable[..., Quart],
        read_raw: ReadRaw,
        read_ttl: ReadTtl,
        expired: list[dict[str, Any]],
    ) -> None:
        """Proves: sliding refresh on every read (31-day idle lifetime) does not
        keep a session past its absolute end; the request that finds it ended
        gets a fresh, empty session (200, never a 500), its record is deleted,
        ``session_expired`` fires once with reason "absolute"; neither the
        store's expiry (set at creation and by every refresh) nor any cookie it
        ever got reaches past created + absolute."""
        app = lifetime_app(
            SESSION_ABSOLUTE_LIFETIME=ABSOLUTE,
            SESSION_REFRESH_EACH_REQUEST=True,
            SESSION_REFRESH_AFTER=0,
        )
        browser = Browser(app)
        started = time.time()
        await browser.text("/set/user/alice")
        sid = browser.sid
        created = (await self.meta_of(app, sid))[CREATED]
        longest = time.time() - started
        assert isinstance(created, int | float) and started - 1 <= created <= time.time()
        end = created + ABSOLUTE - 1  # from then on less than a second is left
        key = self.key(app, sid)
        await self.assert_kept_until_at_most(read_ttl, key, created + ABSOLUTE, longest)
        expires = [cookie_expires(browser.last_set_cookie)]
        user = "'alice'"
        while user == "'alice'" and browser.cookie is not None:
            assert time.time() < end + 2 * READ_EVERY, "still logged in past the absolute end"
            await anyio.sleep(READ_EVERY)
            started = time.time()
            user = await browser.text("/get/user")
            finished = time.time()
            longest = max(longest, finished - started)
            expires.append(cookie_expires(browser.last_set_cookie))
            if user == "'alice'":
                assert started <= end, "a request after the end found the session alive"
                await self.assert_kept_until_at_most(read_ttl, key, created + ABSOLUTE, longest)
        # HTTP dates hold whole seconds: compared with the end's second.
        last = math.ceil(created + ABSOLUTE)
        assert all(moment <= last for moment in expires if moment), (expires, created)
        if user == "'alice'":
            # The cookie's Expires is rounded down to its second, so it never
            # outlives the session: in the session's last second it can have
            # passed by the time the response arrives, and the client drops the
            # cookie. Then no request sees the end: the client is logged out by
            # its cookie, and the store (kept no later than the end, checked
            # above) drops the record by itself.
            assert finished >= created + ABSOLUTE - 2, "the cookie ended more than a second early"
            assert expired == []
            return
        assert user == "None"
        assert await browser.text("/get/user") == "None"
        ended = [{"sid": sid, "reason": "absolute"}]
        if self.COARSE_EXPIRY:  # the store may have dropped it before a request saw it end
            assert expired in ([], ended)
        else:
            assert finished >= end, "ended before its absolute lifetime"
            assert await read_ttl(key) is None
            assert await read_raw(key) is None  # deleted, not left to expire
            assert expired == ended

    async def test_regenerate_restarts_the_absolute_clock(
        self, lifetime_app: Callable[..., Quart], read_ttl: ReadTtl
    ) -> None:
        """Proves: ``regenerate()`` (login) stamps a new creation time, so the
        session lives past the end the first stamp gave it, and ends that long
        after the regenerate instead."""
        app = lifetime_app(SESSION_ABSOLUTE_LIFETIME=ABSOLUTE, SESSION_REFRESH_AFTER=0)
        browser = Browser(app)
        await browser.text("/set/user/alice")
        first = (await self.meta_of(app, browser.sid))[CREATED]
        # A read between: a store ticking in whole seconds keeps a record given
        # two seconds for at least one.
        await sleep_until(first + 0.6)
        assert await browser.text("/get/user") == "'alice'"
        await sleep_until(first + 1.2)
        started = time.time()
        await browser.text("/regenerate")
        took = time.time() - started
        second = (await self.meta_of(app, browser.sid))[CREATED]
        assert second >= first + 1
        key = self.key(app, browser.sid)
        await self.assert_kept_until_at_most(read_ttl, key, second + ABSOLUTE, took)
        # Past the first end: alive only because regenerate() restarted the clock.
        await sleep_until(first + ABSOLUTE - 1 + 0.1)
        assert await browser.text("/get/user") == "'alice'"
        sid = browser.sid
        await sleep_until(second + ABSOLUTE - 1 + 0.1)
        assert await browser.text("/get/user") == "None"
        if not self.COARSE_EXPIRY:  # there the store's own view may differ from its deadline
            # Ended by this request, or expired in the store just before it.
            assert await read_ttl(self.key(app, sid)) is None

    async def test_a_session_stored_before_the_setting_is_stamped_at_its_next_request(
        self, make_app: Callable[..., Quart], read_ttl: ReadTtl
    ) -> None:
        """Proves: a record without a creation stamp (stored before
        SESSION_ABSOLUTE_LIFETIME was switched on) is kept, stamped at its next
        request, and ends that long after it."""
        app = make_app(SESSION_ABSOLUTE_LIFETIME=ABSOLUTE, SESSION_REFRESH_AFTER=0)
        interface = app.session_interface
        assert isinstance(interface, ServerSideSessionInterface)
        browser = Browser(app)
        await browser.text("/untouched")  # builds the store
        sid = secrets.token_urlsafe(32)
        payload = interface.engine.encode({"user": "alice"}, records.meta(True, None))
        await interface.engine.store.save(interface.engine.key_for(sid), payload, 3600, None)
        browser.cookie = sid
        before = time.time()
        assert await browser.text("/get/user") == "'alice'"
        took = time.time() - before
        created = (await self.meta_of(app, sid))[CREATED]
        assert math.floor(before) - 1 <= created <= time.time() + 1
        key = self.key(app, sid)
        await self.assert_kept_until_at_most(read_ttl, key, created + ABSOLUTE, took)
        await sleep_until(created + ABSOLUTE - 1 + 0.1)
        assert await browser.text("/get/user") == "None"

    # -- session.lifetime -------------------------------------------------------------
    @pytest.mark.parametrize("refresh_after", [0, None], ids=["refresh-every-read", "default"])
    async def test_a_session_lifetime_sets_the_ttl_and_cookie_and_survives_refresh_and_regenerate(
        self,
        lifetime_app: Callable[..., Quart],
        read_ttl: ReadTtl,
        refresh_after: int | None,
    ) -> None:
        """Proves: ``session.lifetime = timedelta(days=30)`` alone saves the
        session with a 30-day store TTL and cookie Expires (the configured
        lifetime is 60 s), kept in the metadata; refreshing reads reset the TTL
        to 30 days, not to the configured 60 s (on stores whose refresh is a
        write too, where the default SESSION_REFRESH_AFTER leaves reads alone);
        ``regenerate()`` keeps it."""
        config: dict[str, Any] = {"PERMANENT_SESSION_LIFETIME": 60}
        if refresh_after is not None:
            config["SESSION_REFRESH_AFTER"] = refresh_after
        app = lifetime_app(**config)
        browser = Browser(app)
        await browser.text("/set/user/alice")
        await self.assert_ttl_near(read_ttl, self.key(app, browser.sid), 60)
        await browser.text("/lifetime/30d")
        self.assert_expires_near(browser, THIRTY_DAYS)
        await self.assert_ttl_near(read_ttl, self.key(app, browser.sid), THIRTY_DAYS)
        assert (await self.meta_of(app, browser.sid))[LIFETIME] == THIRTY_DAYS
        for _ in range(3):
            assert await browser.text("/get/user") == "'alice'"
            if browser.last_set_cookie is not None:
                self.assert_expires_near(browser, THIRTY_DAYS)
            await self.assert_ttl_near(read_ttl, self.key(app, browser.sid), THIRTY_DAYS)
        await browser.text("/regenerate")
        self.assert_expires_near(browser, THIRTY_DAYS)
        await self.assert_ttl_near(read_ttl, self.key(app, browser.sid), THIRTY_DAYS)
        assert await browser.text("/get/user") == "'alice'"
        await self.assert_ttl_near(read_ttl, self.key(app, browser.sid), THIRTY_DAYS)
        assert (await self.meta_of(app, browser.sid))[LIFETIME] == THIRTY_DAYS

    async def test_a_non_permanent_session_keeps_a_browser_cookie_and_the_lifetime_ttl(
        self, lifetime_app: Callable[..., Quart], read_ttl: ReadTtl
    ) -> None:
        """Proves: a non-permanent session with a lifetime of its own gets no
        Expires on its cookie, but its store TTL follows the lifetime."""
        app = lifetime_app(SESSION_PERMANENT=False, PERMANENT_SESSION_LIFETIME=60)
        browser = Browser(app)
        await browser.text("/set/user/alice")
        await browser.text("/lifetime/30d")
        assert cookie_expires(browser.last_set_cookie) is None
        await self.assert_ttl_near(read_ttl, self.key(app, browser.sid), THIRTY_DAYS)
        assert await browser.text("/get/user") == "'alice'"
        assert cookie_expires(browser.last_set_cookie) is None

    async def test_a_lifetime_shorter_than_the_configured_one_is_honoured(
        self, lifetime_app: Callable[..., Quart], read_ttl: ReadTtl
    ) -> None:
        """Proves: a lifetime of 2.5 s (rounded up to 3) under a configured day
        (and the SESSION_REFRESH_AFTER that gives, 60 s) sets a 3 s TTL and
        cookie; reads refresh it to 3 s, so an active session outlives its
        first 3 s, on every store; once idle it is gone a little over 3 s after
        its last request."""
        app = lifetime_app(PERMANENT_SESSION_LIFETIME=86400)
        browser = Browser(app)
        await browser.text("/set/user/alice")
        await browser.text("/lifetime/2.5")
        set_at = time.time()
        assert (await self.meta_of(app, browser.sid))[LIFETIME] == 3
        ttl = await read_ttl(self.key(app, browser.sid))
        assert ttl is not None and 1.5 < ttl <= 3
        expires = cookie_expires(browser.last_set_cookie)
        assert expires is not None and expires <= time.time() + 3
        for moment in (1.5, 3.0):  # the second read is past the first 3 s
            await sleep_until(set_at + moment)
            assert await browser.text("/get/user") == "'alice'", moment
            ttl = await read_ttl(self.key(app, browser.sid))
            assert ttl is not None and 1.5 < ttl <= 3, (moment, ttl)  # its own, not a day
        await anyio.sleep(3.5)
        assert await read_ttl(self.key(app, browser.sid)) is None
        assert await browser.text("/get/user") == "None"

    async def test_the_absolute_lifetime_bounds_a_session_lifetime(
        self, lifetime_app: Callable[..., Quart], read_ttl: ReadTtl
    ) -> None:
        """Proves: a 30-day session lifetime under a 3 s absolute lifetime gets
        a store TTL and a cookie Expires no later than the absolute end, on the
        write that sets it and on the reads after."""
        app = lifetime_app(SESSION_ABSOLUTE_LIFETIME=ABSOLUTE, SESSION_REFRESH_AFTER=0)
        browser = Browser(app)
        await browser.text("/set/user/alice")
        created = (await self.meta_of(app, browser.sid))[CREATED]
        key = self.key(app, browser.sid)
        started = time.time()
        await browser.text("/lifetime/30d")
        longest = time.time() - started
        expires = cookie_expires(browser.last_set_cookie)
        assert expires is not None and expires <= math.ceil(created + ABSOLUTE)
        for _ in range(2):
            await self.assert_kept_until_at_most(read_ttl, key, created + ABSOLUTE, longest)
            started = time.time()
            assert await browser.text("/get/user") == "'alice'"
            longest = max(longest, time.time() - started)
            expires = cookie_expires(browser.last_set_cookie)
            assert expires is None or expires <= math.ceil(created + ABSOLUTE)

    async def test_setting_the_lifetime_back_to_none_returns_to_the_configured_one(
        self, lifetime_app: Callable[..., Quart], read_ttl: ReadTtl
    ) -> None:
        """Proves: ``session.lifetime = None`` after a 30-day lifetime saves the
        session with the configured 60 s again (TTL, cookie, metadata), and reads
        keep it there."""
        app = lifetime_app(PERMANENT_SESSION_LIFETIME=60, SESSION_REFRESH_AFTER=0)
        browser = Browser(app)
        await browser.text("/set/user/alice")
        await browser.text("/lifetime/30d")
        await self.assert_ttl_near(read_ttl, self.key(app, browser.sid), THIRTY_DAYS)
        await browser.text("/lifetime/none")
        self.assert_expires_near(browser, 60, slack=2)
        ttl = await read_ttl(self.key(app, browser.sid))
        assert ttl is not None and 55 <= ttl <= 61
        assert LIFETIME not in await self.meta_of(app, browser.sid)
        assert await browser.text("/get/user") == "'alice'"
        ttl = await read_ttl(self.key(app, browser.sid))
        assert ttl is not None and 55 <= ttl <= 61

    # -- concurrent requests ------------------------------------------------------------
    @pytest.mark.parametrize(
        ("slow", "fast"),
        [("/slow-set/theme/dark", "/lifetime/30d"), ("/slow-lifetime/30d", "/set/theme/dark")],
        ids=["lifetime-lands-first", "data-lands-first"],
    )
    async def test_a_lifetime_and_other_data_saved_concurrently_both_land(
        self, lifetime_app: Callable[..., Quart], read_ttl: ReadTtl, slow: str, fast: str
    ) -> None:
        """Proves: one request setting ``session.lifetime`` while another, which
        loaded the session before, saves other data: both changes are kept
        whichever saves last (the metadata merges like data keys), and the TTL
        follows the merged lifetime."""
        app = lifetime_app(PERMANENT_SESSION_LIFETIME=60)
        first = Browser(app)
        await first.text("/set/user/alice")
        second = Browser(app)
        second.cookie = first.cookie
        async with anyio.create_task_group() as group:
            group.start_soon(first.text, slow)
            await anyio.sleep(SLOW / 3)
            await second.text(fast)
        assert await first.text("/get/theme") == "'dark'"
        assert await first.text("/get/user") == "'alice'"
        assert (await self.meta_of(app, first.sid))[LIFETIME] == THIRTY_DAYS
        await self.assert_ttl_near(read_ttl, self.key(app, first.sid), THIRTY_DAYS)
