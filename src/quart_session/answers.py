"""How a request is answered when its session cannot be saved.

Saving happens after the view, inside response processing, where Quart would
turn an exception into a 500: ``answer_with_error`` calls the app's handler for
the error there and puts its response in place of the view's. Each error has a
default handler, registered by ``Session(app)`` unless the app has its own.
"""

from __future__ import annotations

import logging
from typing import Any

from quart import Quart, Response, request

from .errors import SessionBackendError, SessionConflictError, SessionDataError

logger = logging.getLogger("quart_session")

#: What a save can fail with that the app answers (503, 400, 409 by default).
ANSWERED = (SessionBackendError, SessionDataError, SessionConflictError)


async def answer_with_error(app: Quart, response: Response, error: Exception) -> None:
    """Turn *response* into the app's answer to *error*."""
    # Looked up the way Quart does (its handle_user_exception changed
    # signature in 0.23).
    handler = app._find_error_handler(error, request.blueprints)
    if handler is None:
        raise error
    result = await app.ensure_async(handler)(error)
    answer = await app.make_response(result)  # type: ignore[arg-type]
    response.status_code = answer.status_code
    response.headers = answer.headers
    response.response = answer.response  # type: ignore[assignment]


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
