"""A websocket handler cancelled in the middle of saving (the client went away)
still finishes the save: Quart cancels handlers with a plain Task.cancel()."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from quart import session, websocket

from quart_session.interface import ServerSideSessionInterface
from quart_session.stores.base import SaveResult, Version

from .suites.behaviour import Browser, CountingStore, build_app

pytestmark = pytest.mark.anyio


class CancelDuringSave(CountingStore):
    """Cancels the websocket handler's task the moment a save starts."""

    handler: asyncio.Task[object] | None = None

    async def save(
        self, key: str, payload: bytes, ttl: int, expected: Version | None
    ) -> SaveResult:
        if self.handler is not None:
            self.handler.cancel()
            self.handler = None
        await asyncio.sleep(0.01)  # the save takes a moment, as over a network
        return await super().save(key, payload, ttl, expected)


async def test_cancellation_during_the_save_does_not_lose_the_change(tmp_path: Path) -> None:
    app = build_app({"SESSION_TYPE": "filesystem", "SESSION_FILE_DIR": str(tmp_path)}, tmp_path)

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept()
        store.handler = asyncio.current_task()
        session["value"] = "from-websocket"
        await websocket.send("set")

    interface = app.session_interface
    assert isinstance(interface, ServerSideSessionInterface)
    store = CancelDuringSave(interface.store)
    interface.engine.store = store

    browser = Browser(app)
    await browser.text("/set/value/from-http")
    async with browser.websocket("/ws") as connection:
        assert await connection.receive() == "set"
    await asyncio.sleep(0.1)
    assert await browser.text("/get/value") == "'from-websocket'"
