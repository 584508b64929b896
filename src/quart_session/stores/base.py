"""The store contract: what every backend implements.

A store moves opaque bytes by key. It never sees a request, a cookie or a Python
dict. Each record carries a *version*, an opaque token the store hands out on
load and checks on save, so that two requests writing one session can be told
apart (compare-and-set). Every record has a time to live; stores without native
expiry check it on read and offer ``purge_expired``.

What a store can do beyond the abstract methods is declared by flags on its
class (``can_take``, ``can_count``, ``can_list``, ``needs_purge``), never discovered by
calling and catching: the callers (engine, CLI) read the flags.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

Version = int | str | bytes
"""An opaque token that changes on every successful save of a record."""


@dataclass(frozen=True, slots=True)
class Record:
    """A stored session as the store sees it."""

    payload: bytes
    version: Version
    #: Whether the load that returned it reset its time to live (sliding
    #: expiry): the cookie's Expires is re-sent only then. Not part of equality.
    refreshed: bool = field(default=False, compare=False)
    #: When the record expires (seconds since the epoch), as a load read it
    #: with the record: reported by the stores whose refresh is a write (the
    #: engine decides from it whether a refresh is due); None elsewhere. Not
    #: part of equality.
    expires_at: float | None = field(default=None, compare=False)


class Outcome(enum.Enum):
    """Why a compare-and-set did not write."""

    CONFLICT = "conflict"
    """The record exists but was saved by someone else since it was loaded."""
    GONE = "gone"
    """The record was deleted (or expired) since it was loaded."""


SaveResult = Version | Outcome
"""A successful save returns the record's new version, otherwise the `Outcome`."""


class Store(ABC):
    """Base class of every session store.

    Each method is one round trip to the backend where the backend allows it.
    Implementations raise their driver's exceptions; the session interface turns
    them into :class:`~quart_session.SessionBackendError` and applies the timeout.
    """

    #: Human-readable name used in errors and logs, e.g. ``"redis"``.
    name: str = "store"
    #: Whether ``take`` is offered: stores without it end sessions by
    #: compare-and-set, one round trip more.
    can_take: bool = False
    #: Whether ``count`` is offered (``quart session count``); memcached cannot
    #: list its keys.
    can_count: bool = False
    #: Whether ``keys`` is offered (``quart session rotate`` rewrites every
    #: record); memcached cannot list its keys.
    can_list: bool = False
    #: Whether expired records stay in the backend until ``purge_expired``
    #: removes them (no native expiry, or one that lags): ``quart session
    #: cleanup`` runs only for these.
    needs_purge: bool = False
    #: Whether resetting a record's time to live rides along with a read at no
    #: cost (Redis GETEX, memcached mg T, a dict). Where a refresh is a write
    #: (SQL, MongoDB, DynamoDB, files), loads report ``Record.expires_at``
    #: instead, and the engine calls ``expire`` only once a refresh is due
    #: (``SESSION_REFRESH_AFTER``).
    refresh_is_free: bool = False
    #: Seconds a call must have left to be started. A store whose driver must
    #: not be cancelled before its own timeout ends (aiosqlite: a call cut
    #: short while SQLite waits for a lock leaves the connection stuck) gives
    #: that timeout and a margin; a request with less of its
    #: SESSION_BACKEND_TIMEOUT left fails the call at once instead.
    needs_at_least: float = 0.0

    def offer_what(self, inner: Store) -> None:
        """Offer what *inner* offers (name and capabilities): for a store that
        wraps another and passes every call on."""
        self.name = inner.name
        self.can_take = inner.can_take
        self.can_count = inner.can_count
        self.can_list = inner.can_list
        self.needs_purge = inner.needs_purge
        self.refresh_is_free = inner.refresh_is_free
        self.needs_at_least = inner.needs_at_least

    @property
    def address(self) -> str:
        """Where the store lives (no credentials), for error messages."""
        return "local"

    @abstractmethod
    async def load(self, key: str, refresh_ttl: int | None = None) -> Record | None:
        """Return the live record at *key*, or None if absent or expired.

        With *refresh_ttl* the record's time to live is reset to that many
        seconds (sliding expiry) without rewriting its payload or version, in
        the same round trip where ``refresh_is_free`` (otherwise as a second
        statement), and ``Record.refreshed`` is true. Stores whose refresh is
        not free report ``Record.expires_at``.
        """

    @abstractmethod
    async def expire(self, key: str, ttl: int) -> bool:
        """Reset the time to live of the live record at *key* to *ttl* seconds
        from now, payload and version untouched (a session with a lifetime of
        its own, or near its absolute end). False if there is no live record.
        """

    @abstractmethod
    async def save(
        self, key: str, payload: bytes, ttl: int, expected: Version | None
    ) -> SaveResult:
        """Write *payload* at *key* with a time to live of *ttl* seconds.

        *expected* is the version seen at load time, or None to create a record
        that must not exist yet. Returns the new version on success;
        ``Outcome.CONFLICT`` if the record exists with another version (or
        exists at all when creating); ``Outcome.GONE`` if *expected* was given
        and the record no longer exists. A failed save changes nothing.
        """

    @abstractmethod
    async def delete(self, key: str) -> None:
        """Remove the record at *key*; absent records are not an error."""

    async def expires_at(self, key: str) -> float | None:
        """When the live record at *key* expires (seconds since the epoch), or
        None if there is none: for listing a user's sessions, never on a
        request's path. Stores whose loads report ``Record.expires_at`` need
        not override it."""
        record = await self.load(key)
        return None if record is None else record.expires_at

    async def take(self, key: str) -> Record | None:
        """Remove the record at *key* and return what it held (None if nothing
        live), as one atomic step: no save can land between the read and the
        removal. Offered where ``can_take`` is true."""
        raise NotImplementedError(f"the {self.name} store cannot take a record")

    async def purge_expired(self) -> int:
        """Remove expired records; returns how many. Stores whose backend
        expires records itself (``needs_purge`` false) have nothing to do."""
        return 0

    async def count(self, prefix: str) -> int:
        """How many live records the store holds whose key starts with *prefix*.
        Offered where ``can_count`` is true."""
        raise NotImplementedError(f"the {self.name} store cannot count its sessions")

    def keys(self, prefix: str) -> AsyncIterator[str]:
        """The keys of the records whose key starts with *prefix*, page by page:
        every live one, and maybe expired ones not removed yet (a load finds
        nothing there). A key may come twice if it is written meanwhile;
        records created during the listing may be missed. Offered where
        ``can_list`` is true."""
        raise NotImplementedError(f"the {self.name} store cannot list its sessions")

    async def ping(self) -> None:
        """Prove the store is reachable (one cheap round trip)."""
        await self.load("__quart_session_ping__")

    async def close(self) -> None:
        """Release connections. Clients handed in by the application stay open."""
        return
