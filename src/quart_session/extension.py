"""The ``Session`` extension: wires settings, store and interface into an app."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from typing import Any, cast

from quart import Quart, Response, current_app
from quart import session as current_session

from .cli import session_cli
from .config import Settings
from .engine import SessionEngine
from .errors import SessionBackendError, SessionConflictError, SessionDataError
from .interface import ServerSideSessionInterface
from .session import ServerSideSession

logger = logging.getLogger("quart_session")

#: Seconds a client is asked to wait when the store is unavailable.
RETRY_AFTER = 5


async def store_unavailable(error: SessionBackendError) -> Response:
    """Default answer to a failing store: 503 with ``Retry-After``.

    Applications replace it with ``app.register_error_handler(SessionBackendError, ...)``.
    """
    logger.error("%s", error, exc_info=error)
    return Response(
        "The session store is unavailable; please retry shortly.\n",
        status=503,
        headers={"Retry-After": str(RETRY_AFTER)},
        mimetype="text/plain",
    )


async def session_data_refused(error: SessionDataError) -> Response:
    """Default answer to session data that cannot be stored: 400.

    Such data nearly always comes from the request (text with a lone surrogate,
    input nested too deep, an upload kept in the session); the stored session
    is unchanged.
    """
    logger.warning("Session not saved: %s", error)
    return Response(
        "The session could not be saved: its data cannot be stored.\n",
        status=400,
        mimetype="text/plain",
    )


async def session_conflict(error: SessionConflictError) -> Response:
    """Default answer to a save that lost every retry to concurrent writers: 409."""
    logger.warning("%s", error)
    return Response(
        "The session was changed by too many requests at once; please retry.\n",
        status=409,
        headers={"Retry-After": "1"},
        mimetype="text/plain",
    )


#: The answer each of our errors gets unless the app registers its own handler.
DEFAULT_HANDLERS: dict[type[Exception], Any] = {
    SessionBackendError: store_unavailable,
    SessionDataError: session_data_refused,
    SessionConflictError: session_conflict,
}


class Session:
    """Server-side sessions for a Quart app: ``Session(app)`` or
    ``Session().init_app(app)``."""

    def __init__(self, app: Quart | None = None) -> None:
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Quart) -> None:
        settings = Settings.from_app(app)  # fails early on bad configuration
        interface = ServerSideSessionInterface(app, settings, SessionEngine(settings, sender=app))
        app.session_interface = interface  # type: ignore[assignment]
        app.extensions["session"] = self
        # Indexing, not setdefault: the levels must stay defaultdicts, or every
        # later lookup of another status code (404, 500) raises KeyError.
        handlers = app.error_handler_spec[None][None]
        for error, handler in DEFAULT_HANDLERS.items():
            if error not in handlers:
                app.register_error_handler(error, handler)
        app.teardown_websocket(_save_websocket_session)
        app.cli.add_command(session_cli)  # quart session cleanup|count|show|delete
        # while_serving starts after every before_serving hook, so a client the
        # app puts in app.config from one of those is what the store uses.

        @app.while_serving
        async def open_store() -> AsyncGenerator[None, None]:
            await interface.start()
            yield
            await interface.close()


async def _save_websocket_session(exc: BaseException | None) -> None:
    """Save changes made in a websocket handler that ended without Quart's
    post-processing, e.g. cancelled because the client disconnected."""
    # Through the public proxies: Quart 0.23 reorganised its context variables.
    app: Quart = cast(Any, current_app)._get_current_object()
    session = cast(Any, current_session)._get_current_object()
    interface = app.session_interface
    if isinstance(session, ServerSideSession) and isinstance(interface, ServerSideSessionInterface):
        await interface.save_session(app, session, None)
