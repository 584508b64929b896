"""Applications can log and count what happens to sessions through signals."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from blinker import Signal
from quart import Quart, current_app, session

import quart_session
from quart_session import Session

from .suites.behaviour import Browser

pytestmark = pytest.mark.anyio

SIGNALS = [
    "session_created",
    "session_saved",
    "session_conflict_merged",
    "session_deleted",
    "session_regenerated",
    "session_hijack_detected",
    "session_expired",
    "session_store_error",
]


@pytest.fixture
def app(tmp_path: Path) -> Quart:
    app = Quart(__name__)
    app.config.update(
        SECRET_KEY="s",
        SESSION_TYPE="filesystem",
        SESSION_FILE_DIR=str(tmp_path / "sessions"),
        SESSION_HIJACK_PROTECTION=True,
    )

    @app.get("/set/<value>")
    async def set_(value: str) -> str:
        session["value"] = value
        return "ok"

    @app.get("/regenerate")
    async def regenerate() -> str:
        await current_app.session_interface.regenerate(session)  # type: ignore[attr-defined]
        return "ok"

    @app.get("/clear")
    async def clear() -> str:
        session.clear()
        return "ok"

    Session(app)
    return app


@pytest.fixture
def received(app: Quart) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    events: list[tuple[str, dict[str, Any]]] = []
    connected = []
    for name in SIGNALS:
        signal: Signal = getattr(quart_session, name)

        def receiver(sender: Quart, _name: str = name, **kwargs: Any) -> None:
            assert sender is app
            events.append((_name, kwargs))

        signal.connect(receiver, app)
        connected.append((signal, receiver))
    yield events
    for signal, receiver in connected:
        signal.disconnect(receiver, app)


async def test_lifecycle_signals(app: Quart, received: list[tuple[str, dict[str, Any]]]) -> None:
    browser = Browser(app, address="10.0.0.1")
    await browser.text("/set/one")
    first = browser.sid
    await browser.text("/set/two")
    await browser.text("/regenerate")
    second = browser.sid
    await browser.text("/clear")
    assert [name for name, _ in received] == [
        "session_created",
        "session_saved",
        "session_created",  # the record under the new id
        "session_regenerated",
        "session_deleted",
    ]
    assert received[0][1] == {"sid": first}
    assert received[3][1] == {"old_sid": first, "sid": second}
    assert received[4][1] == {"sid": second}


async def test_hijack_signal_names_both_addresses(
    app: Quart, received: list[tuple[str, dict[str, Any]]]
) -> None:
    owner = Browser(app, address="10.0.0.1")
    await owner.text("/set/one")
    thief = Browser(app, address="10.6.6.6")
    thief.cookie = owner.cookie
    await thief.text("/set/stolen")
    hijack = [kwargs for name, kwargs in received if name == "session_hijack_detected"]
    assert hijack == [{"sid": owner.sid, "expected": "10.0.0.1", "actual": "10.6.6.6"}]
