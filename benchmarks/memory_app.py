"""The three-view app the single-feature micro-benchmarks time (hashed ids,
id header): the memory store, so the store costs almost nothing and the
feature's own cost shows."""

from __future__ import annotations

from typing import Any

from quart import Quart, session


def memory_app(**config: Any) -> Quart:
    """``/fill`` stores a user, ``/read`` reads it, ``/write`` counts."""
    from quart_session import Session

    app = Quart(__name__)
    app.config.update(SECRET_KEY="bench", SESSION_TYPE="memory", **config)

    @app.get("/read")
    async def read() -> str:
        return str(session.get("user"))

    @app.get("/write")
    async def write() -> str:
        session["n"] = session.get("n", 0) + 1
        return "ok"

    @app.get("/fill")
    async def fill() -> str:
        session["user"] = "alice"
        return "ok"

    Session(app)
    return app
