"""Sessions per user (SESSION_USER_KEY) over HTTP, run against every store
that keeps users' indexes (all but memcached).

A store's test class inherits ``UserBehaviour`` with the fixtures
``SessionBehaviour`` documents: ``store_config``, ``read_raw`` and
``all_records``. A Redis Cluster class inherits ``SpreadOverMasters``
instead: the same, and one user's sessions on every master.

Clients log in the way an app does: ``regenerate()``, then
``session["user_id"] = user``; they log out with ``clear()``. A user's index
is read as stored, through the app's store (``index_entries``), not through
``user_sessions``, which prunes it: the tests see what the engine kept.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import anyio
import pytest
import redis
from quart import Quart, current_app, jsonify, session
from quart.typing import ResponseReturnValue

from quart_session.interface import ServerSideSessionInterface
from quart_session.signals import session_revoked
from quart_session.users import INDEX_PREFIX, entries_of, handle_of, index_name

from ..servers.redis import Cluster
from .behaviour import AllRecords, Browser, ReadRaw, SessionBehaviour, holds_no_session

USER = "alice"
#: How long the slow view holds its loaded session before writing.
SLOW = 0.5
#: The lifetime of the listing tests: far longer than any test.
LIFETIME = 600


def interface_of(app: Quart) -> ServerSideSessionInterface:
    interface = app.session_interface
    assert isinstance(interface, ServerSideSessionInterface)
    return interface


def add_user_views(app: Quart) -> None:
    """Log in, list the caller's devices, log out everywhere else, and a slow
    request that writes after holding its loaded session a while."""

    @app.get("/login/<user>")
    async def login(user: str) -> str:
        await interface_of(current_app).regenerate(session)
        session["user_id"] = user
        return "ok"

    @app.get("/devices")
    async def devices() -> ResponseReturnValue:
        listed = await interface_of(current_app).user_sessions(session["user_id"])
        return jsonify([{"handle": info.handle, "current": info.current} for info in listed])

    @app.get("/revoke-others")
    async def revoke_others() -> str:
        ended = await interface_of(current_app).revoke_user(session["user_id"], keep_current=True)
        return str(ended)

    @app.get("/slow-touch")
    async def slow_touch() -> str:
        session.get("user_id")  # loads the session now
        await anyio.sleep(SLOW)
        session["touched"] = "yes"
        return "ok"


def handle_for(app: Quart, user: str, browser: Browser) -> str:
    """The handle the session of *browser* has in *user*'s index."""
    return handle_of(user, interface_of(app).engine.name_of(browser.sid))


async def index_entries(app: Quart, user: str) -> dict[str, dict[str, Any]]:
    """*user*'s index as stored (nothing there: empty), read without pruning."""
    engine = interface_of(app).engine
    key = INDEX_PREFIX + engine.settings.key_prefix + index_name(user)
    record = await engine.store.load(key)
    if record is None:
        return {}
    return entries_of(engine.serializer.loads(record.payload)["s"])


async def assert_no_record_holds(all_records: AllRecords, user: str) -> None:
    """No key or value in the store names *user*: no session of theirs, no index."""
    found = await all_records()
    holding = [record for record in found if user.encode() in record[1]]
    assert holding == [], holding


def assert_aware_utc(moment: datetime) -> None:
    assert moment.tzinfo is not None and moment.utcoffset() == timedelta(0), moment


@pytest.mark.anyio
class UserBehaviour:
    """Every store but memcached runs these; see the module docstring."""

    # The behaviour suite's app fixtures, without its tests.
    static_folder = SessionBehaviour.static_folder
    built_apps = SessionBehaviour.built_apps
    app_class = SessionBehaviour.app_class
    make_app = SessionBehaviour.make_app
    key = staticmethod(SessionBehaviour.key)
    count_calls = staticmethod(SessionBehaviour.count_calls)

    @pytest.fixture
    def user_app(self, make_app: Callable[..., Quart]) -> Callable[..., Quart]:
        def make(**config: Any) -> Quart:
            app = make_app(**{"SESSION_USER_KEY": "user_id", **config})
            add_user_views(app)
            return app

        return make

    @pytest.fixture
    def revoked(self) -> Iterator[list[dict[str, Any]]]:
        """The keywords of every ``session_revoked`` signal the test sent."""
        received: list[dict[str, Any]] = []

        def receiver(sender: object, **kwargs: Any) -> None:
            received.append(kwargs)

        session_revoked.connect(receiver)
        yield received
        session_revoked.disconnect(receiver)

    @staticmethod
    async def log_in(
        app: Quart, address: str = "127.0.0.1", user_agent: str = "Browser/1"
    ) -> Browser:
        """A client that had a session before logging in as USER (so that
        login moves it)."""
        browser = Browser(app, address=address)
        await browser.text("/set/visit/1")
        await browser.text(f"/login/{USER}", {"User-Agent": user_agent})
        return browser

    async def logged_in(self, app: Quart, count: int) -> list[Browser]:
        return [await self.log_in(app) for _ in range(count)]

    @staticmethod
    async def assert_logged_out(browser: Browser) -> None:
        """Its next request finds a fresh, empty session."""
        assert await browser.text("/get/user_id") == "None"
        assert await browser.text("/get/visit") == "None"

    # -- listing ------------------------------------------------------------------------
    async def test_three_logins_are_listed_with_where_and_when(
        self, user_app: Callable[..., Quart]
    ) -> None:
        """Proves: three clients logged in as one user are listed, three
        distinct handles, each with the address and User-Agent its login came
        with; created_at, last_seen_at and expires_at are aware UTC, created
        at login, last seen since, ending one lifetime after; listed outside a
        request, none is current."""
        app = user_app(PERMANENT_SESSION_LIFETIME=LIFETIME)
        started = time.time()
        sent = {}
        for number in range(3):
            address, agent = f"10.0.0.{number + 1}", f"Browser/{number}"
            browser = await self.log_in(app, address, agent)
            sent[handle_for(app, USER, browser)] = (address, agent)
        listed = await interface_of(app).user_sessions(USER)
        now = time.time()
        assert {info.handle: (info.address, info.user_agent) for info in listed} == sent
        for info in listed:
            for moment in (info.created_at, info.last_seen_at, info.expires_at):
                assert_aware_utc(moment)
            created, seen = info.created_at.timestamp(), info.last_seen_at.timestamp()
            assert started - 1 <= created <= seen <= now, (started, created, seen, now)
            left = info.expires_at.timestamp() - now
            assert LIFETIME - (now - started) - 2 <= left <= LIFETIME + 1, left
            assert not info.current

    async def test_current_marks_exactly_the_callers_own_session(
        self, user_app: Callable[..., Quart]
    ) -> None:
        """Proves: listed from inside each client's request, ``current`` is
        True for that client's session alone."""
        app = user_app()
        browsers = await self.logged_in(app, 3)
        for browser in browsers:
            listed = json.loads(await browser.text("/devices"))
            assert len(listed) == 3
            current = [item["handle"] for item in listed if item["current"]]
            assert current == [handle_for(app, USER, browser)]

    # -- revoking ------------------------------------------------------------------------
    async def test_revoke_user_logs_every_client_out_and_leaves_nothing_stored(
        self,
        user_app: Callable[..., Quart],
        read_raw: ReadRaw,
        all_records: AllRecords,
        revoked: list[dict[str, Any]],
    ) -> None:
        """Proves: ``revoke_user`` ends all three sessions (returns 3): each
        client's next request gets a fresh, empty session, the store holds no
        record of theirs (their keys hold nothing or a marker) and no index of
        the user; ``session_revoked`` fired once per session, reason "user"."""
        app = user_app()
        browsers = await self.logged_in(app, 3)
        keys = [self.key(app, browser.sid) for browser in browsers]
        handles = {handle_for(app, USER, browser) for browser in browsers}
        assert await interface_of(app).revoke_user(USER) == 3
        for key in keys:
            assert holds_no_session(await read_raw(key))
        await assert_no_record_holds(all_records, USER)
        assert await index_entries(app, USER) == {}
        assert sorted(revoked, key=lambda signal: signal["handle"]) == [
            {"handle": handle, "user": USER, "reason": "user"} for handle in sorted(handles)
        ]
        for browser in browsers:
            await self.assert_logged_out(browser)
        assert await interface_of(app).user_sessions(USER) == []

    async def test_revoke_user_keep_current_keeps_exactly_the_caller(
        self, user_app: Callable[..., Quart], revoked: list[dict[str, Any]]
    ) -> None:
        """Proves: "log out everywhere else" from one client's request ends
        the other two (returns 2) and keeps the caller logged in and listed."""
        app = user_app()
        first, caller, third = await self.logged_in(app, 3)
        assert await caller.text("/revoke-others") == "2"
        assert await caller.text("/get/user_id") == repr(USER)
        await self.assert_logged_out(first)
        await self.assert_logged_out(third)
        listed = await interface_of(app).user_sessions(USER)
        assert [info.handle for info in listed] == [handle_for(app, USER, caller)]
        assert len(revoked) == 2

    async def test_revoke_ends_exactly_that_session_once(
        self, user_app: Callable[..., Quart], revoked: list[dict[str, Any]]
    ) -> None:
        """Proves: ``revoke(handle)`` ends that session alone and returns True,
        then False (nothing live to end); a malformed handle, or one of
        another user's session passed with ``user=``, returns False without
        a store call."""
        app = user_app()
        target, other = await self.logged_in(app, 2)
        handle = handle_for(app, USER, target)
        interface = interface_of(app)
        calls = self.count_calls(app)
        assert await interface.revoke(handle, user="mallory") is False
        assert calls.calls == []
        assert await target.text("/get/user_id") == repr(USER)
        assert await interface.revoke(handle, user=USER) is True
        await self.assert_logged_out(target)
        assert await other.text("/get/user_id") == repr(USER)
        assert await interface.revoke(handle) is False
        assert revoked == [{"handle": handle, "user": USER, "reason": "user"}]
        calls.calls.clear()
        for garbage in ("garbage", "", "a.b", "!" * 43 + "." + "A" * 43):
            assert await interface.revoke(garbage) is False
        assert calls.calls == []

    async def test_max_per_user_logs_the_least_recently_used_client_out(
        self, user_app: Callable[..., Quart], revoked: list[dict[str, Any]]
    ) -> None:
        """Proves: with SESSION_MAX_PER_USER=2, a third login ends the session
        used least recently (not the oldest login: the first client read
        since), reason "max_per_user"; the two others stay logged in."""
        # Every read refreshes (and so moves last_seen) where a refresh is a write.
        app = user_app(SESSION_MAX_PER_USER=2, SESSION_REFRESH_AFTER=0)
        first, idle = await self.logged_in(app, 2)
        await anyio.sleep(1.2)  # last_seen may hold whole seconds
        assert await first.text("/get/user_id") == repr(USER)
        newest = await self.log_in(app)
        await self.assert_logged_out(idle)
        for browser in (first, newest):
            assert await browser.text("/get/user_id") == repr(USER)
        listed = await interface_of(app).user_sessions(USER)
        assert {info.handle for info in listed} == {
            handle_for(app, USER, first),
            handle_for(app, USER, newest),
        }
        assert revoked == [
            {"handle": handle_for(app, USER, idle), "user": USER, "reason": "max_per_user"}
        ]

    async def test_a_request_in_flight_during_revoke_user_does_not_bring_it_back(
        self, user_app: Callable[..., Quart], read_raw: ReadRaw
    ) -> None:
        """Proves: a request that loaded the session before ``revoke_user``
        and writes to it after does not resurrect it: its next request is
        logged out, its key holds no session, and the index does not list it."""
        app = user_app()
        browser = await self.log_in(app)
        key = self.key(app, browser.sid)
        async with anyio.create_task_group() as group:
            group.start_soon(browser.text, "/slow-touch")
            await anyio.sleep(SLOW / 3)
            assert await interface_of(app).revoke_user(USER) == 1
        assert holds_no_session(await read_raw(key))
        await self.assert_logged_out(browser)
        assert await browser.text("/get/touched") == "None"
        assert await index_entries(app, USER) == {}
        assert await interface_of(app).user_sessions(USER) == []

    # -- handles ---------------------------------------------------------------------------
    async def test_a_handle_never_works_as_a_cookie(self, user_app: Callable[..., Quart]) -> None:
        """Proves: a handle sent as the session cookie gives a fresh session
        without a store call (it is no id), and neither of its halves (each
        shaped like an id) opens the session it names."""
        app = user_app()
        victim = await self.log_in(app)
        (info,) = await interface_of(app).user_sessions(USER)
        thief = Browser(app)
        thief.cookie = info.handle
        calls = self.count_calls(app)
        assert await thief.text("/get/user_id") == "None"
        assert calls.calls == []
        for half in info.handle.split("."):
            thief.cookie = half
            assert await thief.text("/get/user_id") == "None"
        assert await victim.text("/get/user_id") == repr(USER)

    # -- the index follows the sessions -----------------------------------------------------
    async def test_an_expired_session_is_no_longer_listed_and_its_entry_is_pruned(
        self, user_app: Callable[..., Quart]
    ) -> None:
        """Proves: a session that expired on its own (4 s lifetime, unused) is
        not listed, and listing drops its entry from the stored index; a
        younger one is still listed and kept. (Margins of whole seconds: the
        MongoDB stand-in may drop a record up to a second early. An entry is
        kept 2 x SESSION_BACKEND_TIMEOUT + 1 s after it was listed, its
        record's write maybe under way: 4 s here.)"""
        app = user_app(PERMANENT_SESSION_LIFETIME=4, SESSION_BACKEND_TIMEOUT=1.5)
        expiring = await self.log_in(app)
        await anyio.sleep(2.2)
        alive = await self.log_in(app)
        gone, kept = handle_for(app, USER, expiring), handle_for(app, USER, alive)
        assert set(await index_entries(app, USER)) == {gone, kept}
        await anyio.sleep(2.2)  # the first is past 4.4 s old, the second 2.2 s
        listed = await interface_of(app).user_sessions(USER)
        assert [info.handle for info in listed] == [kept]
        assert set(await index_entries(app, USER)) == {kept}

    async def test_logout_and_a_change_of_user_leave_the_old_index_regenerate_stays(
        self, user_app: Callable[..., Quart]
    ) -> None:
        """Proves: logout (``clear()``) removes the session from its user's
        stored index; changing ``user_id`` moves it from the old user's index
        to the new one's; ``regenerate()`` keeps it listed under its new
        handle, the old one gone from the index."""
        app = user_app()
        leaving, switching, staying = await self.logged_in(app, 3)
        left = handle_for(app, USER, leaving)
        assert await leaving.text("/clear") == "cleared"
        entries = await index_entries(app, USER)
        assert left not in entries and len(entries) == 2
        await switching.text("/set/user_id/bob")
        assert set(await index_entries(app, USER)) == {handle_for(app, USER, staying)}
        bob = handle_for(app, "bob", switching)
        assert set(await index_entries(app, "bob")) == {bob}
        assert [info.handle for info in await interface_of(app).user_sessions("bob")] == [bob]
        before = handle_for(app, USER, staying)
        await staying.text("/regenerate")
        after = handle_for(app, USER, staying)
        assert after != before
        assert set(await index_entries(app, USER)) == {after}
        listed = await interface_of(app).user_sessions(USER)
        assert [info.handle for info in listed] == [after]


class SpreadOverMasters(UserBehaviour):
    """The suite on a Redis Cluster, and one more test: a user's index lives
    in one slot, their sessions in slots of every master."""

    #: Logins before giving up on covering every master (a few suffice).
    MAX_LOGINS = 60

    @staticmethod
    def masters_holding(ports: tuple[int, ...], keys: list[str]) -> set[int]:
        """The ports of the masters holding one of *keys* (each node lists its own)."""
        wanted = {key.encode() for key in keys}
        holding = set()
        for port in ports:
            with redis.Redis(port=port, protocol=2) as node:
                if wanted.intersection(node.scan_iter(count=1000)):
                    holding.add(port)
        return holding

    async def test_a_user_with_sessions_on_every_master_is_listed_and_revoked(
        self,
        user_app: Callable[..., Quart],
        redis_cluster: Cluster,
        all_records: AllRecords,
    ) -> None:
        """Proves: one user's sessions spread over all three masters (their
        keys checked on each node) are all listed, and ``revoke_user`` ends
        every one: each client logged out, no node holds a record of theirs
        or their index."""
        app = user_app()
        ports: tuple[int, ...] = redis_cluster.ports
        browsers: list[Browser] = []
        while len(self.masters_holding(ports, [self.key(app, b.sid) for b in browsers])) < 3:
            assert len(browsers) < self.MAX_LOGINS, "sessions never reached every master"
            browsers.append(await self.log_in(app))
        interface = interface_of(app)
        listed = await interface.user_sessions(USER)
        assert {info.handle for info in listed} == {
            handle_for(app, USER, browser) for browser in browsers
        }
        assert await interface.revoke_user(USER) == len(browsers)
        await assert_no_record_holds(all_records, USER)
        for browser in browsers:
            await self.assert_logged_out(browser)
        assert await interface.user_sessions(USER) == []
