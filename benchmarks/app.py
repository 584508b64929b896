"""The one tiny app every variant runs, built from a variant spec.

This module runs in both virtualenvs (ours and Quart-Session 3.0.0's): it
imports ``quart_session`` only inside the kinds that use it, and nothing from
``src/`` or ``tests/``.

Views: ``/read`` reads one key, ``/write`` sets one key, ``/plain`` does not
touch the session, ``/fill`` stores the realistic session (used to create the
sessions the timed requests carry); ``/read-tiny``, ``/write-tiny`` and
``/fill-tiny`` do the same with a session holding one number; ``/nosession``
is marked ``no_session`` where the library has it (Quart-Session 3.0.0 and
older revisions of ours do not: there it is a view that leaves the session
alone); plus Quart's static route.
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
#: Where a floor keeps its session-sized values: (key, which session) per read view.
FLOOR_READS = {"/read": ("floor:session", "realistic"), "/read-tiny": ("floor:tiny", "tiny")}
#: Every view, for the variants whose views all do nothing.
ROUTES = (
    *("/read", "/write", "/fill", "/read-tiny", "/write-tiny", "/fill-tiny"),
    *("/plain", "/nosession", "/login"),
)

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

#: The smallest session there is: one number (a counter, a user id).
TINY_SESSION: dict[str, Any] = {"n": 0}
SESSIONS = {"realistic": REALISTIC_SESSION, "tiny": TINY_SESSION}

#: Every write stores a new value, so no implementation can skip it as unchanged.
_counter = itertools.count()


def stored_payload(session: dict[str, Any]) -> bytes:
    """The payload our store holds for *session* (JSON, with the metadata our
    engine keeps beside the data), for the floors to read a value of that size."""
    from quart_session import records
    from quart_session.serializers import JSONSerializer

    return JSONSerializer().dumps(records.wrap(session, records.meta(True, None)))


def build_app(spec: dict[str, Any]) -> Quart:
    """The app of one variant: *spec* has ``kind`` and ``config`` (app.config)."""
    app = Quart(__name__, static_folder=str(STATIC_FOLDER))
    app.config.update(spec.get("config", {}))
    kind = spec["kind"]
    if kind == "none":
        _no_session_views(app)
    elif kind == "floor":
        _floor_views(app, spec["redis_url"])
    elif kind == "floor-sql":
        _sql_floor_views(app, spec["url"])
    else:
        if kind in ("ours", "qs3"):
            _install_session(app, kind, spec.get("glide_port"))
        elif kind == "minimal":
            app.session_interface = MinimalSessionInterface()
        _session_views(
            app, marks_no_session=kind in ("ours", "qs3"), lifetime=spec.get("session_lifetime")
        )
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


def _no_session_views(app: Quart, taken: tuple[str, ...] = ()) -> None:
    """Every view not in *taken* answers "ok" and does nothing else."""

    async def ok() -> str:
        return "ok"

    for rule in ROUTES:
        if rule not in taken:
            app.add_url_rule(rule, rule, ok)


def _floor_views(app: Quart, redis_url: str) -> None:
    """No session: ``/read`` and ``/read-tiny`` are one bare GET of a value of
    the realistic or the tiny session's size, stored as our Redis store would."""
    from redis.asyncio import Redis

    holder: dict[str, Redis] = {}

    @app.before_serving
    async def connect() -> None:
        client = Redis.from_url(redis_url)
        for key, size in FLOOR_READS.values():
            # Our Redis store's header (marker + 16 hex digits of version), then the payload.
            await client.set(key, b"qs4:" + b"0" * 16 + stored_payload(SESSIONS[size]))
        holder["client"] = client
        app.extensions["bench_count"] = [(client, ("get",))]

    @app.after_serving
    async def disconnect() -> None:
        await holder["client"].aclose()

    for rule, (key, _) in FLOOR_READS.items():

        async def read(key: str = key) -> str:
            await holder["client"].get(key)
            return "ok"

        app.add_url_rule(rule, rule, read)
    _no_session_views(app, taken=tuple(FLOOR_READS))


def _sql_floor_views(app: Quart, url: str) -> None:
    """No session: ``/read`` and ``/read-tiny`` are one bare SELECT of a row
    of the realistic or the tiny session's size, through the engine our
    SQLAlchemy store builds for *url* (so its pool and connection options)."""
    from sqlalchemy import text

    from quart_session.stores.sqlalchemy import SQLAlchemyStore

    holder: dict[str, Any] = {}

    @app.before_serving
    async def connect() -> None:
        store = SQLAlchemyStore.from_url(url)
        for key, size in FLOOR_READS.values():
            # The store writes the row (and creates its table) as it would a session's.
            await store.delete(key)
            await store.save(key, stored_payload(SESSIONS[size]), 86_400, None)
        holder["store"], holder["engine"] = store, store._engine
        holder["select"] = text(f"SELECT data, version FROM {store.table.name} WHERE id = :id")
        app.extensions["bench_engine"] = store._engine

    @app.after_serving
    async def disconnect() -> None:
        await holder["store"].close()

    for rule, (key, _) in FLOOR_READS.items():

        async def read(key: str = key) -> str:
            async with holder["engine"].connect() as conn:
                (await conn.execute(holder["select"], {"id": key})).first()
            return "ok"

        app.add_url_rule(rule, rule, read)
    _no_session_views(app, taken=tuple(FLOOR_READS))


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


def _session_views(app: Quart, marks_no_session: bool, lifetime: int | None = None) -> None:
    """The views; with *lifetime*, the sessions ``/fill`` and ``/fill-tiny``
    store have that lifetime of their own ("remember me")."""

    def remember() -> None:
        if lifetime is not None:
            session.lifetime = lifetime  # type: ignore[attr-defined]

    async def read() -> str:
        session.get("user_id")
        return "ok"

    async def write() -> str:
        session["counter"] = next(_counter)
        return "ok"

    async def fill() -> str:
        session.update(REALISTIC_SESSION)
        remember()
        return "ok"

    async def read_tiny() -> str:
        session.get("n")
        return "ok"

    async def write_tiny() -> str:
        session["n"] = next(_counter)
        return "ok"

    async def fill_tiny() -> str:
        session["n"] = next(_counter)
        remember()
        return "ok"

    async def plain() -> str:
        return "ok"

    async def login() -> str:
        # A new session that names its user (what SESSION_USER_KEY indexes).
        session["user_id"] = f"user-{next(_counter)}"
        return "ok"

    async def nosession() -> str:
        return "ok"

    views = {
        "/read": read,
        "/write": write,
        "/fill": fill,
        "/read-tiny": read_tiny,
        "/write-tiny": write_tiny,
        "/login": login,
        "/fill-tiny": fill_tiny,
        "/plain": plain,
        "/nosession": _without_session(nosession) if marks_no_session else nosession,
    }
    for rule, view in views.items():
        app.add_url_rule(rule, rule, view)


def _without_session(view: Any) -> Any:
    """*view* marked ``no_session`` where the imported quart_session has it."""
    import quart_session

    mark = getattr(quart_session, "no_session", None)
    return view if mark is None else mark(view)
