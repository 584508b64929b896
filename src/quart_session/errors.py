"""Exceptions users catch or see."""

from __future__ import annotations


class SessionBackendError(Exception):
    """The session store failed, timed out or answered garbage.

    The driver's own exception is chained as ``__cause__``. By default the
    application answers such requests with ``503 Service Unavailable``.
    """

    def __init__(self, store: str, address: str, problem: str) -> None:
        super().__init__(f"session store {store!r} at {address}: {problem}")
        self.store = store
        self.address = address


class SessionConfigError(ValueError):
    """A ``SESSION_*`` configuration value is missing, unknown or of the wrong type."""


class SessionDataError(TypeError, ValueError):
    """The session data cannot be stored: a value of a type the serializer cannot
    write, nested too deep, or a session larger than ``SESSION_MAX_SIZE``.

    Raised while saving, in the request that made the change, before anything
    reaches the store (the stored record stays as it was). Its message names the
    top-level session key at fault, never the value. By default the request is
    answered with ``400 Bad Request``; register your own handler with
    ``app.register_error_handler(SessionDataError, ...)``.
    """


class SessionNotLoadedError(RuntimeError):
    """The session was touched in a view marked :func:`~quart_session.no_session`
    (or in a hook running for it): that request never loaded the session.
    The message names the view."""


class SessionConflictError(Exception):
    """A save lost every compare-and-set against other requests writing the
    same session, for as long as ``SESSION_BACKEND_TIMEOUT`` allowed.

    Not a store failure: the store answered every time. By default the request
    is answered with ``409 Conflict`` and ``Retry-After``.
    """
