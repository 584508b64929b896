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
