"""The views the concurrency and race apps share: set, slow-set, keys,
logout and login, with the slow views' pause given by the app (the race app's
first blocks its worker, so that a race spans two processes)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from quart import Quart, current_app, session

Pause = Callable[[float], Awaitable[None]]


async def log_in() -> None:
    """What a login view does: a new id for the session, then the user in it."""
    await current_app.session_interface.regenerate(session)  # type: ignore[attr-defined]
    session["user"] = "alice"


def add_session_views(app: Quart, pause: Pause) -> None:
    @app.get("/set/<key>/<value>")
    async def set_(key: str, value: str) -> str:
        session[key] = value
        return "ok"

    @app.get("/slow-set/<key>/<value>/<float:delay>")
    async def slow_set(key: str, value: str, delay: float) -> str:
        session.get(key)  # loaded now, saved after the delay
        await pause(delay)
        session[key] = value
        return "ok"

    @app.get("/keys")
    async def keys() -> str:
        return json.dumps(dict(session.items()))

    @app.get("/logout")
    async def logout() -> str:
        session.clear()
        return "bye"

    @app.get("/login")
    async def login() -> str:
        await log_in()
        return "welcome"
