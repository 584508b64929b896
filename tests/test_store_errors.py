"""A failing store answers 503 with Retry-After, never a 500 or a silent loss."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from quart import Quart, Response

from quart_session import SessionBackendError, session_store_error

from .suites.behaviour import Browser, build_app

pytestmark = pytest.mark.anyio


def app_with(folder: Path) -> Quart:
    """The behaviour suite's app on a filesystem store in *folder* (its static
    folder, unused here, is the one above)."""
    return build_app({"SESSION_TYPE": "filesystem", "SESSION_FILE_DIR": str(folder)}, folder.parent)


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
    await browser.text("/set/value/one")
    break_store(folder)
    reading = await browser.get("/get/value")
    assert reading.status_code == 503
    assert reading.headers["Retry-After"] == "5"
    assert (await browser.get("/untouched")).status_code == 200  # no session, no failure
    writing = await Browser(app).get("/set/value/two")
    assert writing.status_code == 503
    assert "Set-Cookie" not in writing.headers
    assert errors
    assert all("filesystem" in str(error) for error in errors)
    assert isinstance(errors[0].__cause__, OSError)
    mend_store(folder)
    fresh = Browser(app)
    assert await fresh.text("/set/value/three") == "ok"
    assert await fresh.text("/get/value") == "'three'"


async def test_apps_may_answer_store_failures_their_own_way(tmp_path: Path) -> None:
    folder = tmp_path / "sessions"
    app = app_with(folder)

    @app.errorhandler(SessionBackendError)
    async def custom(error: SessionBackendError) -> Response:
        return Response("maintenance", status=507)

    browser = Browser(app)
    await browser.text("/set/value/one")
    break_store(folder)
    reading = await browser.get("/get/value")
    assert reading.status_code == 507
    writing = await Browser(app).get("/set/value/two")
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
