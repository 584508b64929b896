"""The users' indexes in the store: kept by the engine as sessions change
owner, read and acted on by ``user_sessions``, ``revoke`` and ``revoke_user``.
See ``users.py`` for what an index holds."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from . import records
from .calls import send
from .errors import SessionConflictError
from .lifetimes import CREATED, LIFETIME, seconds_of, whole_seconds
from .records import OWNER
from .serializers import dumps_bytes
from .signals import session_revoked
from .stores.base import Outcome, Version
from .users import (
    INDEX_PREFIX,
    INDEX_TTL,
    Entries,
    SessionInfo,
    entries_of,
    entry,
    handle_of,
    index_name,
    index_of_handle,
)

if TYPE_CHECKING:
    from .config import Settings
    from .engine import SessionEngine

logger = logging.getLogger("quart_session")

#: Compare-and-set attempts on one index before giving up (logins of one user
#: racing each other).
MAX_INDEX_ATTEMPTS = 32
#: Indexes this process remembers as it last wrote them, so that the next
#: change is one compare-and-set rather than a read and a write.
KNOWN_INDEXES = 10_000

ClientInfo = Callable[[], tuple[str | None, str | None]]


def _no_client() -> tuple[str | None, str | None]:
    return None, None


def _utc(moment: float) -> datetime:
    return datetime.fromtimestamp(moment, UTC)


class UserSessions:
    """Each user's index of sessions, in *engine*'s store."""

    def __init__(self, engine: SessionEngine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        #: (address, user agent) of the request being served; the Quart
        #: adapter sets it, so that an index remembers where a login came from.
        self.client_info: ClientInfo = _no_client
        #: Index name -> (entries, version) as this process last wrote it.
        self._known: dict[str, tuple[Entries, Version]] = {}
        #: Seconds an entry whose record is missing is kept: the write that
        #: listed it first may still be on its way (two store calls' time).
        self._grace = 2 * settings.backend_timeout + 1

    # -- the index record -----------------------------------------------------------
    def ttl(self) -> int:
        """The seconds to live an index gets whenever it is written."""
        return min(INDEX_TTL, int(self.engine.lifetimes.latest - time.time()))

    def _key(self, index: str) -> str:
        return INDEX_PREFIX + self.settings.key_prefix + index

    async def _read(self, index: str) -> tuple[str | None, Entries, Version | None]:
        """(user, entries, version) of index *index*; nothing there: (None, {}, None)."""
        engine = self.engine
        store = engine.store
        record = await engine.calls.run(store, store.load, self._key(index))
        if record is None:
            return None, {}, None
        try:
            stored = engine.serializer.loads(record.payload)
        except Exception as error:  # noqa: BLE001 - any serializer's own error
            logger.warning("A user's session index is unreadable, rebuilt (%r)", error)
            return None, {}, record.version
        user = stored.get("user") if isinstance(stored, dict) else None
        entries = entries_of(stored.get("s") if isinstance(stored, dict) else None)
        return user if isinstance(user, str) else None, entries, record.version

    async def _write(
        self, index: str, user: str, entries: Entries, version: Version | None
    ) -> bool:
        """Store *entries* over the index as read at *version* (None: as
        absent); False if another writer came first (read it again)."""
        engine = self.engine
        store, key = engine.store, self._key(index)
        known = self._known
        known.pop(index, None)
        if not entries:
            if version is not None:
                await engine.calls.run(store, store.delete, key)
            return True
        payload = dumps_bytes(engine.serializer, {"user": user, "s": entries})
        result = await engine.calls.run(store, store.save, key, payload, self.ttl(), version)
        if isinstance(result, Outcome):
            return False
        if len(known) >= KNOWN_INDEXES:
            del known[next(iter(known))]  # the oldest: a bound, not a cache policy
        known[index] = (entries, result)
        return True

    async def _change(self, user: str, change: Callable[[Entries], bool]) -> None:
        """Apply *change* to *user*'s entries (it says whether it changed
        anything) by compare-and-set: first on the index as this process last
        wrote it, or as absent (a user's first login: one write); read only
        when that guess loses."""
        index = index_name(user)
        guess = self._known.get(index)
        entries, version = ({}, None) if guess is None else (dict(guess[0]), guess[1])
        guessed = True
        unreadable = False
        for _ in range(MAX_INDEX_ATTEMPTS):
            if not change(entries):
                if not guessed:
                    return
            elif await self._write(index, user, entries, version):
                return
            elif not guessed and version is None:
                # Read as absent, yet there: a record no key opens (its key
                # dropped before `quart session rotate`). Its sessions are
                # unreadable too: start the index anew.
                if unreadable:
                    await self.engine.calls.run(
                        self.engine.store, self.engine.store.delete, self._key(index)
                    )
                unreadable = True
            # The guess was wrong or stale, or another writer came first.
            _, entries, version = await self._read(index)
            guessed = False
        raise SessionConflictError(
            f"a user's session index changed {MAX_INDEX_ATTEMPTS} times while being updated"
        )

    # -- kept by the engine -----------------------------------------------------------
    async def add(self, user: str, name: str) -> None:
        """Record *name* belongs to *user* (a login), or is about to."""
        address, user_agent = self.client_info()
        handle = handle_of(user, name)
        added = entry(name, address, user_agent, time.time())

        def put(entries: Entries) -> bool:
            if entries.get(handle, {}).get("n") == name:
                return False  # listed already (by the write that announced it)
            entries[handle] = added
            return True

        await self._change(user, put)

    async def cap(self, user: str, name: str) -> None:
        """Once record *name* of *user* is written: revoke the least recently
        used sessions of *user* past SESSION_MAX_PER_USER, never *name*."""
        cap = self.settings.max_per_user
        if cap is not None:
            await self._cap(user, cap, keep=handle_of(user, name))

    async def remove(self, user: str, name: str) -> None:
        """Record *name* no longer belongs to *user* (logout, ended, moved)."""
        handle = handle_of(user, name)
        await self._change(user, lambda entries: entries.pop(handle, None) is not None)

    async def _cap(self, user: str, cap: int, keep: str) -> None:
        live = await self.sessions(user)
        if len(live) <= cap:
            return
        others = sorted((info for info in live if info.handle != keep), key=_last_seen)
        for info in others[: len(live) - cap]:
            await self.revoke(info.handle, reason="max_per_user")

    # -- read and acted on ----------------------------------------------------------
    async def sessions(self, user: str, current: str | None = None) -> list[SessionInfo]:
        """*user*'s live sessions, most recently used first; *current* is the
        record name of the caller's session. Entries of sessions that ended
        on their own, or no longer belong to *user*, are pruned."""
        index = index_name(user)
        _, entries, _ = await self._read(index)
        found: list[SessionInfo] = []
        stale: list[str] = []
        for handle, held in entries.items():
            info = await self._inspect(user, handle, held, current)
            if isinstance(info, SessionInfo):
                found.append(info)
            elif info:
                stale.append(handle)
        if stale:
            await self._change(user, lambda entries: _drop(entries, stale))
        found.sort(key=_last_seen, reverse=True)
        return found

    async def _inspect(
        self, user: str, handle: str, held: dict[str, Any], current: str | None
    ) -> SessionInfo | bool:
        """The live session an entry lists, or whether the entry is stale (its
        session ended, or now someone else's). An entry listed moments ago
        whose record is not there yet is neither: its write may be under way."""
        engine = self.engine
        store, name = engine.store, held["n"]
        key = engine._key(name)
        record = await engine.calls.run(store, store.load, key)
        if record is None:
            return not self._recent(held)
        if records.is_marker(record.payload):
            return True
        meta = engine._parts_of(record.payload)[1]
        if meta.get(OWNER) != user:
            return True
        expires_at = record.expires_at
        if expires_at is None:
            expires_at = await engine.calls.run(store, store.expires_at, key)
            if expires_at is None:
                return True
        now = time.time()
        created = seconds_of(meta.get(CREATED)) or now
        own = whole_seconds(meta.get(LIFETIME))
        full = own if own is not None and own > 0 else self.settings.lifetime
        last_seen = min(now, max(created, expires_at - full))
        return SessionInfo(
            handle=handle,
            created_at=_utc(created),
            last_seen_at=_utc(last_seen),
            expires_at=_utc(expires_at),
            address=_text(held.get("a")),
            user_agent=_text(held.get("u")),
            current=name == current,
        )

    async def revoke(self, handle: str, reason: str = "user", only_of: str | None = None) -> bool:
        """End the session *handle* names (if it is one of *only_of*'s, when
        given); whether a live one was ended."""
        index = index_of_handle(handle)
        if index is None or (only_of is not None and index != index_name(only_of)):
            return False
        user, entries, _ = await self._read(index)
        held = entries.get(handle)
        if user is None or held is None:
            return False
        return await self._end(user, handle, held, reason)

    def _recent(self, held: dict[str, Any]) -> bool:
        """Whether entry *held* was listed so recently that its record may
        still be on its way."""
        listed = held.get("t")
        return isinstance(listed, int) and time.time() - listed < self._grace

    async def _end(self, user: str, handle: str, held: dict[str, Any], reason: str) -> bool:
        engine = self.engine
        name = held["n"]
        record = await engine._load_record(name)
        live = (
            record is not None
            and not records.is_marker(record.payload)
            and engine._parts_of(record.payload)[1].get(OWNER) == user
        )
        if live:
            assert record is not None
            # The version checked above: a session that changed owner since is
            # not ended for this user (stores without take end it by it).
            await engine.end_named(name, record.version, owner=user)
            send(session_revoked, engine.sender, handle=handle, user=user, reason=reason)
        elif record is not None or not self._recent(held):
            await self.remove(user, name)
        return live

    async def revoke_user(self, user: str, keep: str | None = None) -> int:
        """End every session of *user* (but the one in record *keep*); how many."""
        _, entries, _ = await self._read(index_name(user))
        ended = 0
        for handle, held in entries.items():
            if held["n"] != keep and await self._end(user, handle, held, "user"):
                ended += 1
        return ended


def _last_seen(info: SessionInfo) -> datetime:
    return info.last_seen_at


def _drop(entries: Entries, handles: list[str]) -> bool:
    dropped = [entries.pop(handle, None) for handle in handles]
    return any(item is not None for item in dropped)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
