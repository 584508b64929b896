"""The demo app in a real browser: Debian's Chromium driven by Playwright.

The demo runs under hypercorn on a free 127.0.0.1 port with its own session
folder; the store is checked with a second filesystem store on that folder, as
another worker process would see it. Each page's screenshot goes to
``docs/_static/`` (values that change from run to run are masked, so an
unchanged page gives an unchanged file).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import sys
import threading
import time
import urllib.request
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from examples.demo.app import create_app
from hypercorn.asyncio import serve
from hypercorn.config import Config
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from quart_session.ids import record_name
from quart_session.stores.filesystem import FileSystemStore
from quart_session.users import INDEX_PREFIX, handle_of, index_name

from .servers.processes import free_port, port_open, running
from .suites.behaviour import holds_no_session

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[1] / "docs" / "_static"
REPO = Path(__file__).resolve().parents[1]
KEY_PREFIX = "session:"
TIMES = "\N{MULTIPLICATION SIGN}"  # how the cart page writes quantities


@dataclass
class Demo:
    url: str
    folder: Path
    cookie_name: str
    loop: asyncio.AbstractEventLoop

    def record(self, sid: str) -> bytes | None:
        """The stored payload of session *sid*, read by a store of our own.

        Run on the server's loop: Playwright's sync API owns this thread's loop.
        """
        load = FileSystemStore(self.folder).load(KEY_PREFIX + record_name(sid, hashed=True))
        found = asyncio.run_coroutine_threadsafe(load, self.loop).result(10)
        return None if found is None else found.payload

    def session_files(self) -> list[str]:
        """Names of the session files in the folder (not locks or temp files)."""
        return [p.name for p in self.folder.iterdir() if re.fullmatch(r"[0-9a-f]{64}", p.name)]


class ErrorLog(logging.Handler):
    """Collects what the app logs as an error: a page may look fine while
    the app fails on a request the user never sees (a favicon, a save)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def run_until_stopped(loop: asyncio.AbstractEventLoop, server: Coroutine[Any, Any, None]) -> None:
    """Run *server* on *loop*, then end what the app still runs (open websockets)."""
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(server)
    finally:
        leftover = asyncio.all_tasks(loop)
        for task in leftover:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*leftover, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


@contextmanager
def serve_demo(folder: Path, **config: Any) -> Iterator[Demo]:
    """The demo under hypercorn in a thread of its own, until the block ends."""
    app = create_app(SESSION_FILE_DIR=str(folder), **config)
    port = free_port()
    hypercorn_config = Config()
    hypercorn_config.bind = [f"127.0.0.1:{port}"]
    hypercorn_config.graceful_timeout = 1
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    server = serve(app, hypercorn_config, shutdown_trigger=stop.wait)
    thread = threading.Thread(target=run_until_stopped, args=(loop, server), daemon=True)
    errors = ErrorLog()
    app.logger.addHandler(errors)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not port_open(port):
            assert thread.is_alive(), "the demo server stopped during start-up"
            assert time.monotonic() < deadline, f"the demo did not start on port {port}"
            time.sleep(0.05)
        yield Demo(f"http://127.0.0.1:{port}", folder, app.config["SESSION_COOKIE_NAME"], loop)
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        app.logger.removeHandler(errors)
    assert errors.messages == [], "the demo logged errors"


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    with serve_demo(tmp_path / "sessions") as running_demo:
        yield running_demo


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail("chromium not found: apt-get install chromium (./scripts/test does)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 900, "height": 640})
    ctx.set_default_timeout(10_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def session_cookie(context: BrowserContext, demo: Demo) -> dict[str, Any] | None:
    found = [c for c in context.cookies() if c["name"] == demo.cookie_name]
    return dict(found[0]) if found else None


def session_id(context: BrowserContext, demo: Demo) -> str:
    cookie = session_cookie(context, demo)
    assert cookie is not None, "the browser holds no session cookie"
    return str(cookie["value"])


def log_in(page: Page, demo: Demo, name: str) -> None:
    page.goto(demo.url + "/")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", "demo")
    page.click("#login button")
    expect(page.locator("#user")).to_have_text(name)


def add_to_cart(page: Page, demo: Demo, *products: str) -> None:
    page.goto(demo.url + "/cart")
    for product in products:
        page.click(f"#add-{product}")
        expect(page).to_have_url(demo.url + "/cart")


def screenshot(page: Page, name: str, *masked: str) -> None:
    """Save the page as ``docs/_static/demo-<name>.png``, *masked* elements hidden
    behind boxes of one size whatever their text (a temp path's length varies)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    fixed_boxes = "".join(
        f"{selector} {{ display: inline-block; width: 20em; white-space: nowrap;"
        " overflow: hidden; vertical-align: bottom; }"
        for selector in masked
    )
    page.screenshot(
        path=SCREENSHOTS / f"demo-{name}.png",
        full_page=True,
        mask=[page.locator(selector) for selector in masked],
        mask_color="#d1d5db",
        style=fixed_boxes,
        animations="disabled",
        caret="hide",
    )


def test_login_page_sets_no_cookie_until_login(page: Page, demo: Demo) -> None:
    page.goto(demo.url + "/")
    expect(page.locator("#login")).to_be_visible()
    screenshot(page, "login")
    assert session_cookie(page.context, demo) is None
    assert demo.session_files() == []

    page.fill("input[name=username]", "mallory")
    page.fill("input[name=password]", "wrong")
    page.click("#login button")
    expect(page.locator("#error")).to_have_text("Unknown user or wrong password.")
    assert session_cookie(page.context, demo) is None

    log_in(page, demo, "alice")
    expect(page.locator("#welcome")).to_contain_text("Welcome back, alice")
    assert demo.record(session_id(page.context, demo)) is not None


def test_cart_is_kept_across_reloads(page: Page, demo: Demo) -> None:
    log_in(page, demo, "alice")
    add_to_cart(page, demo, "tea", "tea", "cookies")
    page.reload()
    expect(page.locator("#cart li")).to_have_text(
        [
            re.compile(f"2 {TIMES} Green tea"),
            re.compile(f"1 {TIMES} Oat cookies"),
        ]
    )
    expect(page.locator("#total")).to_have_text("12.20 €")
    expect(page.locator("#cart-items")).to_have_text("3")
    screenshot(page, "cart")


def test_login_moves_session_to_new_id_and_keeps_cart(page: Page, demo: Demo) -> None:
    add_to_cart(page, demo, "coffee")
    anonymous = session_id(page.context, demo)
    assert demo.record(anonymous) is not None

    log_in(page, demo, "alice")
    logged_in = session_id(page.context, demo)
    assert logged_in != anonymous
    assert holds_no_session(demo.record(anonymous)), "the id used before login must stop working"
    assert demo.session_files() != []
    page.goto(demo.url + "/cart")
    expect(page.locator("#cart li")).to_have_text([re.compile(f"1 {TIMES} Coffee beans")])


def test_second_browser_context_has_its_own_session(
    browser: Browser, page: Page, demo: Demo
) -> None:
    log_in(page, demo, "alice")
    add_to_cart(page, demo, "tea")

    other = browser.new_context()
    try:
        other_page = other.new_page()
        other_page.goto(demo.url + "/cart")
        expect(other_page.locator("#cart-empty")).to_be_visible()
        expect(other_page.locator("#user")).to_have_count(0)
        log_in(other_page, demo, "bob")
        add_to_cart(other_page, demo, "coffee")
        expect(other_page.locator("#cart li")).to_have_text([re.compile("Coffee beans")])
        assert session_id(other, demo) != session_id(page.context, demo)
    finally:
        other.close()

    page.reload()
    expect(page.locator("#user")).to_have_text("alice")
    expect(page.locator("#cart li")).to_have_text([re.compile(f"1 {TIMES} Green tea")])


def open_counter(page: Page, demo: Demo) -> None:
    page.goto(demo.url + "/counter")
    expect(page.locator("#status")).to_have_text("connected")


def test_websocket_counter_survives_reload(page: Page, demo: Demo) -> None:
    log_in(page, demo, "alice")
    open_counter(page, demo)
    expect(page.locator("#counter")).to_have_text("0")
    for expected in ("1", "2", "3"):
        page.click("#increment")
        expect(page.locator("#counter")).to_have_text(expected)
    screenshot(page, "counter")

    page.reload()
    expect(page.locator("#status")).to_have_text("connected")
    expect(page.locator("#counter")).to_have_text("3")
    page.goto(demo.url + "/session")
    expect(page.locator("#data")).to_contain_text('"counter": 3')


def test_websocket_and_http_changes_in_two_tabs_are_both_kept(
    context: BrowserContext, page: Page, demo: Demo
) -> None:
    open_counter(page, demo)
    shop = context.new_page()
    # The websocket loaded the session before this cart change was saved: its
    # next save conflicts and must merge instead of overwriting the cart.
    add_to_cart(shop, demo, "cookies")
    page.click("#increment")
    expect(page.locator("#counter")).to_have_text("1")

    shop.goto(demo.url + "/session")
    expect(shop.locator("#data")).to_contain_text('"counter": 1')
    expect(shop.locator("#data")).to_contain_text('"cookies": 1')


def test_session_page_shows_id_expiry_and_store(page: Page, demo: Demo) -> None:
    page.goto(demo.url + "/session")
    expect(page.locator("#session-id")).to_have_text("none yet: nothing has been stored")

    log_in(page, demo, "alice")
    add_to_cart(page, demo, "tea")
    page.goto(demo.url + "/session")
    sid = session_id(page.context, demo)
    expect(page.locator("#session-id")).to_have_text(sid[:8] + "…")
    expect(page.locator("#expiry")).to_contain_text(re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC"))
    expect(page.locator("#store")).to_have_text(f"filesystem at {demo.folder}")
    expect(page.locator("#data")).to_contain_text('"user": "alice"')
    screenshot(page, "session", "#session-id", "#expiry", "#store code")


def session_key(sid: str) -> str:
    return KEY_PREFIX + record_name(sid, hashed=True)


def file_of(key: str) -> str:
    """The name of the filesystem store's file holding *key*."""
    return hashlib.sha256(key.encode()).hexdigest()


def test_logout_deletes_cookie_and_stored_record(page: Page, demo: Demo) -> None:
    index_key = INDEX_PREFIX + KEY_PREFIX + index_name("alice")
    log_in(page, demo, "alice")
    add_to_cart(page, demo, "tea")
    sid = session_id(page.context, demo)
    assert demo.record(sid) is not None
    # The session's file and alice's index of sessions (the devices page).
    assert sorted(demo.session_files()) == sorted([file_of(session_key(sid)), file_of(index_key)])

    page.click("#logout")
    expect(page.locator("#login")).to_be_visible()
    assert session_cookie(page.context, demo) is None
    assert demo.record(sid) is None
    assert demo.session_files() == []
    page.goto(demo.url + "/cart")
    expect(page.locator("#cart-empty")).to_be_visible()


def handle(sid: str, user: str = "alice") -> str:
    """The handle the devices page shows for session *sid* of *user*."""
    return handle_of(user, record_name(sid, hashed=True))


def test_a_device_logged_out_from_another_is_logged_out_on_its_next_request(
    browser: Browser, page: Page, demo: Demo
) -> None:
    log_in(page, demo, "alice")
    phone, laptop = browser.new_context(), browser.new_context()
    try:
        phone_page, laptop_page = phone.new_page(), laptop.new_page()
        log_in(phone_page, demo, "alice")
        log_in(laptop_page, demo, "alice")
        phone_sid = session_id(phone, demo)

        page.click("#devices-link")
        devices = page.locator("#devices tr.device")
        expect(devices).to_have_count(3)
        expect(page.locator("#devices tr.current")).to_have_count(1)
        expect(page.locator("#devices tr.current .address")).to_have_text("127.0.0.1")
        phone_row = devices.filter(has=page.locator(f"input[value='{handle(phone_sid)}']"))
        phone_row.locator("button.revoke").click()
        expect(devices).to_have_count(2)
        assert holds_no_session(demo.record(phone_sid))

        phone_page.reload()
        expect(phone_page.locator("#login")).to_be_visible()
        expect(phone_page.locator("#user")).to_have_count(0)
        laptop_page.reload()
        expect(laptop_page.locator("#user")).to_have_text("alice")

        # A handle is no permission: another user posting it ends nothing.
        log_in(phone_page, demo, "bob")
        laptop_handle = handle(session_id(laptop, demo))
        phone_page.request.post(demo.url + "/devices/revoke", form={"handle": laptop_handle})
        page.reload()
        expect(devices).to_have_count(2)

        page.click("#revoke-others")
        expect(devices).to_have_count(1)
        expect(page.locator("#revoke-others")).to_have_count(0)
        laptop_page.reload()
        expect(laptop_page.locator("#login")).to_be_visible()
        page.reload()
        expect(page.locator("#user")).to_have_text("alice")
        expect(page.locator("#devices .this-device")).to_have_text("this device")
    finally:
        phone.close()
        laptop.close()


@pytest.mark.parametrize(
    ("config", "httponly", "samesite", "path"),
    [
        ({}, True, "Lax", "/"),
        (
            {
                "SESSION_COOKIE_NAME": "shop_session",
                "SESSION_COOKIE_HTTPONLY": False,
                "SESSION_COOKIE_SAMESITE": "Strict",
                "SESSION_COOKIE_PATH": "/cart",
            },
            False,
            "Strict",
            "/cart",
        ),
    ],
    ids=["defaults", "configured"],
)
def test_cookie_flags_follow_configuration(
    tmp_path: Path,
    page: Page,
    config: dict[str, Any],
    httponly: bool,
    samesite: str,
    path: str,
) -> None:
    with serve_demo(tmp_path / "sessions", **config) as demo:
        add_to_cart(page, demo, "tea")
        cookie = session_cookie(page.context, demo)
        assert cookie is not None
        assert (cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (
            httponly,
            samesite,
            path,
        )
        # What the flags mean to the page: scripts see the cookie only
        # without HttpOnly, and the browser sends it only below its path.
        visible = f"{demo.cookie_name}=" in page.evaluate("document.cookie")
        assert visible is not httponly
        expect(page.locator("#cart-items")).to_have_text("1")
        page.goto(demo.url + "/")
        expect(page.locator("#cart-items")).to_have_text("1" if path == "/" else "0")


def test_scripts_demo_entry_point_prints_its_url_and_serves(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "demo.log"
    env = {"PORT": str(port), "SESSION_FILE_DIR": str(tmp_path / "sessions")}
    with running([sys.executable, "-m", "examples.demo"], port, log, cwd=REPO, env=env):
        assert f"http://127.0.0.1:{port}/" in log.read_text()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            assert response.status == 200
            assert "<title>Home · quart-session demo</title>" in response.read().decode()
