"""Switching SESSION_USER_KEY on in a running app: the sessions stored before
are indexed at their next request, a plain read included, so that "log out
everywhere" reaches them too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from quart import Quart, session

from quart_session import ServerSideSessionInterface, Session

from .suites.behaviour import Browser

pytestmark = pytest.mark.anyio


def make_app(folder: Path, **config: Any) -> Quart:
    app = Quart(__name__)
    app.config.update(
        SECRET_KEY="users-upgrade", SESSION_TYPE="filesystem", SESSION_FILE_DIR=str(folder)
    )
    app.config.update(config)

    @app.get("/login/<user>")
    async def login(user: str) -> str:
        session["user_id"] = user
        return "ok"

    @app.get("/who")
    async def who() -> str:
        return repr(session.get("user_id"))

    Session(app)
    return app


def interface(app: Quart) -> ServerSideSessionInterface:
    found = app.session_interface
    assert isinstance(found, ServerSideSessionInterface)
    return found


async def test_a_session_stored_before_is_indexed_at_its_next_read(tmp_path: Path) -> None:
    before = make_app(tmp_path)
    browser = Browser(before)
    await browser.text("/login/alice")
    await interface(before).close()

    after = make_app(tmp_path, SESSION_USER_KEY="user_id")
    async with after.app_context():
        assert await interface(after).user_sessions("alice") == []
    cookie = browser.cookie
    browser = Browser(after)
    browser.cookie = cookie
    assert await browser.text("/who") == "'alice'"  # a read: indexed now
    async with after.app_context():
        assert len(await interface(after).user_sessions("alice")) == 1
        assert await interface(after).revoke_user("alice") == 1
    assert await browser.text("/who") == "None"
    await interface(after).close()
