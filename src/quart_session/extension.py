"""The ``Session`` extension: wires settings, store and interface into an app."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from typing import Any, cast

from quart import Quart, current_app
from quart import session as current_session

from .answers import DEFAULT_HANDLERS
from .cli import session_cli
from .config import Settings
from .engine import SessionEngine
from .interface import ServerSideSessionInterface
from .session import ServerSideSession

logger = logging.getLogger("quart_session")


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
