"""The one tiny app every variant runs, built from a variant spec.

This module runs in both virtualenvs (ours and Quart-Session 3.0.0's): it
imports ``quart_session`` only inside the kinds that use it, and nothing from
``src/`` or ``tests/``.

Views: ``/read`` reads one key, ``/write`` sets one key, ``/plain`` does not
touch the session, ``/fill`` stores the realistic session (used to create the
sessions the timed requests carry), plus Quart's static route.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from quart import Quart, Response, session
from quart.sessions import SecureCookieSession, SessionInterface, SessionMixin
from quart.wrappers import BaseRequestWebsocket

STATIC_FOLDER = Path(__file__).parent / "static"
FLOOR_KEY = "floor:session"

#: What a logged-in shop user's session typically holds.
REALISTIC_SESSION: dict[str, Any] = {
    "user_id": 482113,
    "csrf_token": "9c1d2f6a7b8e4c3d9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f",
    "cart": [
        {"sku": "BEANS-1KG", "name": "Espresso beans 1 kg", "qty": 2, "price_cents": 2450},
        {"sku": "MUG-BLUE", "name": "Mug, blue", "qty": 1, "price_cents": 1200},
        {"sku": "FILTER-100", "name": "Paper filters x100", "qty": 3, "price_cents": 450},
        {"sku": "GRINDER-M", "name": "Hand grinder", "qty": 1, "price_cents": 5900},
        {"sku": "SCALE-01", "name": "Kitchen scale", "qty": 1, "price_cents": 2300},
    ],
    "last_login": datetime(2025, 5, 17, 9, 30, 12, 345678, tzinfo=UTC),
    # Quart's flash() keeps (category, message) tuples here.
    "_flashes": [("message", "Welcome back!"), ("info", "Your cart was saved.")],
}

#: Every write stores a new value, so no implementation can skip it as unchanged.
_counter = itertools.count()


def build_app(spec: dict[str, Any]) -> Quart:
    """The app of one variant: *spec* has ``kind`` and ``config`` (app.config)."""
    app = Quart(__name__, static_folder=str(STATIC_FOLDER))
    app.config.update(spec.get("config", {}))
    kind = spec["kind"]
    if kind == "none":
        _no_session_views(app)
    elif kind == "floor":
        _floor_views(app, spec["redis_url"])
    else:
        if kind in ("ours", "qs3"):
            _install_session(app, kind, spec.get("glide_port"))
        elif kind == "minimal":
            app.session_interface = MinimalSessionInterface()
        _session_views(app)
    return app


class MinimalSessionInterface(SessionInterface):
    """What any session layer costs in Quart, as a reference: a session object
    per request and ``Vary: Cookie`` once a view has read it; nothing stored."""

    async def open_session(self, app: Quart, request: BaseRequestWebsocket) -> SessionMixin:
        return SecureCookieSession()

    async def save_session(  # type: ignore[override]
        self, app: Quart, session: SecureCookieSession, response: Response
    ) -> None:
        if session.accessed:
            response.vary.add("Cookie")


def _no_session_views(app: Quart) -> None:
    async def ok() -> str:
        return "ok"

    for rule in ("/read", "/write", "/plain", "/fill"):
        app.add_url_rule(rule, rule, ok)


def _floor_views(app: Quart, redis_url: str) -> None:
    """No session: ``/read`` is one bare GET of a session-sized value."""
    from redis.asyncio import Redis

    from quart_session.serializers import JSONSerializer

    holder: dict[str, Redis] = {}

    @app.before_serving
    async def connect() -> None:
        client = Redis.from_url(redis_url)
        # The value our Redis store would hold: header + JSON payload.
        await client.set(FLOOR_KEY, b"qs4:" + b"0" * 16 + JSONSerializer().dumps(REALISTIC_SESSION))
        holder["client"] = client
        app.extensions["bench_count"] = [(client, ("get",))]

    @app.after_serving
    async def disconnect() -> None:
        await holder["client"].aclose()

    async def read() -> str:
        await holder["client"].get(FLOOR_KEY)
        return "ok"

    async def ok() -> str:
        return "ok"

    app.add_url_rule("/read", "/read", read)
    for rule in ("/write", "/plain", "/fill"):
        app.add_url_rule(rule, rule, ok)


def _install_session(app: Quart, kind: str, glide_port: int | None) -> None:
    import quart_session

    version = getattr(quart_session, "__version__", "4")
    if (kind == "qs3") != (version == "3.0.0"):
        raise RuntimeError(f"variant {kind!r} imported quart_session {version}")
    if glide_port is not None:
        from glide import GlideClient, GlideClientConfiguration, NodeAddress

        @app.before_serving
        async def connect_glide() -> None:
            config = GlideClientConfiguration([NodeAddress("127.0.0.1", glide_port)])
            app.config["SESSION_REDIS"] = await GlideClient.create(config)

        @app.after_serving
        async def close_glide() -> None:
            await app.config["SESSION_REDIS"].close()

    quart_session.Session(app)


def _session_views(app: Quart) -> None:
    async def read() -> str:
        session.get("user_id")
        return "ok"

    async def write() -> str:
        session["counter"] = next(_counter)
        return "ok"

    async def plain() -> str:
        return "ok"

    async def fill() -> str:
        session.update(REALISTIC_SESSION)
        return "ok"

    for rule, view in (("/read", read), ("/write", write), ("/plain", plain), ("/fill", fill)):
        app.add_url_rule(rule, rule, view)
