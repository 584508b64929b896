"""The behaviour suite: what users see over HTTP, run against every store.

A store's test class inherits ``SessionBehaviour`` and provides two fixtures:

* ``store_config``: the ``app.config`` keys selecting and reaching the store;
* ``read_raw``: an async callable ``key -> bytes | None`` reading the record
  at *key* with the store's own client (None when there is none);
* ``all_records``: an async callable giving every (key, value) the store
  holds, as the store's own client lists them (a store that cannot list its
  keys skips the tests that need it).

Requests go through Quart's test client without its cookie jar: each test
carries the cookie itself (``Browser``), so every Set-Cookie is checked.
A store that runs on Trio also runs the suite with ``OnTrio``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import anyio
import pytest
from quart import Blueprint, Quart, Response, current_app, send_file, session, websocket
from quart_trio import QuartTrio

from quart_session import Session, SessionNotLoadedError, no_session, records
from quart_session.interface import ServerSideSessionInterface
from quart_session.stores.base import Record, SaveResult, Store, Version

ReadRaw = Callable[[str], Awaitable[bytes | None]]
AllRecords = Callable[[], Awaitable[list[tuple[bytes, bytes]]]]
ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{43}")
# Quart 0.21 added both; Quart 0.20 (Debian's) has neither.
QUART_HAS_PARTITIONED = "SESSION_COOKIE_PARTITIONED" in Quart.default_config
QUART_HAS_KEY_FALLBACKS = "SECRET_KEY_FALLBACKS" in Quart.default_config


class CountingStore(Store):
    """Passes every call to the real store and counts it per method: shows
    which requests reach the store at all."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.name = inner.name
        # The engine reads it to choose how to refresh: the wrapped store's way.
        self.refresh_is_free = inner.refresh_is_free
        # How much time a call needs left (SQLite): the wrapped store's.
        self.needs_at_least = inner.needs_at_least
        self.calls: list[str] = []

    async def load(self, key: str, refresh_ttl: int | None = None) -> Record | None:
        self.calls.append("load")
        return await self.inner.load(key, refresh_ttl)

    async def expire(self, key: str, ttl: int) -> bool:
        self.calls.append("expire")
        return await self.inner.expire(key, ttl)

    async def save(
        self, key: str, payload: bytes, ttl: int, expected: Version | None
    ) -> SaveResult:
        self.calls.append("save")
        return await self.inner.save(key, payload, ttl, expected)

    async def delete(self, key: str) -> None:
        self.calls.append("delete")
        await self.inner.delete(key)

    async def close(self) -> None:
        await self.inner.close()


class SlowStore(CountingStore):
    """The real store behind a slow network: each load (and each save, unless
    not *saves*) waits *delay* seconds before it is sent."""

    def __init__(self, inner: Store, delay: float, *, saves: bool = True) -> None:
        super().__init__(inner)
        self.delay = delay
        self.saves = saves

    async def load(self, key: str, refresh_ttl: int | None = None) -> Record | None:
        await anyio.sleep(self.delay)
        return await super().load(key, refresh_ttl)

    async def save(
        self, key: str, payload: bytes, ttl: int, expected: Version | None
    ) -> SaveResult:
        if self.saves:
            await anyio.sleep(self.delay)
        return await super().save(key, payload, ttl, expected)


def holds_no_session(raw: bytes | None) -> bool:
    """Whether a key holds no session data: nothing, or only the marker
    regenerate() or logout leaves behind (which names no data)."""
    # Read raw, a record may carry a store's own header before the payload.
    return raw is None or (records.PREFIX in raw and b"alice" not in raw)


def parse_set_cookie(header: str) -> tuple[str, str, dict[str, str]]:
    """(name, value, attributes with lower-case names) of a Set-Cookie header."""
    first, *rest = header.split(";")
    name, _, value = first.strip().partition("=")
    attributes = {}
    for part in rest:
        key, _, val = part.strip().partition("=")
        attributes[key.lower()] = val
    return name, value.strip('"'), attributes


class Browser:
    """A client that keeps one session cookie and remembers every Set-Cookie."""

    def __init__(self, app: Quart, address: str = "127.0.0.1") -> None:
        self.app = app
        self.client = app.test_client(use_cookies=False)
        self.address = address
        self.cookie: str | None = None
        self.last_set_cookie: str | None = None

    @property
    def name(self) -> str:
        return str(self.app.config["SESSION_COOKIE_NAME"])

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers = dict(extra or {})
        if self.cookie is not None:
            headers["Cookie"] = f"{self.name}={self.cookie}"
        return headers

    async def get(self, path: str, headers: dict[str, str] | None = None) -> Response:
        response = await self.client.get(
            path, headers=self._headers(headers), scope_base={"client": (self.address, 40000)}
        )
        self.last_set_cookie = None
        for header in response.headers.getlist("Set-Cookie"):
            name, value, attributes = parse_set_cookie(header)
            if name != self.name:
                continue
            self.last_set_cookie = header
            expires = attributes.get("expires")
            if attributes.get("max-age") == "0" or (
                expires and parsedate_to_datetime(expires) <= datetime.now(UTC)
            ):
                self.cookie = None
            else:
                self.cookie = value
        return response

    async def text(self, path: str, headers: dict[str, str] | None = None) -> str:
        response = await self.get(path, headers)
        assert response.status_code == 200, (path, response.status_code)
        return await response.get_data(as_text=True)

    def websocket(self, path: str) -> Any:
        headers = self._headers(None)
        return self.client.websocket(path, headers=headers)

    @property
    def sid(self) -> str:
        assert self.cookie is not None
        return self.cookie.split(".")[0]


class HeaderClient:
    """An API or mobile client: it keeps its session id in the id header
    (``SESSION_ID_HEADER``) and never stores a cookie. It sends the header on
    every request, empty until it has an id, and keeps what a response's
    header holds; ``last_header`` is that header (None when absent)."""

    def __init__(self, app: Quart, address: str = "127.0.0.1") -> None:
        self.app = app
        self.client = app.test_client(use_cookies=False)
        self.address = address
        self.value = ""
        self.last_header: str | None = None

    @property
    def name(self) -> str:
        return str(self.app.config["SESSION_ID_HEADER"])

    async def get(self, path: str, headers: dict[str, str] | None = None) -> Response:
        response = await self.client.get(
            path,
            headers={self.name: self.value, **(headers or {})},
            scope_base={"client": (self.address, 40000)},
        )
        self.last_header = response.headers.get(self.name)
        if self.last_header is not None:
            self.value = self.last_header
        return response

    async def text(self, path: str, headers: dict[str, str] | None = None) -> str:
        response = await self.get(path, headers)
        assert response.status_code == 200, (path, response.status_code)
        return await response.get_data(as_text=True)

    def websocket(self, path: str) -> Any:
        return self.client.websocket(path, headers={self.name: self.value})


def build_app(config: dict[str, Any], static_folder: Path, app_class: type[Quart] = Quart) -> Quart:
    """The test app: tiny views that read, write, clear and regenerate."""
    app = app_class(__name__, static_folder=str(static_folder))
    app.config.update(SECRET_KEY="test-secret", TESTING=True)
    app.config.update(config)

    @app.get("/untouched")
    async def untouched() -> str:
        return "untouched"

    @app.get("/get/<key>")
    async def get(key: str) -> str:
        return repr(session.get(key))

    @app.get("/set/<key>/<value>")
    async def set_(key: str, value: str) -> str:
        session[key] = value
        return "ok"

    @app.get("/append/<key>/<value>")
    async def append(key: str, value: str) -> str:
        session[key].append(value)
        return "ok"

    @app.get("/new-list/<key>")
    async def new_list(key: str) -> str:
        session[key] = []
        return "ok"

    @app.get("/delete/<key>")
    async def delete(key: str) -> str:
        del session[key]
        return "ok"

    @app.get("/clear")
    async def clear() -> str:
        session.clear()
        return "cleared"

    @app.get("/clear-then-set/<key>/<value>")
    async def clear_then_set(key: str, value: str) -> str:
        session.clear()
        session[key] = value
        return "ok"

    @app.get("/regenerate")
    async def regenerate() -> str:
        await current_app.session_interface.regenerate(session)  # type: ignore[attr-defined]
        return "ok"

    @app.get("/permanent/<int:flag>")
    async def permanent(flag: int) -> str:
        session.permanent = bool(flag)
        return "ok"

    @app.get("/dirty/<key>/<value>")
    async def dirty(key: str, value: str) -> str:
        session[key] = value
        session.dirty()  # type: ignore[attr-defined]
        return "ok"

    @app.get("/file/<key>/<value>")
    async def file(key: str, value: str) -> Response:
        session[key] = value
        return await send_file(static_folder / "hello.txt")

    @app.get("/set-big/<key>/<int:size>")
    async def set_big(key: str, size: int) -> str:
        session[key] = "x" * size
        return "ok"

    @app.get("/set-surrogate/<key>")
    async def set_surrogate(key: str) -> str:
        session[key] = ["a\ud800b", {"\udfff": ("\ud83d",)}]  # legal in a JSON body
        return "ok"

    @app.get("/has-surrogate/<key>")
    async def has_surrogate(key: str) -> str:
        return repr(session.get(key) == ["a\ud800b", {"\udfff": ("\ud83d",)}])

    @app.get("/set-object/<key>")
    async def set_object(key: str) -> str:
        session[key] = object()
        return "ok"

    @app.websocket("/ws/get/<key>")
    async def ws_get(key: str) -> None:
        await websocket.accept()
        await websocket.send(repr(session.get(key)))

    @app.websocket("/ws/set/<key>/<value>")
    async def ws_set(key: str, value: str) -> None:
        await websocket.accept()
        session[key] = value
        await websocket.send("set")

    @app.websocket("/ws/counter")
    async def ws_counter() -> None:
        await websocket.accept()
        while True:
            await websocket.receive()
            session["count"] = session.get("count", 0) + 1
            await current_app.session_interface.save_now(session)  # type: ignore[attr-defined]
            await websocket.send(str(session["count"]))

    # Views that never use the session: marked below and above the route.
    @app.get("/no-session")
    @no_session
    async def not_using() -> str:
        return "fine"

    @no_session
    @app.get("/no-session/touch")
    async def touching() -> str:
        return repr(session.get("user"))

    @app.websocket("/ws/no-session")
    @no_session
    async def ws_not_using() -> None:
        await websocket.accept()
        await websocket.send("fine")

    outer = Blueprint("outer", __name__, url_prefix="/outer")
    inner = Blueprint("inner", __name__, url_prefix="/inner")

    @inner.get("/ping")
    async def inner_ping() -> str:
        return "pong"

    outer.register_blueprint(no_session(inner))
    app.register_blueprint(outer)

    @app.errorhandler(SessionNotLoadedError)
    async def not_loaded(error: SessionNotLoadedError) -> tuple[str, int]:
        return f"{type(error).__name__}: {error}", 500

    Session(app)
    return app


class OnTrio:
    """A QuartTrio app on the Trio event loop, for the suites that build apps."""

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "trio"

    @pytest.fixture
    def app_class(self) -> type[Quart]:
        return QuartTrio


@pytest.mark.anyio
class SessionBehaviour:
    """Every store runs these; see the module docstring for the fixtures."""

    @pytest.fixture
    def static_folder(self, tmp_path: Path) -> Path:
        folder = tmp_path / "static"
        folder.mkdir()
        (folder / "hello.txt").write_text("hello")
        return folder

    @pytest.fixture
    def built_apps(self) -> list[Quart]:
        """Every app a test built, newest last."""
        return []

    @pytest.fixture
    def app_class(self) -> type[Quart]:
        """Quart; a Trio run overrides it with ``quart_trio.QuartTrio``."""
        return Quart

    @pytest.fixture
    def make_app(
        self,
        store_config: dict[str, Any],
        static_folder: Path,
        built_apps: list[Quart],
        app_class: type[Quart],
    ) -> Iterator[Callable[..., Quart]]:
        def make(**config: Any) -> Quart:
            app = build_app({**store_config, **config}, static_folder, app_class)
            built_apps.append(app)
            return app

        yield make

    @pytest.fixture
    def app(self, make_app: Callable[..., Quart]) -> Quart:
        return make_app()

    @staticmethod
    def key(app: Quart, sid: str) -> str:
        return str(app.session_interface.engine.key_for(sid))  # type: ignore[attr-defined]

    @staticmethod
    def count_calls(app: Quart) -> CountingStore:
        interface = app.session_interface
        assert isinstance(interface, ServerSideSessionInterface)
        counting = CountingStore(interface.store)
        interface.engine.store = counting
        return counting

    # -- nothing stored unless written ----------------------------------------------
    async def test_untouched_session_sets_no_cookie_and_no_vary(self, app: Quart) -> None:
        browser = Browser(app)
        calls = self.count_calls(app)
        response = await browser.get("/untouched")
        assert "Set-Cookie" not in response.headers
        assert "Cookie" not in response.vary
        assert calls.calls == []

    async def test_reading_a_new_session_varies_but_stores_nothing(self, app: Quart) -> None:
        browser = Browser(app)
        calls = self.count_calls(app)
        response = await browser.get("/get/user")
        assert "Cookie" in response.vary
        assert "Set-Cookie" not in response.headers
        assert calls.calls == []

    async def test_write_stores_the_record_and_sets_a_256_bit_id_cookie(
        self, app: Quart, read_raw: ReadRaw
    ) -> None:
        browser = Browser(app)
        await browser.text("/set/user/alice")
        assert browser.cookie is not None and ID_PATTERN.fullmatch(browser.cookie)
        raw = await read_raw(self.key(app, browser.sid))
        assert raw is not None and b"alice" in raw
        assert "HttpOnly" in (browser.last_set_cookie or "")
        assert await browser.text("/get/user") == "'alice'"

    async def test_ids_differ_between_sessions(self, app: Quart) -> None:
        sids = set()
        for _ in range(5):
            browser = Browser(app)
            await browser.text("/set/k/v")
            sids.add(browser.sid)
        assert len(sids) == 5

    async def test_unknown_well_formed_id_is_never_adopted(
        self, app: Quart, read_raw: ReadRaw
    ) -> None:
        browser = Browser(app)
        planted = "A" * 43
        browser.cookie = planted
        await browser.text("/set/user/victim")
        assert browser.cookie is not None and browser.cookie != planted
        assert await read_raw(self.key(app, planted)) is None

    @pytest.mark.parametrize("cookie", ["short", "x" * 43 + "!", "../../etc/passwd", "A" * 44])
    async def test_malformed_id_never_reaches_the_store(self, app: Quart, cookie: str) -> None:
        browser = Browser(app)
        browser.cookie = cookie
        calls = self.count_calls(app)
        assert await browser.text("/get/user") == "None"
        assert calls.calls == []

    # -- clearing ---------------------------------------------------------------------
    async def test_clear_deletes_the_record_and_the_cookie_with_the_same_attributes(
        self, make_app: Callable[..., Quart], read_raw: ReadRaw
    ) -> None:
        app = make_app(
            SESSION_COOKIE_DOMAIN="example.test",
            SESSION_COOKIE_PATH="/app",
            SESSION_COOKIE_SECURE=True,
            SESSION_COOKIE_SAMESITE="Strict",
            SESSION_COOKIE_PARTITIONED=QUART_HAS_PARTITIONED,
        )
        browser = Browser(app)
        await browser.text("/set/user/alice")
        set_header = browser.last_set_cookie or ""
        sid = browser.sid
        assert await browser.text("/clear") == "cleared"
        deleted = browser.last_set_cookie or ""
        assert browser.cookie is None
        assert await read_raw(self.key(app, sid)) is None
        for attribute in ("Domain=example.test", "Path=/app", "Secure", "SameSite=Strict"):
            assert attribute in set_header and attribute in deleted, attribute
        partitioned = ("Partitioned" in set_header, "Partitioned" in deleted)
        assert partitioned == (QUART_HAS_PARTITIONED, QUART_HAS_PARTITIONED)

    async def test_data_set_after_clear_lives_under_a_new_id(
        self, app: Quart, read_raw: ReadRaw
    ) -> None:
        browser = Browser(app)
        await browser.text("/set/user/alice")
        old = browser.sid
        await browser.text("/clear-then-set/flash/bye")
        assert browser.sid != old
        assert await read_raw(self.key(app, old)) is None
        assert await browser.text("/get/user") == "None"
        assert await browser.text("/get/flash") == "'bye'"

    # -- cookies and expiry ------------------------------------------------------------
    async def test_cookie_attributes_follow_quart_config(
        self, make_app: Callable[..., Quart]
    ) -> None:
        app = make_app(
            SESSION_COOKIE_NAME="sid",
            SESSION_COOKIE_HTTPONLY=False,
            SESSION_COOKIE_SAMESITE="Lax",
            SESSION_COOKIE_PATH="/",
        )
        browser = Browser(app)
        await browser.text("/set/a/b")
        header = browser.last_set_cookie or ""
        assert header.startswith("sid=")
        assert "HttpOnly" not in header and "SameSite=Lax" in header and "Path=/" in header

    async def test_permanent_session_cookie_expires_with_the_lifetime(
        self, make_app: Callable[..., Quart]
    ) -> None:
        app = make_app(PERMANENT_SESSION_LIFETIME=3600)
        browser = Browser(app)
        await browser.text("/set/a/b")
        _, _, attributes = parse_set_cookie(browser.last_set_cookie or "")
        left = parsedate_to_datetime(attributes["expires"]) - datetime.now(UTC)
        assert 3500 < left.total_seconds() <= 3600

    async def test_non_permanent_session_gets_a_browser_session_cookie(
        self, make_app: Callable[..., Quart], read_raw: ReadRaw
    ) -> None:
        app = make_app(SESSION_PERMANENT=False)
        browser = Browser(app)
        await browser.text("/set/a/b")
        assert "expires" not in (browser.last_set_cookie or "").lower()
        assert await read_raw(self.key(app, browser.sid)) is not None
        await browser.text("/permanent/1")
        assert "expires" in (browser.last_set_cookie or "").lower()

    async def test_sliding_expiry_keeps_an_active_session_alive_without_rewriting(
        self, make_app: Callable[..., Quart]
    ) -> None:
        app = make_app(PERMANENT_SESSION_LIFETIME=3)
        browser = Browser(app)
        await browser.text("/set/user/alice")
        calls = self.count_calls(app)
        for _ in range(3):
            await anyio.sleep(1.5)
            assert await browser.text("/get/user") == "'alice'"
            assert browser.last_set_cookie is not None  # re-sent with a new expiry
        assert "save" not in calls.calls and calls.calls.count("load") == 3

    async def test_a_read_within_refresh_after_writes_nothing_and_sends_no_cookie(
        self, make_app: Callable[..., Quart]
    ) -> None:
        app = make_app(PERMANENT_SESSION_LIFETIME=60, SESSION_REFRESH_AFTER=30)
        browser = Browser(app)
        await browser.text("/set/user/alice")
        calls = self.count_calls(app)
        assert await browser.text("/get/user") == "'alice'"
        assert calls.calls == ["load"]
        if calls.inner.refresh_is_free:
            # The refresh rides along with the read (GETEX, mg T): done every time.
            assert browser.last_set_cookie is not None
        else:
            assert browser.last_set_cookie is None

    async def test_refresh_after_refreshes_once_due_and_keeps_an_active_user_in(
        self, make_app: Callable[..., Quart]
    ) -> None:
        # 4 s lifetime, refreshed once 2 s have passed. Margins of whole seconds:
        # DynamoDB keeps expiry in seconds, memcached's clock ticks once a second.
        app = make_app(PERMANENT_SESSION_LIFETIME=4, SESSION_REFRESH_AFTER=2)
        browser = Browser(app)
        await browser.text("/set/user/alice")
        calls = self.count_calls(app)
        await anyio.sleep(2.3)
        assert await browser.text("/get/user") == "'alice'"
        assert browser.last_set_cookie is not None  # refreshed: the cookie follows
        await anyio.sleep(2.3)  # past the first 4 s: alive only if refreshed
        assert await browser.text("/get/user") == "'alice'"
        assert browser.last_set_cookie is not None
        # Refreshed, never rewritten: in the read (GETEX, mg T), or once due
        # where a refresh is a write of the expiry alone.
        due_read = ["load"] if calls.inner.refresh_is_free else ["load", "expire"]
        assert calls.calls == due_read * 2

    async def test_without_refresh_each_request_a_read_neither_resends_nor_extends(
        self, make_app: Callable[..., Quart]
    ) -> None:
        # 3 s, read at 1 s, gone at 3.5 s: memcached's clock ticks once a second,
        # so a record may expire up to a second before its TTL is up.
        app = make_app(PERMANENT_SESSION_LIFETIME=3, SESSION_REFRESH_EACH_REQUEST=False)
        browser = Browser(app)
        await browser.text("/set/user/alice")
        await anyio.sleep(1.0)
        assert await browser.text("/get/user") == "'alice'"
        assert browser.last_set_cookie is None
        await anyio.sleep(2.5)
        assert await browser.text("/get/user") == "None"

    # -- change tracking -------------------------------------------------------------
    async def test_nested_changes_are_saved_without_marking_modified(self, app: Quart) -> None:
        browser = Browser(app)
        await browser.text("/new-list/cart")
        await browser.text("/append/cart/apple")
        await browser.text("/append/cart/pear")
        assert await browser.text("/get/cart") == "['apple', 'pear']"

    async def test_reads_never_rewrite_the_record(self, make_app: Callable[..., Quart]) -> None:
        app = make_app(SESSION_REFRESH_EACH_REQUEST=False)
        browser = Browser(app)
        await browser.text("/new-list/cart")
        calls = self.count_calls(app)
        await browser.text("/get/cart")
        await browser.text("/get/missing")
        assert calls.calls == ["load", "load"]

    async def test_deleting_a_key_is_saved(self, app: Quart) -> None:
        browser = Browser(app)
        await browser.text("/set/a/1")
        await browser.text("/set/b/2")
        await browser.text("/delete/a")
        assert await browser.text("/get/a") == "None"
        assert await browser.text("/get/b") == "'2'"

    # -- ids ---------------------------------------------------------------------------
    async def test_regenerate_moves_the_data_to_a_new_id_and_kills_the_old_one(
        self, app: Quart, read_raw: ReadRaw
    ) -> None:
        browser = Browser(app)
        await browser.text("/set/user/alice")
        old = browser.sid
        await browser.text("/regenerate")
        assert browser.sid != old
        assert holds_no_session(await read_raw(self.key(app, old)))
        assert await browser.text("/get/user") == "'alice'"
        thief = Browser(app)
        thief.cookie = old
        assert await thief.text("/get/user") == "None"

    async def test_signed_ids_reject_tampering_and_rotate_keys(
        self, make_app: Callable[..., Quart]
    ) -> None:
        old_app = make_app(SESSION_USE_SIGNER=True, SECRET_KEY="old")
        browser = Browser(old_app)
        await browser.text("/set/user/alice")
        assert browser.cookie is not None and "." in browser.cookie
        signed = browser.cookie
        tampered = Browser(old_app)
        tampered.cookie = signed[:-2] + ("AA" if not signed.endswith("AA") else "BB")
        assert await tampered.text("/get/user") == "None"
        unsigned = Browser(old_app)
        unsigned.cookie = browser.sid
        assert await unsigned.text("/get/user") == "None"
        if not QUART_HAS_KEY_FALLBACKS:
            pytest.skip("key rotation needs SECRET_KEY_FALLBACKS (Quart 0.21+)")
        # Same store, new key: the old key still verifies as a fallback.
        new_app = make_app(SESSION_USE_SIGNER=True, SECRET_KEY="new", SECRET_KEY_FALLBACKS=["old"])
        new_app.session_interface.engine.store = old_app.session_interface.store  # type: ignore[attr-defined]
        browser.app, browser.client = new_app, new_app.test_client(use_cookies=False)
        assert await browser.text("/get/user") == "'alice'"
        assert browser.cookie is not None and browser.cookie != signed  # re-signed with "new"
        only_new = make_app(SESSION_USE_SIGNER=True, SECRET_KEY="new")
        only_new.session_interface.engine.store = old_app.session_interface.store  # type: ignore[attr-defined]
        stale = Browser(only_new)
        stale.cookie = signed
        assert await stale.text("/get/user") == "None"

    # -- explicit sessions and files --------------------------------------------------
    async def test_explicit_mode_stores_new_sessions_only_when_dirty(
        self, make_app: Callable[..., Quart]
    ) -> None:
        app = make_app(SESSION_EXPLICIT=True)
        browser = Browser(app)
        calls = self.count_calls(app)
        await browser.text("/set/visited/yes")
        assert browser.cookie is None and calls.calls == []
        await browser.text("/dirty/user/alice")
        assert browser.cookie is not None
        await browser.text("/set/theme/dark")  # an existing session saves normally
        assert await browser.text("/get/theme") == "'dark'"

    async def test_static_files_never_touch_the_store_or_cookie(self, app: Quart) -> None:
        browser = Browser(app)
        await browser.text("/set/user/alice")
        calls = self.count_calls(app)
        response = await browser.get("/static/hello.txt")
        assert response.status_code == 200
        assert "Set-Cookie" not in response.headers
        assert calls.calls == []

    # -- requests that never load the session ---------------------------------------
    @pytest.mark.parametrize("path", ["/no-session", "/outer/inner/ping"])
    async def test_a_no_session_view_costs_no_store_call_cookie_or_vary(
        self, make_app: Callable[..., Quart], path: str
    ) -> None:
        # Sliding expiry refreshing on every read, which would re-send a cookie.
        app = make_app(PERMANENT_SESSION_LIFETIME=3, SESSION_REFRESH_AFTER=0)
        browser = Browser(app)
        await browser.text("/set/user/alice")
        calls = self.count_calls(app)
        response = await browser.get(path)
        assert response.status_code == 200
        assert "Set-Cookie" not in response.headers
        assert "Cookie" not in response.vary
        assert calls.calls == []
        assert await browser.text("/get/user") == "'alice'"

    async def test_a_no_session_websocket_costs_no_store_call(self, app: Quart) -> None:
        browser = Browser(app)
        await browser.text("/set/user/alice")
        calls = self.count_calls(app)
        async with browser.websocket("/ws/no-session") as ws:
            assert await ws.receive() == "fine"
        assert calls.calls == []

    async def test_touching_the_session_in_a_no_session_view_names_the_view(
        self, app: Quart
    ) -> None:
        browser = Browser(app)
        await browser.text("/set/user/alice")
        calls = self.count_calls(app)
        # With and without a session cookie alike.
        for cookie in (browser.cookie, None):
            browser.cookie = cookie
            response = await browser.get("/no-session/touch")
            assert response.status_code == 500
            page = await response.get_data(as_text=True)
            expected = "SessionNotLoadedError: the view 'touching' is marked no_session"
            assert page.startswith(expected)
        assert calls.calls == []

    @pytest.mark.parametrize(
        ("method", "path", "status"), [("GET", "/nowhere", 404), ("POST", "/untouched", 405)]
    )
    async def test_requests_no_route_serves_cost_no_store_call(
        self, app: Quart, method: str, path: str, status: int
    ) -> None:
        browser = Browser(app)
        await browser.text("/set/user/alice")
        calls = self.count_calls(app)
        send = browser.client.get if method == "GET" else browser.client.post
        response = await send(path, headers={"Cookie": f"{browser.name}={browser.cookie}"})
        assert response.status_code == status
        assert "Set-Cookie" not in response.headers
        assert calls.calls == []

    async def test_changes_in_a_file_response_are_saved_without_set_cookie(
        self, app: Quart
    ) -> None:
        browser = Browser(app)
        await browser.text("/set/user/alice")
        response = await browser.get("/file/seen/yes")
        assert await response.get_data() == b"hello"
        assert "Set-Cookie" not in response.headers
        assert await browser.text("/get/seen") == "'yes'"

    async def test_a_new_session_made_in_a_file_response_is_not_lost(self, app: Quart) -> None:
        browser = Browser(app)
        await browser.get("/file/seen/yes")
        assert browser.cookie is not None
        assert await browser.text("/get/seen") == "'yes'"

    async def test_static_file_true_restores_cookies_on_files(
        self, make_app: Callable[..., Quart]
    ) -> None:
        # Every read refreshes the expiry, so every read re-sends the cookie.
        app = make_app(SESSION_STATIC_FILE=True, SESSION_REFRESH_AFTER=0)
        browser = Browser(app)
        await browser.text("/set/user/alice")
        response = await browser.get("/static/hello.txt")
        assert "Set-Cookie" in response.headers

    # -- hijack protection -----------------------------------------------------------
    async def test_hijack_protection_pins_the_session_to_the_client_address(
        self, make_app: Callable[..., Quart], read_raw: ReadRaw
    ) -> None:
        app = make_app(SESSION_HIJACK_PROTECTION=True)
        owner = Browser(app, address="10.0.0.1")
        await owner.text("/set/user/alice")
        assert await owner.text("/get/user") == "'alice'"
        thief = Browser(app, address="10.6.6.6")
        thief.cookie = owner.cookie
        assert await thief.text("/get/user") == "None"
        assert await read_raw(self.key(app, owner.sid)) is None

    async def test_clear_does_not_remove_the_pin(self, make_app: Callable[..., Quart]) -> None:
        app = make_app(SESSION_PROTECTION=True)  # Quart-Session 3.0's name still works
        owner = Browser(app, address="10.0.0.1")
        await owner.text("/clear-then-set/user/alice")
        thief = Browser(app, address="10.6.6.6")
        thief.cookie = owner.cookie
        assert await thief.text("/get/user") == "None"

    async def test_reverse_proxy_uses_the_address_the_proxy_appended(
        self, make_app: Callable[..., Quart]
    ) -> None:
        app = make_app(SESSION_HIJACK_PROTECTION=True, SESSION_HIJACK_REVERSE_PROXY=True)
        proxy = "10.0.0.254"
        owner = Browser(app, address=proxy)
        await owner.get("/set/user/alice", {"X-Forwarded-For": "203.0.113.7"})
        # A client-written leftmost entry does not matter...
        response = await owner.get("/get/user", {"X-Forwarded-For": "1.2.3.4, 203.0.113.7"})
        assert await response.get_data(as_text=True) == "'alice'"
        # ...the address the proxy saw does.
        thief = Browser(app, address=proxy)
        thief.cookie = owner.cookie
        response = await thief.get("/get/user", {"X-Forwarded-For": "203.0.113.7, 198.51.100.9"})
        assert await response.get_data(as_text=True) == "None"

    # -- websockets -----------------------------------------------------------------------
    async def test_websocket_reads_the_session_and_saves_its_changes(self, app: Quart) -> None:
        browser = Browser(app)
        await browser.text("/set/user/alice")
        async with browser.websocket("/ws/get/user") as ws:
            assert await ws.receive() == "'alice'"
        async with browser.websocket("/ws/set/theme/dark") as ws:
            assert await ws.receive() == "set"
        await anyio.sleep(0.1)
        assert await browser.text("/get/theme") == "'dark'"

    async def test_save_now_persists_in_the_middle_of_a_connection(self, app: Quart) -> None:
        browser = Browser(app)
        await browser.text("/set/user/alice")
        async with browser.websocket("/ws/counter") as ws:
            for expected in ("1", "2"):
                await ws.send("tick")
                assert await ws.receive() == expected
            assert await browser.text("/get/count") == "2"

    async def test_a_session_created_in_a_websocket_is_not_stored(
        self, app: Quart, caplog: pytest.LogCaptureFixture
    ) -> None:
        browser = Browser(app)
        calls = self.count_calls(app)
        async with browser.websocket("/ws/set/theme/dark") as ws:
            assert await ws.receive() == "set"
        await anyio.sleep(0.1)
        assert "save" not in calls.calls
        assert "created inside a websocket is not stored" in caplog.text

    # -- a slow store: SESSION_BACKEND_TIMEOUT bounds a request's store work ------------------
    @staticmethod
    def slow_down(app: Quart, delay: float) -> Store:
        """Make each load and save of *app*'s store take *delay* seconds; the
        store as it was."""
        interface = app.session_interface
        assert isinstance(interface, ServerSideSessionInterface)
        fast = interface.store
        interface.engine.store = SlowStore(fast, delay)
        return fast

    async def slowed(self, make_app: Callable[..., Quart]) -> tuple[Quart, Browser, Store]:
        """An app with a 0.5 s timeout, a browser whose session holds a user,
        and then 0.3 s per load and save: the app, the browser, the store as
        it was."""
        app = make_app(SESSION_BACKEND_TIMEOUT=0.5)
        browser = Browser(app)
        await browser.text("/set/user/alice")
        return app, browser, self.slow_down(app, 0.3)

    async def test_a_request_s_store_calls_share_the_backend_timeout(
        self, make_app: Callable[..., Quart]
    ) -> None:
        # The load and the save each take less than the timeout, together more.
        app, browser, fast = await self.slowed(make_app)
        started = time.monotonic()
        response = await browser.get("/set/user/bob")
        elapsed = time.monotonic() - started
        assert (response.status_code, elapsed < 0.5 + 0.25) == (503, True), elapsed
        assert response.headers["Retry-After"]
        app.session_interface.engine.store = fast  # type: ignore[attr-defined]
        assert await browser.text("/get/user") == "'alice'"

    async def test_each_save_of_a_websocket_has_the_whole_backend_timeout(
        self, make_app: Callable[..., Quart]
    ) -> None:
        app, browser, fast = await self.slowed(make_app)
        # The opening load and two saves: 0.9 s of store work on one connection.
        async with browser.websocket("/ws/counter") as ws:
            for expected in ("1", "2"):
                await ws.send("tick")
                assert await ws.receive() == expected
        app.session_interface.engine.store = fast  # type: ignore[attr-defined]
        assert await browser.text("/get/count") == "2"

    # -- limits and unstorable data --------------------------------------------------------
    async def test_a_session_over_max_size_is_refused_and_the_stored_one_kept(
        self, make_app: Callable[..., Quart], read_raw: ReadRaw, caplog: pytest.LogCaptureFixture
    ) -> None:
        app = make_app(SESSION_MAX_SIZE=4096)
        browser = Browser(app)
        await browser.text("/set/user/alice")
        before = await read_raw(self.key(app, browser.sid))
        calls = self.count_calls(app)
        response = await browser.get("/set-big/blob/5000")
        assert response.status_code == 400
        assert "SESSION_MAX_SIZE (4096 bytes)" in caplog.text
        assert calls.calls == ["load"]  # refused before anything reached the store
        assert await read_raw(self.key(app, browser.sid)) == before
        assert await browser.text("/get/user") == "'alice'"

    async def test_the_default_max_size_decides_below_every_store_limit(
        self, app: Quart, read_raw: ReadRaw
    ) -> None:
        """700 kB: over the default SESSION_MAX_SIZE (256 KiB) and DynamoDB's
        400 KB items, under memcached's 1 MiB: our limit refuses it first on
        every store (memcached drops the old record when it refuses one)."""
        browser = Browser(app)
        await browser.text("/set/user/alice")
        before = await read_raw(self.key(app, browser.sid))
        response = await browser.get("/set-big/blob/700000")
        assert response.status_code == 400
        assert await read_raw(self.key(app, browser.sid)) == before
        assert await browser.text("/get/user") == "'alice'"

    async def test_text_with_lone_surrogates_round_trips(self, app: Quart) -> None:
        browser = Browser(app)
        await browser.text("/set-surrogate/s")
        assert await browser.text("/has-surrogate/s") == "True"

    async def test_an_unstorable_value_answers_400_naming_its_key(
        self, app: Quart, read_raw: ReadRaw, caplog: pytest.LogCaptureFixture
    ) -> None:
        browser = Browser(app)
        await browser.text("/set/user/alice")
        before = await read_raw(self.key(app, browser.sid))
        response = await browser.get("/set-object/gadget")
        assert response.status_code == 400
        assert "'gadget'" in caplog.text
        assert "Traceback" not in caplog.text
        assert await read_raw(self.key(app, browser.sid)) == before

    # -- stored data -----------------------------------------------------------------------
    async def test_corrupt_stored_data_gives_a_fresh_session_not_an_error(
        self, app: Quart, caplog: pytest.LogCaptureFixture
    ) -> None:
        browser = Browser(app)
        await browser.text("/set/user/alice")
        store = app.session_interface.store  # type: ignore[attr-defined]
        key = self.key(app, browser.sid)
        await store.delete(key)
        await store.save(key, b"\xff\x00 not a session", 60, None)
        assert await browser.text("/get/user") == "None"
        assert "corrupt" in caplog.text

    # -- ids in a header (SESSION_ID_HEADER) -------------------------------------------
    @pytest.fixture
    def header_app(self, make_app: Callable[..., Quart]) -> Quart:
        return make_app(SESSION_ID_HEADER="X-Session-Id")

    async def test_a_header_client_keeps_its_session_without_cookies(
        self, header_app: Quart
    ) -> None:
        client = HeaderClient(header_app)
        response = await client.get("/set/user/alice")
        assert client.last_header is not None and ID_PATTERN.fullmatch(client.last_header)
        assert "Set-Cookie" not in response.headers
        assert "X-Session-Id" in response.vary and "Cookie" not in response.vary
        sid = client.value
        for path, expected in (("/get/user", "'alice'"), ("/set/theme/dark", "ok")):
            response = await client.get(path)
            assert await response.get_data(as_text=True) == expected
            assert "Set-Cookie" not in response.headers
            assert "X-Session-Id" in response.vary
            assert client.last_header is None  # the id it holds is unchanged
        assert await client.text("/get/theme") == "'dark'"
        assert client.value == sid

    async def test_a_refreshing_read_sends_no_header(self, make_app: Callable[..., Quart]) -> None:
        # Every read refreshes the expiry: the cookie is re-sent with a new
        # Expires, a header id (which has none) is not.
        app = make_app(SESSION_ID_HEADER="X-Session-Id", SESSION_REFRESH_AFTER=0)
        client, browser = HeaderClient(app), Browser(app)
        await client.text("/set/user/alice")
        await browser.text("/set/user/alice")
        assert await browser.text("/get/user") == "'alice'"
        assert browser.last_set_cookie is not None
        assert await client.text("/get/user") == "'alice'"
        assert client.last_header is None

    async def test_clear_logs_a_header_client_out_with_an_empty_header(
        self, header_app: Quart
    ) -> None:
        client = HeaderClient(header_app)
        await client.text("/set/user/alice")
        old = client.value
        response = await client.get("/clear")
        assert response.headers.get("X-Session-Id") == ""
        assert "Set-Cookie" not in response.headers
        assert client.value == ""
        assert await client.text("/get/user") == "None"
        thief = HeaderClient(header_app)
        thief.value = old
        assert await thief.text("/get/user") == "None"

    async def test_regenerate_gives_a_header_client_a_new_id(self, header_app: Quart) -> None:
        client = HeaderClient(header_app)
        await client.text("/set/user/alice")
        old = client.value
        await client.text("/regenerate")
        assert client.last_header is not None and client.value not in ("", old)
        assert await client.text("/get/user") == "'alice'"
        thief = HeaderClient(header_app)
        thief.value = old
        assert await thief.text("/get/user") == "None"

    async def test_the_header_wins_over_a_session_cookie(self, header_app: Quart) -> None:
        browser, client = Browser(header_app), HeaderClient(header_app)
        await browser.text("/set/user/alice")
        await client.text("/set/user/bob")
        cookie = {"Cookie": f"{browser.name}={browser.cookie}"}
        response = await client.get("/get/user", cookie)
        assert await response.get_data(as_text=True) == "'bob'"
        assert "Set-Cookie" not in response.headers
        # An empty header asks for a session in header mode: the cookie is not used.
        newcomer = HeaderClient(header_app)
        assert await newcomer.text("/get/user", cookie) == "None"
        await newcomer.text("/set/user/carol", cookie)
        assert newcomer.value not in ("", browser.cookie)
        assert await browser.text("/get/user") == "'alice'"

    async def test_without_the_header_requests_use_the_cookie_and_vary_on_both(
        self, header_app: Quart
    ) -> None:
        browser = Browser(header_app)
        response = await browser.get("/set/user/alice")
        assert browser.cookie is not None and "X-Session-Id" not in response.headers
        response = await browser.get("/get/user")
        assert await response.get_data(as_text=True) == "'alice'"
        assert "Cookie" in response.vary and "X-Session-Id" in response.vary

    @pytest.mark.parametrize("value", ["short", "x" * 43 + "!", "../../etc/passwd", "A" * 44])
    async def test_a_malformed_header_id_gives_a_fresh_session_without_a_store_call(
        self, header_app: Quart, value: str
    ) -> None:
        browser = Browser(header_app)
        await browser.text("/set/user/alice")
        calls = self.count_calls(header_app)
        client = HeaderClient(header_app)
        client.value = value
        cookie = {"Cookie": f"{browser.name}={browser.cookie}"}
        assert await client.text("/get/user", cookie) == "None"
        assert calls.calls == []

    async def test_signed_header_ids(self, make_app: Callable[..., Quart]) -> None:
        app = make_app(SESSION_ID_HEADER="X-Session-Id", SESSION_USE_SIGNER=True)
        client = HeaderClient(app)
        await client.text("/set/user/alice")
        signed = client.value
        sid = signed.split(".")[0]
        assert "." in signed and ID_PATTERN.fullmatch(sid)
        assert await client.text("/get/user") == "'alice'"
        for forged in (sid, signed[:-2] + ("AA" if not signed.endswith("AA") else "BB")):
            thief = HeaderClient(app)
            thief.value = forged
            assert await thief.text("/get/user") == "None"
        await client.text("/regenerate")
        assert "." in client.value and client.value.split(".")[0] != sid
        assert await client.text("/get/user") == "'alice'"
        if not QUART_HAS_KEY_FALLBACKS:
            return
        # A new key, the old one a fallback: the next read re-signs the id.
        rotated = make_app(
            SESSION_ID_HEADER="X-Session-Id",
            SESSION_USE_SIGNER=True,
            SECRET_KEY="new",
            SECRET_KEY_FALLBACKS=["test-secret"],
        )
        rotated.session_interface.engine.store = app.session_interface.store  # type: ignore[attr-defined]
        client.app, client.client = rotated, rotated.test_client(use_cookies=False)
        before = client.value
        assert await client.text("/get/user") == "'alice'"
        assert client.last_header is not None and client.value != before
        assert client.value.split(".")[0] == before.split(".")[0]
        assert await client.text("/get/user") == "'alice'"
        assert client.last_header is None

    async def test_hijack_protection_pins_a_header_session(
        self, make_app: Callable[..., Quart]
    ) -> None:
        app = make_app(SESSION_ID_HEADER="X-Session-Id", SESSION_HIJACK_PROTECTION=True)
        owner = HeaderClient(app, address="10.0.0.1")
        await owner.text("/set/user/alice")
        assert await owner.text("/get/user") == "'alice'"
        thief = HeaderClient(app, address="10.6.6.6")
        thief.value = owner.value
        assert await thief.text("/get/user") == "None"
        assert await owner.text("/get/user") == "None"  # the pinned session was ended

    async def test_a_websocket_with_the_header_uses_its_id(self, header_app: Quart) -> None:
        client = HeaderClient(header_app)
        await client.text("/set/user/alice")
        async with client.websocket("/ws/get/user") as ws:
            assert await ws.receive() == "'alice'"

    # -- hashed ids at rest (SESSION_HASH_IDS) -------------------------------------------
    @staticmethod
    async def records_holding(all_records: AllRecords, *sids: str) -> list[bytes]:
        """Every key and value in the store that holds one of *sids*; fails if
        the store holds no session at all (the check would prove nothing)."""
        found = await all_records()
        assert any(b"alice" in value for _, value in found), found
        return [
            part for record in found for part in record if any(s.encode() in part for s in sids)
        ]

    async def test_no_key_or_value_in_the_store_holds_a_session_id(
        self, app: Quart, all_records: AllRecords
    ) -> None:
        browser = Browser(app)
        await browser.text("/set/user/alice")
        first = browser.sid
        assert await self.records_holding(all_records, first) == []
        # regenerate() leaves a marker at the old key naming the new record.
        await browser.text("/regenerate")
        second = browser.sid
        assert second != first
        assert await self.records_holding(all_records, first, second) == []
        assert await browser.text("/get/user") == "'alice'"
        await browser.text("/set/user/alice2")
        assert await browser.text("/get/user") == "'alice2'"
        thief = Browser(app)
        thief.cookie = first
        assert await thief.text("/get/user") == "None"

    async def test_a_record_stored_under_the_raw_id_is_not_found(self, app: Quart) -> None:
        interface = app.session_interface
        assert isinstance(interface, ServerSideSessionInterface)
        engine = interface.engine
        victim = Browser(app)
        await victim.text("/untouched")  # builds the store
        sid = "B" * 43
        raw_key = str(app.config.get("SESSION_KEY_PREFIX", "session:")) + sid
        assert engine.key_for(sid) != raw_key
        payload = engine.encode({"user": "alice"}, records.meta(True, None))
        await engine.store.save(raw_key, payload, 60, None)
        victim.cookie = sid
        assert await victim.text("/get/user") == "None"
        assert await engine.load(sid) is None

    async def test_hash_ids_false_stores_under_the_raw_id(
        self, make_app: Callable[..., Quart], read_raw: ReadRaw
    ) -> None:
        app = make_app(SESSION_HASH_IDS=False)
        browser = Browser(app)
        await browser.text("/set/user/alice")
        prefix = str(app.config.get("SESSION_KEY_PREFIX", "session:"))
        raw = await read_raw(prefix + browser.sid)
        assert raw is not None and b"alice" in raw
        old = browser.sid
        await browser.text("/regenerate")
        assert holds_no_session(await read_raw(prefix + old))
        assert await browser.text("/get/user") == "'alice'"

    async def test_save_now_after_a_regenerate_elsewhere_keeps_saving_the_moved_session(
        self, app: Quart
    ) -> None:
        browser = Browser(app)
        await browser.text("/set/user/alice")
        async with browser.websocket("/ws/counter") as ws:
            await ws.send("tick")
            assert await ws.receive() == "1"
            # Another request moves the session: the websocket's next save
            # follows the marker (to a record it knows by name only), and the
            # one after that saves there again.
            await browser.text("/regenerate")
            for expected in ("2", "3"):
                await ws.send("tick")
                assert await ws.receive() == expected
            assert await browser.text("/get/count") == "3"
        await anyio.sleep(0.1)
        assert await browser.text("/get/count") == "3"
        assert await browser.text("/get/user") == "'alice'"
