"""Server-side sessions for Quart."""

from __future__ import annotations

from .engine import SessionEngine, StoredSession, Written
from .errors import (
    SessionBackendError,
    SessionConfigError,
    SessionConflictError,
    SessionDataError,
    SessionNotLoadedError,
)
from .extension import Session
from .interface import ServerSideSessionInterface
from .opt_out import no_session
from .session import ServerSideSession
from .signals import (
    session_conflict_merged,
    session_created,
    session_deleted,
    session_expired,
    session_hijack_detected,
    session_regenerated,
    session_revoked,
    session_saved,
    session_store_error,
)
from .users import SessionInfo

__version__ = "4.0.0.dev0"

__all__ = [
    "ServerSideSession",
    "ServerSideSessionInterface",
    "Session",
    "SessionBackendError",
    "SessionConfigError",
    "SessionConflictError",
    "SessionDataError",
    "SessionEngine",
    "SessionInfo",
    "SessionNotLoadedError",
    "StoredSession",
    "Written",
    "no_session",
    "session_conflict_merged",
    "session_created",
    "session_deleted",
    "session_expired",
    "session_hijack_detected",
    "session_regenerated",
    "session_revoked",
    "session_saved",
    "session_store_error",
]
