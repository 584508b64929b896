"""A small app showing server-side sessions: a visit counter."""

from __future__ import annotations

import os
import secrets

from quart import Quart, session

from quart_session import Session


def create_app(**config: object) -> Quart:
    app = Quart(__name__)
    app.config["SECRET_KEY"] = os.environ.get("SECRET_KEY") or secrets.token_hex(32)
    app.config["SESSION_TYPE"] = os.environ.get("SESSION_TYPE", "filesystem")
    if os.environ.get("SESSION_URI"):
        app.config["SESSION_URI"] = os.environ["SESSION_URI"]
    app.config.update(config)
    Session(app)

    @app.get("/")
    async def index() -> str:
        session["visits"] = session.get("visits", 0) + 1
        return f"<h1>quart-session demo</h1><p>Visits in this session: {session['visits']}</p>"

    return app
