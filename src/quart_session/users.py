"""Sessions per user: who a session belongs to, and each user's index of sessions.

With ``SESSION_USER_KEY`` set, a session holding that key belongs to the user
it names (its value as text). Each user with sessions has an *index record*
in the same store, beside the sessions: a map from each session's *handle* to
where its record is and what was seen at login. The index is an ordinary
record (compare-and-set, encrypted with SESSION_ENCRYPTION_KEYS like the
rest), so every store that keeps records keeps indexes too, with no schema of
its own; on Redis Cluster it lives in another slot than the sessions, so it is
written beside them rather than with them, and pruned when read: an entry
whose session is gone (expired on its own, ended elsewhere) is dropped then
and never returned.

Pure pieces here; :class:`~quart_session.engine.SessionEngine` does the I/O.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

#: Store keys of index records: this, then SESSION_KEY_PREFIX, then a hash of
#: the user. Outside SESSION_KEY_PREFIX, so that counting sessions does not
#: count indexes.
INDEX_PREFIX = "users:"
#: An index lives this long after it was last written (a login or logout of
#: that user): far past any session it lists, which are pruned when it is read.
INDEX_TTL = 10 * 365 * 86400


class NotAUser(ValueError):
    """The value under SESSION_USER_KEY is not a JSON scalar."""


def owner_of(data: Mapping[str, Any], user_key: str) -> str | None:
    """The user session *data* belongs to, as text; None if it holds none.
    NotAUser if the value is not a JSON scalar (text, number, bool)."""
    value = data.get(user_key)
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    raise NotAUser(
        f"session[{user_key!r}] (SESSION_USER_KEY) must be text, a number or a bool "
        f"to index the session under its user, not a {type(value).__name__}"
    )


def user_text(user: object) -> str:
    """A user as given to the API (``user_sessions(42)``), as the session
    holds it: compared as text."""
    if isinstance(user, str):
        return user
    if isinstance(user, bool | int | float):
        return json.dumps(user)
    raise TypeError(f"a user is text, a number or a bool, not {user!r}")


def _digest(tag: bytes, text: str) -> str:
    raw = hashlib.sha256(tag + text.encode("utf-8", "surrogatepass")).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


_USER_TAG = b"quart-session user\0"
_HANDLE_TAG = b"quart-session handle\0"
_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def index_name(user: str) -> str:
    """The name of *user*'s index record (a hash: user text never reaches a key)."""
    return _digest(_USER_TAG, user)


def handle_of(user: str, name: str) -> str:
    """The handle of the session in record *name*: which index it is in, and a
    hash of the record's name. No hash of an id, so never usable as a cookie."""
    return index_name(user) + "." + _digest(_HANDLE_TAG, name)


def index_of_handle(handle: str) -> str | None:
    """The index name a handle points into, or None for anything malformed."""
    index, dot, entry = handle.partition(".")
    if not dot or len(index) != 43 or len(entry) != 43:
        return None
    if not _ALPHABET.issuperset(index) or not _ALPHABET.issuperset(entry):
        return None
    return index


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """One of a user's live sessions, as :meth:`user_sessions` lists it."""

    #: Identifies the session for :meth:`revoke`; can never be used as a cookie.
    handle: str
    #: When the session was created or last regenerated (login), aware UTC.
    created_at: datetime
    #: When it was last used, to within SESSION_REFRESH_AFTER (a minute by
    #: default) where refreshing its expiry is a write, exactly elsewhere.
    last_seen_at: datetime
    #: When it ends if unused meanwhile, aware UTC.
    expires_at: datetime
    #: The client address seen at login (None outside a request).
    address: str | None
    #: The User-Agent seen at login.
    user_agent: str | None
    #: Whether it is the session of the request that asked.
    current: bool = False


# An index record's payload: {"user": user, "s": {handle: entry}}; an entry
# is {"n": record name, "t": when listed, "a": address, "u": user agent}.
Entries = dict[str, dict[str, Any]]


def entry(name: str, address: str | None, user_agent: str | None, now: float) -> dict[str, Any]:
    """An index entry: the record *name*, where the login came from, and when
    it was listed (*now*; its record may follow a moment later)."""
    found: dict[str, Any] = {"n": name, "t": int(now)}
    if address is not None:
        found["a"] = address
    if user_agent is not None:
        found["u"] = user_agent[:512]  # the client's text: bounded
    return found


def entries_of(stored: Any) -> Entries:
    """The entries an index record's decoded payload holds (anything not
    written by us is dropped)."""
    if not isinstance(stored, dict):
        return {}
    return {
        handle: value
        for handle, value in stored.items()
        if isinstance(handle, str) and isinstance(value, dict) and isinstance(value.get("n"), str)
    }
