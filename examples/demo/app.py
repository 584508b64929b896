"""The quart-session demo: log in, fill a cart, watch a websocket counter, see
and end your sessions on other devices, log out.

Every page shows what lives in the session; the data itself lives in the store
(the filesystem by default; any store through the SESSION_TYPE / SESSION_URI
environment variables).
"""

from __future__ import annotations

import os
import secrets
from datetime import UTC, datetime
from typing import Any

from quart import (
    Quart,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
    websocket,
)
from quart.typing import ResponseReturnValue

from quart_session import ServerSideSession, ServerSideSessionInterface, Session, no_session

#: What the shop sells: product id -> (name, price in cents).
PRODUCTS = {
    "tea": ("Green tea", 450),
    "coffee": ("Coffee beans", 1290),
    "cookies": ("Oat cookies", 320),
}
#: The password every demo user shares; shown on the login form.
DEMO_PASSWORD = "demo"
#: Environment variables the demo takes as configuration.
ENV_KEYS = ("SESSION_TYPE", "SESSION_URI", "SESSION_FILE_DIR")


def create_app(**config: Any) -> Quart:
    """The demo app; *config* overrides the environment and the defaults."""
    app = Quart(__name__)
    app.config["SECRET_KEY"] = os.environ.get("SECRET_KEY") or secrets.token_hex(32)
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config.update({key: os.environ[key] for key in ENV_KEYS if os.environ.get(key)})
    app.config.update(config)
    # Sessions are indexed by the user they hold, for the devices page
    # (memcached may evict an index like any item: no devices page there).
    if app.config.get("SESSION_TYPE") != "memcached":
        app.config.setdefault("SESSION_USER_KEY", "user")
    Session(app)
    _add_pages(app)
    _add_devices(app)
    _add_counter(app)
    _add_health(app)
    return app


def _add_health(app: Quart) -> None:
    # For load balancers: whatever cookie comes with it, no store call.
    @app.get("/health")
    @no_session
    async def health() -> dict[str, str]:
        return {"status": "ok"}


def _interface() -> ServerSideSessionInterface:
    interface = current_app.session_interface
    assert isinstance(interface, ServerSideSessionInterface)
    return interface


def _session() -> ServerSideSession:
    """The session object itself (``quart.session`` is a proxy to it)."""
    current = session._get_current_object()  # type: ignore[attr-defined]
    assert isinstance(current, ServerSideSession)
    return current


def _cart_lines() -> tuple[list[dict[str, Any]], int]:
    cart: dict[str, int] = session.get("cart", {})
    lines: list[dict[str, Any]] = [
        {"id": pid, "name": PRODUCTS[pid][0], "quantity": n, "cents": n * PRODUCTS[pid][1]}
        for pid, n in cart.items()
        if pid in PRODUCTS
    ]
    return lines, sum(line["cents"] for line in lines)


def _add_pages(app: Quart) -> None:
    @app.context_processor
    async def navigation() -> dict[str, Any]:
        cart: dict[str, int] = session.get("cart", {})
        return {"user": session.get("user"), "cart_items": sum(cart.values())}

    @app.get("/")
    async def home() -> str:
        return await render_template("home.html", password=DEMO_PASSWORD)

    @app.post("/login")
    async def login() -> ResponseReturnValue:
        form = await request.form
        name = form.get("username", "").strip()
        if not name or len(name) > 40 or form.get("password") != DEMO_PASSWORD:
            error = "Unknown user or wrong password."
            page = await render_template("home.html", password=DEMO_PASSWORD, error=error)
            return page, 401
        # A new id at login: an id planted or seen before login is now worthless.
        await _interface().regenerate(_session())
        session["user"] = name
        return redirect(url_for("home"), 303)

    @app.post("/logout")
    async def logout() -> ResponseReturnValue:
        session.clear()  # deletes the stored record and the cookie
        return redirect(url_for("home"), 303)

    @app.get("/cart")
    async def cart() -> str:
        lines, total = _cart_lines()
        return await render_template("cart.html", products=PRODUCTS, lines=lines, total=total)

    @app.post("/cart/add")
    async def add_to_cart() -> ResponseReturnValue:
        product = (await request.form).get("product", "")
        if product not in PRODUCTS:
            return "No such product", 400
        # A change inside a nested value is saved without ``session.modified``.
        cart = session.setdefault("cart", {})
        cart[product] = cart.get(product, 0) + 1
        return redirect(url_for("cart"), 303)

    @app.post("/cart/empty")
    async def empty_cart() -> ResponseReturnValue:
        session.pop("cart", None)
        return redirect(url_for("cart"), 303)

    @app.get("/session")
    async def session_page() -> str:
        current = _session()
        interface = _interface()
        settings = interface.settings
        expires = None
        if current.sid is not None and current.permanent:
            expires = datetime.now(UTC) + app.permanent_session_lifetime
        return await render_template(
            "session.html",
            short_id=None if current.sid is None else current.sid[:8] + "…",
            expires=expires,
            sliding=settings.refresh_each_request,
            permanent=current.permanent,
            store=interface.store,
            settings=settings,
            data=current.snapshot(),
        )


def _add_devices(app: Quart) -> None:
    # Forms here are as safe from cross-site posts as the others: the session
    # cookie is SameSite=Lax, so another site's form arrives without it.
    @app.get("/devices")
    async def devices() -> ResponseReturnValue:
        user = session.get("user")
        if user is None:
            return redirect(url_for("home"), 303)
        interface = _interface()
        if interface.settings.user_key is None:
            return await render_template("devices.html", sessions=None)
        sessions = await interface.user_sessions(user)
        return await render_template("devices.html", sessions=sessions)

    @app.post("/devices/revoke")
    async def revoke_device() -> ResponseReturnValue:
        user = session.get("user")
        handle = (await request.form).get("handle", "")
        interface = _interface()
        # Only a session of the user asking: a handle alone is no permission.
        if user is not None and interface.settings.user_key is not None:
            await interface.revoke(handle, user=user)
        return redirect(url_for("devices"), 303)

    @app.post("/devices/revoke-others")
    async def revoke_other_devices() -> ResponseReturnValue:
        user = session.get("user")
        interface = _interface()
        if user is not None and interface.settings.user_key is not None:
            await interface.revoke_user(user, keep_current=True)
        return redirect(url_for("devices"), 303)


def _add_counter(app: Quart) -> None:
    @app.get("/counter")
    async def counter() -> str:
        # A websocket cannot set a cookie: make sure the session exists first.
        session.setdefault("counter", 0)
        return await render_template("counter.html")

    @app.websocket("/ws/counter")
    async def counter_socket() -> None:
        await websocket.accept()
        if _session().new:
            await websocket.close(1008, "no session: open /counter over HTTP first")
            return
        await websocket.send(str(session.get("counter", 0)))
        while True:
            if await websocket.receive() != "increment":
                continue
            session["counter"] = session.get("counter", 0) + 1
            # Saved now, not only when the connection ends: a reload sees it.
            await _interface().save_now(session)
            await websocket.send(str(session["counter"]))
