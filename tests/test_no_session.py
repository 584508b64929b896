"""Requests that never load the session, beyond what the shared behaviour
suite checks on every store: marking rules, routing errors with and without an
error handler, hooks writing to a session that was not loaded."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from quart import Blueprint, Quart, session

from quart_session import Session, no_session

from .suites.behaviour import Browser, CountingStore


def make_app(**config: Any) -> tuple[Quart, CountingStore]:
    app = Quart(__name__)
    app.config.update(SECRET_KEY="test", TESTING=True, SESSION_TYPE="memory", **config)

    @app.get("/set/<value>")
    async def set_(value: str) -> str:
        session["user"] = value
        return "ok"

    @app.get("/get")
    async def get() -> str:
        return repr(session.get("user"))

    @app.get("/slash/")
    async def slash() -> str:
        return repr(session.get("user"))

    Session(app)
    interface: Any = app.session_interface
    counting = CountingStore(interface.store)
    interface.engine.store = counting
    return app, counting


async def logged_in(app: Quart, counting: CountingStore) -> Browser:
    browser = Browser(app)
    await browser.text("/set/alice")
    counting.calls.clear()
    return browser


def test_no_session_marks_functions_and_blueprints_and_refuses_the_rest() -> None:
    def view() -> str:
        return "ok"

    blueprint = Blueprint("bp", __name__)
    assert no_session(view) is view and no_session(blueprint) is blueprint
    with pytest.raises(TypeError, match="a view function or a Blueprint"):
        no_session("/health")
    with pytest.raises(TypeError, match="mark the function the route calls"):
        no_session(Browser.get.__get__(object()))  # a bound method takes no attributes


@pytest.mark.anyio
async def test_a_404_handler_of_the_app_gets_the_loaded_session() -> None:
    app, counting = make_app()

    @app.errorhandler(404)
    async def not_found(error: Exception) -> tuple[str, int]:
        return f"not here, {session.get('user')}", 404

    browser = await logged_in(app, counting)
    response = await browser.get("/nowhere")
    assert response.status_code == 404
    assert await response.get_data(as_text=True) == "not here, alice"
    assert counting.calls == ["load"]


@pytest.mark.anyio
async def test_a_hook_writing_on_a_404_neither_stores_nor_replaces_the_cookie(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, counting = make_app()

    @app.before_request
    async def mark_visit() -> None:
        session["visited"] = True

    browser = await logged_in(app, counting)
    cookie = browser.cookie
    with caplog.at_level(logging.WARNING, logger="quart_session"):
        response = await browser.get("/favicon.ico")
    assert response.status_code == 404
    assert "Set-Cookie" not in response.headers and "Cookie" not in response.vary
    assert counting.calls == []
    assert "'/favicon.ico' were not stored" in caplog.text
    assert browser.cookie == cookie
    assert await browser.text("/get") == "'alice'"


@pytest.mark.anyio
async def test_a_redirect_to_the_slashed_url_costs_no_store_call() -> None:
    app, counting = make_app()
    browser = await logged_in(app, counting)
    response = await browser.get("/slash")
    assert response.status_code == 308
    assert counting.calls == []
    assert await browser.text("/slash/") == "'alice'"


@pytest.mark.anyio
async def test_a_blueprints_static_files_cost_no_store_call(tmp_path: Any) -> None:
    (tmp_path / "style.css").write_text("body {}")
    app, counting = make_app()
    assets = Blueprint(
        "assets",
        __name__,
        static_folder=str(tmp_path),
        static_url_path="/static",
        url_prefix="/assets",
    )
    app.register_blueprint(assets)
    browser = await logged_in(app, counting)
    response = await browser.get("/assets/static/style.css")
    assert response.status_code == 200
    assert counting.calls == [] and "Set-Cookie" not in response.headers


@pytest.mark.anyio
async def test_the_demos_health_check_costs_no_store_call() -> None:
    from examples.demo.app import create_app

    app = create_app(SESSION_TYPE="memory")
    interface: Any = app.session_interface
    counting = CountingStore(interface.store)
    interface.engine.store = counting
    browser = Browser(app)
    await browser.text("/counter")  # a session exists
    counting.calls.clear()
    response = await browser.get("/health")
    assert response.status_code == 200 and await response.get_json() == {"status": "ok"}
    assert counting.calls == [] and "Set-Cookie" not in response.headers


@pytest.mark.anyio
async def test_the_url_is_matched_once_a_request(monkeypatch: pytest.MonkeyPatch) -> None:
    """The interface matches the URL before Quart does (Quart opens the session
    first); Quart's own second match on that context is skipped."""
    from werkzeug.routing import MapAdapter

    matches: list[str] = []
    original = MapAdapter.match

    def counted(self: MapAdapter, *args: Any, **kwargs: Any) -> Any:
        matches.append(self.path_info)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(MapAdapter, "match", counted)
    app, counting = make_app()
    browser = await logged_in(app, counting)
    for path in ("/get", "/set/bob", "/slash/"):
        matches.clear()
        await browser.text(path)
        assert matches == [path], path
    client = app.test_client()
    for path, status in (("/missing", 404), ("/slash", 308)):
        matches.clear()
        assert (await client.get(path)).status_code == status
        assert matches == [path], path
