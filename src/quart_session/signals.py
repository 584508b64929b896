"""Signals applications connect to for logging and metrics (blinker, like Quart's).

Every signal is sent with the application as sender; receivers are plain
functions called synchronously, so keep them quick.
"""

from __future__ import annotations

import logging

from blinker import Namespace

logger = logging.getLogger("quart_session")
_signals = Namespace()

#: A new session was stored for the first time. Keyword: ``sid``.
session_created = _signals.signal("quart-session.created")
#: A session's changes were written. Keyword: ``sid`` (None when another
#: request's ``regenerate()`` had moved the session: only that request's
#: client knows the new id, the store only a hash of it).
session_saved = _signals.signal("quart-session.saved")
#: Another request saved the session first; this request's changes were
#: merged on top. Keywords: ``sid``, ``attempt``.
session_conflict_merged = _signals.signal("quart-session.conflict-merged")
#: A session record was deleted (``clear()``/logout). Keyword: ``sid``.
session_deleted = _signals.signal("quart-session.deleted")
#: ``regenerate()`` moved a session to a new id. Keywords: ``old_sid``, ``sid``.
session_regenerated = _signals.signal("quart-session.regenerated")
#: A session was used from another client address and was deleted.
#: Keywords: ``sid``, ``expected``, ``actual``.
session_hijack_detected = _signals.signal("quart-session.hijack-detected")
#: A session reached the end of its absolute lifetime
#: (SESSION_ABSOLUTE_LIFETIME) and was deleted; the request that found it
#: continues with a fresh session. Keywords: ``sid`` (None when found by a
#: save, which knows the record but not always the id), ``reason``
#: (``"absolute"``).
session_expired = _signals.signal("quart-session.expired")
#: A session was ended through the per-user API (SESSION_USER_KEY).
#: Keywords: ``handle``, ``user`` (text), ``reason`` (``"user"``: revoke() or
#: revoke_user(); ``"max_per_user"``: SESSION_MAX_PER_USER at a login).
session_revoked = _signals.signal("quart-session.revoked")
#: The store failed. Keyword: ``error`` (a SessionBackendError).
session_store_error = _signals.signal("quart-session.store-error")


def hijack_detected(sender: object, sid: str, expected: str, actual: str | None) -> None:
    """Log and signal that session *sid*, pinned to *expected*, came from *actual*."""
    logger.warning("Session used from %s, pinned to %s: deleted", actual, expected)
    if session_hijack_detected.receivers:
        session_hijack_detected.send(sender, sid=sid, expected=expected, actual=actual)
