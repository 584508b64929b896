"""Markers: records that stand at a key in place of a session.

``regenerate()`` and logout do not simply delete the old record: a request that
loaded the session earlier may still be running, and a plain delete would let
it act on a session that has moved or ended. Instead the old record is replaced,
by compare-and-set, with a marker:

* *moved* (``regenerate()``, legacy migration): names the new id, so that a
  later logout through the old id also ends the new session, and an in-flight
  save lands its changes there;
* *ended* (logout, hijack protection): a write that loaded the session before
  it ended can no longer win a compare-and-set against it.

A marker is never a session: loading one gives a fresh session. Marker payloads
start with a NUL byte, which no serializer of ours (JSON, msgpack maps, pickle)
ever writes first.
"""

from __future__ import annotations

#: How every marker payload starts.
PREFIX = b"\x00quart-session:"
_MOVED = PREFIX + b"moved:"
#: The payload of a session that was logged out (or deleted for hijacking).
ENDED = PREFIX + b"ended"


def moved(sid: str) -> bytes:
    """The payload of a session that moved to *sid*."""
    return _MOVED + sid.encode()


def is_marker(payload: bytes) -> bool:
    """Whether *payload* is a marker rather than a session."""
    return payload[:1] == b"\x00" and payload.startswith(PREFIX)


def moved_to(payload: bytes) -> str | None:
    """The id a *moved* marker names, or None for any other payload."""
    if not payload.startswith(_MOVED):
        return None
    return payload[len(_MOVED) :].decode("ascii", "replace")
