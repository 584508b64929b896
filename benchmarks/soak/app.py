"""The soak app: a shop-like session workload the load generator drives.

Each Hypercorn worker builds it from one JSON config (``SOAK_APP_CONFIG``): a
target's app config plus the runner's own keys. ``SOAK_REDIS`` describes a
Sentinel or Cluster set-up, turned into a redis-py client inside the worker
(client objects cannot cross processes). See notes in ``soakcontract.md``:

* ``POST /login?user=U``, ``POST /incr``, ``POST /cart?item=X``, ``GET /read``,
  ``POST /logout``, ``POST /revoke-others``, ``POST /big?bytes=N``,
  ``GET /health`` (no session), websocket ``/ws`` ("incr" -> the new counter).
"""

from __future__ import annotations

import json
import os
from typing import Any

from quart import Quart, Response, request, session, websocket

from quart_session import Session, SessionBackendError, no_session

CONFIG_VARIABLE = "SOAK_APP_CONFIG"
PID_HEADER = "X-Worker-Pid"
#: The largest /big a client may ask for: past SESSION_MAX_SIZE, bounded.
MAX_BIG = 8 * 1024 * 1024
#: The websocket's answers to "incr" other than the new value.
NOT_LOGGED_IN = "not logged in"
UNAVAILABLE = "store unavailable"


def create_app() -> Quart:
    """The soak app configured from ``$SOAK_APP_CONFIG`` (the Hypercorn factory)."""
    config = json.loads(os.environ[CONFIG_VARIABLE])
    if not isinstance(config, dict):
        raise TypeError(f"{CONFIG_VARIABLE} must hold a JSON object")
    return build_soak_app(config)


def build_soak_app(config: dict[str, Any]) -> Quart:
    app = Quart(__name__)
    redis_spec = config.get("SOAK_REDIS")
    app.config.update({key: value for key, value in config.items() if key != "SOAK_REDIS"})
    app.config.setdefault("SECRET_KEY", "soak")
    if redis_spec is not None:
        _install_redis_client(app, redis_spec)

    @app.after_request
    async def name_the_worker(response: Response) -> Response:
        response.headers[PID_HEADER] = str(os.getpid())
        return response

    _add_views(app)
    Session(app)
    return app


def _install_redis_client(app: Quart, spec: dict[str, Any]) -> None:
    """SESSION_REDIS from a Sentinel or Cluster description, made in the
    worker's event loop before the store is built (before_serving runs before
    the store's while_serving start)."""
    clients: list[Any] = []

    @app.before_serving
    async def make_client() -> None:
        client = redis_client(spec, float(app.config.get("SESSION_BACKEND_TIMEOUT", 2.0)))
        clients.append(client)
        app.config["SESSION_REDIS"] = client

    @app.after_serving
    async def close_client() -> None:
        for client in clients:
            await client.aclose()


def redis_client(spec: dict[str, Any], timeout: float) -> Any:
    kind = spec.get("kind")
    if kind == "sentinel":
        from redis.asyncio.sentinel import Sentinel

        sentinels = [(str(host), int(port)) for host, port in spec["sentinels"]]
        sentinel = Sentinel(sentinels, socket_connect_timeout=timeout)  # type: ignore[no-untyped-call]
        return sentinel.master_for(str(spec["service"]), socket_connect_timeout=timeout)
    if kind == "cluster":
        from redis.asyncio.cluster import ClusterNode, RedisCluster

        nodes = [ClusterNode(str(host), int(port)) for host, port in spec["nodes"]]
        return RedisCluster(startup_nodes=nodes, socket_connect_timeout=timeout)
    raise ValueError(f"SOAK_REDIS kind must be 'sentinel' or 'cluster', not {kind!r}")


def _not_logged_in() -> tuple[dict[str, str], int]:
    return {"error": "not logged in"}, 401


def _add_views(app: Quart) -> None:
    @app.post("/login")
    async def login() -> dict[str, Any]:
        user = request.args.get("user", "anonymous")
        await app.session_interface.regenerate(session)  # type: ignore[attr-defined]
        session.pop("big", None)
        session.update(user_id=user, counter=0, cart=[])
        return {"user": user}

    @app.post("/incr")
    async def incr() -> Any:
        if session.get("user_id") is None:
            return _not_logged_in()
        session["counter"] = int(session.get("counter") or 0) + 1
        return {"counter": session["counter"]}

    @app.post("/cart")
    async def cart() -> Any:
        if session.get("user_id") is None:
            return _not_logged_in()
        items = list(session.get("cart") or [])
        items.append(request.args.get("item", "thing"))
        session["cart"] = items
        return {"cart_len": len(items)}

    @app.get("/read")
    async def read() -> dict[str, Any]:
        return {
            "user": session.get("user_id"),
            "counter": session.get("counter"),
            "cart": session.get("cart"),
        }

    @app.post("/logout")
    async def logout() -> dict[str, Any]:
        session.clear()
        return {"user": None}

    @app.post("/revoke-others")
    async def revoke_others() -> Any:
        user = session.get("user_id")
        if user is None:
            return _not_logged_in()
        if app.config.get("SESSION_USER_KEY") is None:
            return {"revoked": 0, "supported": False}
        interface: Any = app.session_interface
        return {"revoked": await interface.revoke_user(user, keep_current=True)}

    @app.post("/big")
    async def big() -> dict[str, int]:
        size = min(max(int(request.args.get("bytes", "0")), 0), MAX_BIG)
        session["big"] = "x" * size
        return {"bytes": size}

    @app.get("/health")
    @no_session
    async def health() -> dict[str, bool]:
        return {"ok": True}

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept()
        interface: Any = app.session_interface
        while True:
            message = await websocket.receive()
            if message != "incr":
                await websocket.send("unknown")
                continue
            await websocket.send(await _ws_increment(interface))


async def _ws_increment(interface: Any) -> str:
    """One websocket increment: the new value once stored (the client counts
    it as acknowledged); words, never digits, otherwise: NOT_LOGGED_IN without
    a user, UNAVAILABLE when the store failed."""
    try:
        if session.get("user_id") is None:
            return NOT_LOGGED_IN
        session["counter"] = int(session.get("counter") or 0) + 1
        await interface.save_now(session)
    except SessionBackendError:
        return UNAVAILABLE
    return str(session["counter"])
