"""The stored envelope: what a record holds, in one place.

A record's payload is either a session — the user's data plus its metadata
under ``META_KEY``, serialized — or a marker. These pure functions build and
read both, and work out what a request changed and how it merges onto a newer
record; the engine composes them with the serializer and the store.

Markers: records that stand at a key in place of a session.

``regenerate()`` and logout do not simply delete the old record: a request that
loaded the session earlier may still be running, and a plain delete would let
it act on a session that has moved or ended. Instead the old record is replaced,
by compare-and-set, with a marker:

* *moved* (``regenerate()``, legacy migration): names the new record, so that
  a later logout through the old id also ends the new session, and an
  in-flight save lands its changes there. It holds the record's *name* (see
  ``ids.record_name``), never the new id: with hashed ids no stored value
  holds an id a client could present;
* *ended* (logout, hijack protection): a write that loaded the session before
  it ended can no longer win a compare-and-set against it.

A marker is never a session: loading one gives a fresh session. Marker payloads
start with a NUL byte, which no serializer of ours (JSON, msgpack maps, pickle)
ever writes first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .lifetimes import CREATED, LIFETIME

#: How every marker payload starts.
PREFIX = b"\x00quart-session:"
_MOVED = PREFIX + b"moved:"
#: The payload of a session that was logged out (or deleted for hijacking).
ENDED = PREFIX + b"ended"


def moved(name: str) -> bytes:
    """The payload of a session that moved to the record named *name*."""
    return _MOVED + name.encode()


def is_marker(payload: bytes) -> bool:
    """Whether *payload* is a marker rather than a session."""
    return payload[:1] == b"\x00" and payload.startswith(PREFIX)


def moved_to(payload: bytes) -> str | None:
    """The record name a *moved* marker holds, or None for any other payload."""
    if not payload.startswith(_MOVED):
        return None
    return payload[len(_MOVED) :].decode("ascii", "replace")


# -- the envelope: what a stored session holds besides the user's data ---------

#: The reserved top-level key of a stored session: its metadata, kept beside
#: the data so that ``session.clear()`` cannot remove it.
META_KEY = "_qs"
#: In the metadata: whether the session is permanent.
PERMANENT = "p"
#: In the metadata: the client address the session is pinned to.
ADDRESS = "a"
# Also in the metadata: when it was created or last regenerated (CREATED),
# and its own lifetime (LIFETIME): see ``lifetimes``; its user (OWNER): see
# ``users``.
OWNER = "o"


def meta(
    permanent: bool,
    address: str | None,
    created: float | None = None,
    lifetime: int | None = None,
    owner: str | None = None,
) -> dict[str, Any]:
    """A session's metadata (*owner*: ``users.OWNER``)."""
    found: dict[str, Any] = {PERMANENT: permanent}
    if address is not None:
        found[ADDRESS] = address
    if created is not None:
        found[CREATED] = created
    if lifetime is not None:
        found[LIFETIME] = lifetime
    if owner is not None:
        found[OWNER] = owner
    return found


def wrap(data: Mapping[str, Any], session_meta: dict[str, Any]) -> dict[str, Any]:
    """What a serializer is handed: the data plus the metadata (a new dict)."""
    return {**data, META_KEY: session_meta}


def unwrap(stored: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(data, metadata or None if it has none) of what a serializer read;
    ValueError if it is not a session."""
    if not isinstance(stored, dict):
        raise ValueError(f"session data is a {type(stored).__name__}, not a dict")
    found = stored.pop(META_KEY, None)
    return stored, found if isinstance(found, dict) else None


def permanent_of(session_meta: Mapping[str, Any], default: bool) -> bool:
    return bool(session_meta.get(PERMANENT, default))


def address_of(session_meta: Mapping[str, Any]) -> str | None:
    """The pin, if it is text (anything else was not written by us)."""
    value = session_meta.get(ADDRESS)
    return value if isinstance(value, str) else None


# -- what a request changed, and merging it onto a newer record -----------------

Changes = tuple[dict[str, Any], frozenset[str]]
"""The top-level keys a request set (or changed in place), and those it deleted."""


def diff(base: Mapping[str, Any], mine: Mapping[str, Any]) -> Changes:
    """What turned *base* (as loaded) into *mine* (as the request leaves it)."""
    updated = {k: v for k, v in mine.items() if k not in base or not same(base[k], v)}
    return updated, frozenset(base.keys() - mine.keys())


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down. Python holds 0 == False
    and 1 == 1.0, but a request that turned one into the other changed the
    value: a merge must not drop that change."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(value, b[key]) for key, value in a.items())
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(map(same, a, b))
    return bool(a == b)


def merge(changes: Changes, theirs: Mapping[str, Any]) -> dict[str, Any]:
    """*changes* applied on top of a newer record's data *theirs*: on the same
    key this request, the later writer, wins (the whole value of that key)."""
    updated, deleted = changes
    merged = {k: v for k, v in theirs.items() if k not in deleted}
    merged.update(updated)
    return merged
