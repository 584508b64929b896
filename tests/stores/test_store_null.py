"""SESSION_TYPE "null" keeps nothing, and says so."""

from __future__ import annotations

import logging

import pytest
from quart import Quart, session

from quart_session import Session
from quart_session.stores.null import NullStore

from ..suites.behaviour import Browser

pytestmark = pytest.mark.anyio


async def test_null_store_warns_and_forgets(caplog: pytest.LogCaptureFixture) -> None:
    app = Quart(__name__)
    app.config.update(SECRET_KEY="s", SESSION_TYPE="null")

    @app.get("/set")
    async def set_() -> str:
        session["user"] = "alice"
        return repr(session.get("user"))

    @app.get("/get")
    async def get() -> str:
        return repr(session.get("user"))

    Session(app)
    browser = Browser(app)
    with caplog.at_level(logging.WARNING, "quart_session"):
        assert await browser.text("/set") == "'alice'"
    assert "never stored" in caplog.text
    assert await browser.text("/get") == "None"


async def test_null_store_has_nothing_to_load_or_expire() -> None:
    store = NullStore()
    assert await store.save("session:a", b"x", 60, None) == 0
    assert await store.load("session:a", refresh_ttl=60) is None
    assert await store.expire("session:a", 60) is False
