"""A failing store answers 503 with Retry-After, never a 500 or a silent loss."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from quart import Quart, Response, session

from quart_session import Session, SessionBackendError, session_store_error

from .behaviour import Browser

pytestmark = pytest.mark.anyio


def app_with(folder: Path) -> Quart:
    app = Quart(__name__)
    app.config.update(SECRET_KEY="s", SESSION_TYPE="filesystem", SESSION_FILE_DIR=str(folder))

    @app.get("/set/<value>")
    async def set_(value: str) -> str:
        session["value"] = value
        return "ok"

    @app.get("/get")
    async def get() -> str:
        return repr(session.get("value"))

    @app.get("/untouched")
    async def untouched() -> str:
        return "fine"

    Session(app)
    return app


def break_store(folder: Path) -> None:
    """Make every file operation of the store fail: its folder becomes a file."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.write_text("not a folder")


def mend_store(folder: Path) -> None:
    folder.unlink()
    (folder / ".locks").mkdir(parents=True)


async def test_store_failure_gives_503_and_recovers(tmp_path: Path) -> None:
    folder = tmp_path / "sessions"
    app = app_with(folder)
    errors: list[SessionBackendError] = []
    session_store_error.connect(lambda sender, error: errors.append(error), app, weak=False)
    browser = Browser(app)
    await browser.text("/set/one")
    break_store(folder)
    reading = await browser.get("/get")
    assert reading.status_code == 503
    assert reading.headers["Retry-After"] == "5"
    assert (await browser.get("/untouched")).status_code == 200  # no session, no failure
    writing = await Browser(app).get("/set/two")
    assert writing.status_code == 503
    assert "Set-Cookie" not in writing.headers
    assert errors
    assert all("filesystem" in str(error) for error in errors)
    assert isinstance(errors[0].__cause__, OSError)
    mend_store(folder)
    fresh = Browser(app)
    assert await fresh.text("/set/three") == "ok"
    assert await fresh.text("/get") == "'three'"


async def test_apps_may_answer_store_failures_their_own_way(tmp_path: Path) -> None:
    folder = tmp_path / "sessions"
    app = app_with(folder)

    @app.errorhandler(SessionBackendError)
    async def custom(error: SessionBackendError) -> Response:
        return Response("maintenance", status=507)

    browser = Browser(app)
    await browser.text("/set/one")
    break_store(folder)
    reading = await browser.get("/get")
    assert reading.status_code == 507
    writing = await Browser(app).get("/set/two")
    assert writing.status_code == 507
    assert await writing.get_data(as_text=True) == "maintenance"


async def test_unreachable_store_at_startup_names_store_and_address(tmp_path: Path) -> None:
    folder = tmp_path / "sessions"
    app = app_with(folder)
    break_store(folder)
    # Quart's test app wraps start-up errors in its LifespanError.
    with pytest.raises(Exception, match=f"session store 'filesystem' at {folder}: ping failed"):
        async with app.test_app():
            pass
