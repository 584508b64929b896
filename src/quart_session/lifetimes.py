"""How long a session lives: idle, absolute and per-session lifetimes, and
when a read is due to refresh a store's expiry. Pure functions; the engine
applies them.

A session's time to live, whenever one is set (create, save, refresh), is its
own lifetime (``session.lifetime``) or the configured one
(``PERMANENT_SESSION_LIFETIME``), cut short by its absolute end
(``SESSION_ABSOLUTE_LIFETIME`` after it was created or last regenerated), so
that neither the store's expiry nor the cookie's Expires ever reaches past
that end.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

#: In a record's metadata: when the session was created or last regenerated
#: (seconds since the epoch, to the millisecond): where its absolute lifetime
#: counts from.
CREATED = "c"
#: In a record's metadata: the session's own lifetime in seconds (absent: the
#: configured one).
LIFETIME = "l"


def duration(value: Any) -> float | None:
    """*value* in seconds, if it is a ``timedelta`` or a number (not a bool);
    None for anything else. How every lifetime setting is given."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def lifetime_seconds(value: Any) -> int | None:
    """``session.lifetime`` as whole seconds (fractions rounded up), or None
    for the configured lifetime; ValueError for anything else."""
    if value is None:
        return None
    seconds = duration(value)
    if seconds is None:
        raise ValueError(
            f"session.lifetime must be None, a timedelta or a number of seconds, not {value!r}"
        )
    if not seconds > 0 or math.isinf(seconds):  # also refuses NaN
        raise ValueError(f"session.lifetime must be positive and finite, not {value!r}")
    return math.ceil(seconds)


def seconds_of(value: Any) -> float | None:
    """A number of seconds the metadata holds, or None if it holds something
    else (not written by us)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def whole_seconds(value: Any) -> int | None:
    """:func:`seconds_of`, in whole seconds."""
    seconds = seconds_of(value)
    return None if seconds is None else int(seconds)


def stamp(now: float) -> float:
    """The creation stamp of a session created at *now*: to the millisecond,
    never later (its absolute end never later than its lifetime allows)."""
    return math.floor(now * 1000) / 1000


@dataclass(frozen=True, slots=True)
class Lifetimes:
    """The configured lifetimes, in seconds."""

    #: PERMANENT_SESSION_LIFETIME: the idle timeout with sliding expiry.
    idle: int
    #: SESSION_ABSOLUTE_LIFETIME, or None.
    absolute: int | None
    #: The latest expiry (seconds since the epoch) the store and a cookie
    #: date can hold.
    latest: int

    def ttl(self, meta: Mapping[str, Any], now: float) -> int | None:
        """Seconds session *meta* may live from *now*; None once less than a
        second of its absolute lifetime is left (it has ended)."""
        own = meta.get(LIFETIME)
        if own is None and self.absolute is None:
            return self.idle  # the common case (checked against `latest` when configured)
        own = whole_seconds(own)
        ttl = own if own is not None and own > 0 else self.idle
        ttl = min(ttl, int(self.latest - now))
        if self.absolute is not None:
            created = seconds_of(meta.get(CREATED))
            if created is not None:
                left = math.floor(created + self.absolute - now)
                if left < 1:
                    return None
                ttl = min(ttl, left)
        return ttl

    def refresh_after(self, ttl: int, configured: int) -> int:
        """How long after a paid refresh the next is due, for a session with
        *ttl*: SESSION_REFRESH_AFTER (*configured*, chosen for the configured
        lifetime), or at most a tenth of a shorter TTL of its own (as the
        default is), else an active user of a 3-second session under a
        60-second SESSION_REFRESH_AFTER would be logged out."""
        return configured if ttl >= self.idle else min(configured, ttl // 10)


def refresh_due(remaining: float, ttl: int, refresh_after: int) -> bool:
    """Whether a read must reset an expiry *remaining* seconds away to *ttl*,
    where a refresh is a write: once *refresh_after* seconds have passed since
    it was set, or when it reaches past *ttl* (saved under a longer lifetime,
    shortened since; one second of slack for rounding)."""
    return remaining <= ttl - refresh_after or remaining > ttl + 1
