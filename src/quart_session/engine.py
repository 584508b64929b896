"""SessionEngine: everything done with a session that is not HTTP.

Load by id, create under a fresh id, save with compare-and-set and per-key
merge, end (logout wins), regenerate — through one store-call policy
(timeout, errors, signals). The Quart adapter (``interface.py``) uses it per
request; the command line, tests and your own scripts use it directly::

    engine = app.session_interface.engine
    stored = await engine.load(sid)          # StoredSession or None
    await engine.end(sid)                    # log that session out

A session's record is stored under a *name* derived from its id (a hash of
it, with ``SESSION_HASH_IDS``): the engine addresses records by name, since a
moved marker names the new record and not the id, and takes ids only at its
public edges.

It knows nothing of requests, cookies or Quart.
"""

from __future__ import annotations

import enum
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio

from . import records, signals
from .calls import StoreCalls, send
from .compat import legacy_meta
from .config import Settings, latest_deadline
from .errors import SessionBackendError, SessionConfigError, SessionConflictError, SessionDataError
from .ids import IdCodec, record_name
from .lifetimes import CREATED, Lifetimes, refresh_due, seconds_of, stamp
from .locks import SessionTurns
from .records import OWNER
from .serializers import Serializer, dumps_bytes
from .stores import build_store
from .stores.base import Outcome, Record, Store, Version
from .stores.sealed import SealedStore
from .user_index import UserSessions
from .users import NotAUser, owner_of

logger = logging.getLogger("quart_session")

#: How often a save retries after losing a compare-and-set to another request
#: (the backoff below usually ends it sooner, at SESSION_BACKEND_TIMEOUT).
MAX_SAVE_ATTEMPTS = 64
#: Seconds of the first retry pause across processes, and the longest pause.
BASE_BACKOFF = 0.002
MAX_BACKOFF = 0.1
#: How many moved markers a save or logout follows (regenerate() twice while
#: one request runs); past that the session counts as gone.
MAX_MOVES = 3
#: Attempts to find an unused id; a collision of 256-bit ids does not happen,
#: so a second failure means the store is broken.
MAX_CREATE_ATTEMPTS = 3
#: How many sessions with a TTL of their own this process remembers, so that
#: a store refreshing for free refreshes to it in the read itself (about 100
#: bytes each).
TTL_HINTS = 10_000


@dataclass(frozen=True, slots=True)
class Basis:
    """The record a request's changes apply to: the session as it loaded (or
    last saved) it."""

    #: The session id; None once a save followed a ``regenerate()`` made
    #: elsewhere (the marker it left names the new record, not the new id).
    sid: str | None
    #: The name of the record (its store key without the prefix).
    name: str
    #: The store's version of the record (the compare-and-set token).
    version: Version
    #: The record's bytes: what the request's changes are worked out against.
    payload: bytes


@dataclass(slots=True)
class StoredSession:
    """A session as its record holds it."""

    #: The session id. None only in what :meth:`SessionEngine.save` returns
    #: for a session that another request moved to a new id meanwhile
    #: (``Written.MOVED``): its record is known by name, the id only to the
    #: client that request answered.
    sid: str | None
    #: The name of its record: the store key without ``SESSION_KEY_PREFIX``.
    name: str
    #: The store's version of the record (the compare-and-set token).
    version: Version
    #: The record's bytes: comparing a fresh encoding with them shows whether
    #: anything changed, nested or not.
    payload: bytes
    data: dict[str, Any]
    #: Whether the session is permanent, and its pinned address.
    meta: dict[str, Any]
    #: Whether loading it reset its expiry (the cookie's Expires follows).
    refreshed: bool = False
    #: When it expires (seconds since the epoch) as of the moment it was
    #: loaded or saved: its own or the configured lifetime from then, cut
    #: short by its absolute end, never past it (a permanent cookie's
    #: Expires). None where not worked out.
    expires_at: float | None = None
    #: Loaded without what this configuration keeps in the metadata (the
    #: creation stamp of SESSION_ABSOLUTE_LIFETIME, the user of
    #: SESSION_USER_KEY): stored before it was set. The session must be saved
    #: once (the stamp is in ``meta`` already; the user is indexed then).
    stamped: bool = False

    @property
    def permanent(self) -> bool:
        return bool(self.meta.get(records.PERMANENT, True))

    @property
    def address(self) -> str | None:
        return records.address_of(self.meta)


class Written(enum.Enum):
    """What became of a save."""

    SAVED = enum.auto()
    #: Saved in the record ``regenerate()`` moved the session to meanwhile.
    MOVED = enum.auto()
    #: The session was ended (logout, expiry) meanwhile: nothing written.
    GONE = enum.auto()


class SessionEngine:
    """Sessions in a store: see the module docstring.

    *settings* come from :meth:`Settings.from_app`; the store is built from
    them on first use (or given, e.g. a store shared by two apps). *sender*
    is the sender of the signals (the app).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        store: Store | None = None,
        sender: object = None,
        build: Callable[[Settings], Store] = build_store,
    ) -> None:
        self._build = build
        self._store = store
        self.sender = sender
        self._serializer: Serializer | None = None
        self._turns = SessionTurns()
        #: Record name -> the TTL its session last had, for sessions whose TTL
        #: is not the configured lifetime (see load_named).
        self._ttl_hints: dict[str, int] = {}
        #: The per-user index (SESSION_USER_KEY), or None.
        self.users: UserSessions | None = None
        self.configure(settings)
        if store is not None:
            self._store = self._sealed(store)

    def configure(self, settings: Settings) -> None:
        """Use *settings* from now on (the store, once built, stays)."""
        self.settings = settings
        self.calls = StoreCalls(settings.backend_timeout, self.sender)
        self.ids = IdCodec(settings.id_length, settings.secret_keys or None)
        self.lifetimes = Lifetimes(
            settings.lifetime, settings.absolute_lifetime, latest_deadline(settings.store_type)
        )
        self._serializer = self._serializer or settings.serializer
        self.users = None if settings.user_key is None else UserSessions(self, settings)

    # -- the store ------------------------------------------------------------------
    @property
    def has_store(self) -> bool:
        return self._store is not None

    @property
    def store(self) -> Store:
        """The store, built from the settings on first use."""
        if self._store is None:
            settings = self.settings
            try:
                store = self._build(settings)
            except SessionConfigError:
                raise
            except Exception as error:
                raise SessionBackendError(
                    str(settings.store_type), "(not created)", f"could not be set up: {error!r}"
                ) from error
            store = self._sealed(store)
            limit = getattr(store, "max_payload", None)
            if limit is not None and settings.max_size > limit:
                raise SessionConfigError(
                    f"SESSION_MAX_SIZE ({settings.max_size} bytes) is over what the "
                    f"{store.name} store can hold ({limit} bytes); lower it"
                )
            self._store = store
        return self._store

    @store.setter
    def store(self, store: Store) -> None:
        """Use *store* from now on (e.g. one wrapped to count its calls), as
        it is: wrapping the current store must not encrypt twice."""
        self._store = store

    def _sealed(self, store: Store) -> Store:
        """*store* encrypting every record, when SESSION_ENCRYPTION_KEYS is set."""
        keys = self.settings.encryption_keys
        if not keys or isinstance(store, SealedStore):
            return store
        return SealedStore(store, keys)

    async def start(self) -> None:
        """Build the store and prove it is reachable."""
        store = self.store
        try:
            await self.calls.run(store, store.ping)
        except SessionBackendError as error:
            # A store that refuses its configuration (a filesystem folder others
            # can write to) is a configuration error, not an outage.
            if isinstance(error.__cause__, SessionConfigError):
                raise error.__cause__ from None
            raise

    async def close(self) -> None:
        if self._store is not None:
            store, self._store = self._store, None
            await store.close()

    @property
    def serializer(self) -> Serializer:
        assert self._serializer is not None
        return self._serializer

    @serializer.setter
    def serializer(self, value: Serializer) -> None:
        self._serializer = value

    def name_of(self, sid: str) -> str:
        """The name of session *sid*'s record (a hash of the id with
        ``SESSION_HASH_IDS``, else the id)."""
        return record_name(sid, self.settings.hash_ids)

    def key_for(self, sid: str) -> str:
        """The store key of session *sid*."""
        return self._key(self.name_of(sid))

    def _key(self, name: str) -> str:
        return self.settings.key_prefix + name

    # -- records ----------------------------------------------------------------------
    def encode(self, data: Mapping[str, Any], meta: dict[str, Any]) -> bytes:
        """*data* and *meta* as a record's payload; SessionDataError if that
        cannot be stored or is over SESSION_MAX_SIZE (no store ever decides:
        memcached would drop the old record on a value too large for it)."""
        payload = dumps_bytes(self.serializer, records.wrap(data, meta))
        limit = self.settings.max_size
        if len(payload) > limit:
            raise SessionDataError(
                f"the session is {len(payload)} bytes once encoded, over "
                f"SESSION_MAX_SIZE ({limit} bytes): not saved"
            )
        return payload

    def decode(self, payload: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
        """(data, meta) of a record's payload; ValueError if it is not a session."""
        if records.is_marker(payload):
            raise ValueError("the session has ended or moved to a new id")
        try:
            stored = self.serializer.loads(payload)
        except Exception as error:
            raise ValueError(f"undecodable session data: {error!r}") from error
        data, meta = records.unwrap(stored)
        if meta is None:
            meta = legacy_meta(data, self.settings.permanent)
        return data, meta

    def ttl_of(self, payload: bytes) -> int | None:
        """The seconds to live a write of *payload* gives its record now: a
        session's own or the configured lifetime, cut short by its absolute
        end (None once that is over); the configured lifetime for a marker or
        a record that is not a session."""
        try:
            meta = self.decode(payload)[1]
        except ValueError:
            return self.settings.lifetime
        return self.lifetimes.ttl(meta, time.time())

    # -- reading --------------------------------------------------------------------
    async def load(self, sid: str, *, refresh: bool = False) -> StoredSession | None:
        """Session *sid*, or None if there is none (absent, expired, ended,
        moved, corrupt: a corrupt record is logged). With *refresh* its expiry
        is moved forward in the same round trip, where that is free or
        SESSION_REFRESH_AFTER has passed since the last time."""
        return await self.load_named(self.name_of(sid), sid, refresh=refresh)

    async def load_named(
        self, name: str, sid: str | None = None, *, refresh: bool = False
    ) -> StoredSession | None:
        """:meth:`load` of the record named *name* (session *sid*, if known)."""
        store, settings, key = self.store, self.settings, self._key(name)
        # Where a refresh rides along with the read, it refreshes to the TTL
        # the session had when this process last saw it, else the configured
        # lifetime (most sessions have no other): the TTL it needs is known
        # only once the record is read. Elsewhere the read reports the
        # expiry, and a refresh waits until due.
        free = store.refresh_is_free
        hints = self._ttl_hints
        refresh_ttl = hints.get(name, settings.lifetime) if refresh and free else None
        record = await self.calls.run(store, store.load, key, refresh_ttl)
        if record is None or records.is_marker(record.payload):
            return None
        try:
            data, meta = self.decode(record.payload)
        except ValueError as error:
            logger.warning("Starting a fresh session: stored session is corrupt (%s)", error)
            return None
        now = time.time()
        stamped = settings.absolute_lifetime is not None and (seconds_of(meta.get(CREATED)) is None)
        if stamped:
            # Stored before the absolute lifetime was switched on: it counts from now.
            meta = {**meta, CREATED: stamp(now)}
        if self.users is not None and OWNER not in meta and self._unindexed(data):
            stamped = True  # stored before SESSION_USER_KEY: indexed by saving it once
        ttl = self.lifetimes.ttl(meta, now)
        if ttl is None:
            await self._expire(name, record.version, sid, meta.get(OWNER))
            return None
        refreshed = record.refreshed
        if refresh:
            if free:
                # Its own lifetime, or near its absolute end, and not hinted.
                due = ttl != refresh_ttl
                self._hint(name, ttl)
            else:
                expires_at = record.expires_at
                after = self.lifetimes.refresh_after(ttl, settings.refresh_after)
                due = expires_at is None or refresh_due(expires_at - now, ttl, after)
            if due:
                if not await self.calls.run(store, store.expire, key, ttl):
                    return None  # ended (logout) since the read
                refreshed = True
        return StoredSession(
            sid, name, record.version, record.payload, data, meta, refreshed, now + ttl, stamped
        )

    def _saved_with(self, name: str, ttl: int) -> None:
        """Record *name* was just written with *ttl*: where reads refresh for
        free, the next read refreshes to it."""
        if self.store.refresh_is_free:
            self._hint(name, ttl)

    def _hint(self, name: str, ttl: int) -> None:
        """Remember *ttl* for record *name* if it is not the configured lifetime."""
        hints = self._ttl_hints
        if ttl == self.settings.lifetime:
            hints.pop(name, None)
            return
        if len(hints) >= TTL_HINTS and name not in hints:
            del hints[next(iter(hints))]  # the oldest: a bound, not a cache policy
        hints[name] = ttl

    async def _expire(
        self, name: str, version: Version | None, sid: str | None, owner: object
    ) -> None:
        """End the session in record *name*: its absolute lifetime is over."""
        await self._end(name, version, 0)
        send(signals.session_expired, self.sender, sid=sid, reason="absolute")
        if self.users is not None and isinstance(owner, str):
            await self.users.remove(owner, name)

    async def load_record(self, sid: str, refresh: int | None = None) -> Record | None:
        """The raw record of session *sid* (a marker included), or None; with
        *refresh*, its expiry reset to that many seconds in the same round trip."""
        return await self._load_record(self.name_of(sid), refresh)

    async def _load_record(self, name: str, refresh: int | None = None) -> Record | None:
        store = self.store
        return await self.calls.run(store, store.load, self._key(name), refresh)

    async def count(self) -> int:
        """Live records under this app's key prefix; NotImplementedError where
        the store cannot count."""
        store = self.store
        return await self.calls.run(store, store.count, self.settings.key_prefix)

    async def purge_expired(self) -> int:
        """Remove expired records where the store does not do it itself."""
        store = self.store
        return await self.calls.run(store, store.purge_expired)

    # -- creating -------------------------------------------------------------------
    async def create(self, data: dict[str, Any], meta: dict[str, Any]) -> StoredSession:
        """Store a new session under a fresh id (*data* becomes its data)."""
        meta, ttl = self._born(self._owned(data, meta))
        payload = self.encode(data, meta)
        owner = meta.get(OWNER)
        sid, version = await self._create_record(payload, ttl, owner)
        send(signals.session_created, self.sender, sid=sid)
        name = self.name_of(sid)
        self._saved_with(name, ttl)
        await self._reindex(None, None, meta, name, _announced(owner, name))
        expires_at = meta[CREATED] + ttl
        return StoredSession(sid, name, version, payload, data, meta, expires_at=expires_at)

    def _born(self, meta: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """*meta* of a session created (or regenerated) now, and its time to live."""
        created = stamp(time.time())
        meta = {**meta, CREATED: created}
        # Counted from the stamp itself: a fresh session has its whole lifetime.
        ttl = self.lifetimes.ttl(meta, created)
        assert ttl is not None  # SESSION_ABSOLUTE_LIFETIME is at least a second
        return meta, ttl

    async def _create_record(
        self, payload: bytes, ttl: int, owner: object = None
    ) -> tuple[str, Version]:
        """A fresh id and the version of its new record. With an *owner*, the
        record is listed in that user's index before it is written."""
        store = self.store
        for _ in range(MAX_CREATE_ATTEMPTS):
            sid = self.ids.new()
            await self._announce(owner, self.name_of(sid))
            result = await self.calls.run(store, store.save, self.key_for(sid), payload, ttl, None)
            if not isinstance(result, Outcome):
                return sid, result
        raise SessionBackendError(
            store.name, store.address, "the store reports every new session id as taken"
        )

    # -- saving ---------------------------------------------------------------------
    async def save(
        self, loaded: Basis | StoredSession, data: dict[str, Any], meta: dict[str, Any]
    ) -> tuple[Written, StoredSession | None]:
        """Store *data* and *meta* over *loaded*, the session as this request
        loaded (or last saved) it: compare-and-set, and on conflict this
        request's changes merged onto the newer record.

        Returns what became of it and the session as stored now (its data the
        merged data after a merge; None if nothing was written: unchanged, or
        gone). Saves of one session in this process take
        turns instead of colliding in the store; across processes, retries back
        off exponentially within ``SESSION_BACKEND_TIMEOUT``.
        """
        before = meta.get(OWNER)  # as loaded
        meta = self._owned(data, meta)
        payload = self.encode(data, meta)
        if payload == loaded.payload:
            return Written.SAVED, None
        owner = meta.get(OWNER)
        announced = None
        if owner != before:  # a login: listed before it is written
            await self._announce(owner, loaded.name)
            announced = _announced(owner, loaded.name)
        # The wait for the turn, the store calls and the back-off between
        # retries all spend from the request's budget.
        with self.calls.budget() as give_up_at:
            async with self._turns.take(loaded.name, give_up_at - time.monotonic()) as turn:
                written, stored = await self._save_in_turn(
                    loaded, data, meta, payload, turn.latest, give_up_at
                )
                turn.latest = None
                if stored is not None and written is Written.SAVED and turn.released is not None:
                    # Another save of this session waits: hand it what we stored.
                    turn.latest = Record(stored.payload, stored.version)
        if stored is not None:
            await self._reindex(before, loaded.name, stored.meta, stored.name, announced)
        elif announced is not None and self.users is not None:
            await self.users.remove(*announced)  # gone meanwhile: nothing to list
        return written, stored

    async def _save_in_turn(
        self,
        loaded: Basis | StoredSession,
        data: dict[str, Any],
        meta: dict[str, Any],
        payload: bytes,
        latest: Record | None,
        give_up_at: float,
    ) -> tuple[Written, StoredSession | None]:
        store = self.store
        sid, name, expected = loaded.sid, loaded.name, loaded.version
        # Saved by this process since this request loaded it: merge onto that
        # now rather than lose a compare-and-set against it first.
        current = latest if latest is not None and latest.version != expected else None
        changes: tuple[records.Changes, records.Changes] | None = None
        merged, merged_meta = data, meta  # until a merge makes others
        moves = 0
        for attempt in range(1, MAX_SAVE_ATTEMPTS + 1):
            if current is not None:
                if changes is None:
                    changes = self._changes(loaded.payload, data, meta)
                merged, merged_meta = self._merged(changes, current.payload)
                merged_meta = self._owned(merged, merged_meta)
                payload = self.encode(merged, merged_meta)
                expected = current.version
                send(signals.session_conflict_merged, self.sender, sid=sid, attempt=attempt)
            now = time.time()
            ttl = self.lifetimes.ttl(merged_meta, now)
            if ttl is None:  # its absolute lifetime ended while the request ran
                await self._expire(name, expected, sid, meta.get(OWNER))
                return Written.GONE, None
            result = await self.calls.run(
                store, store.save, self._key(name), payload, ttl, expected
            )
            if result is Outcome.GONE:
                return Written.GONE, None
            if not isinstance(result, Outcome):
                send(signals.session_saved, self.sender, sid=sid)
                self._saved_with(name, ttl)
                written = Written.MOVED if name != loaded.name else Written.SAVED
                stored = StoredSession(
                    sid, name, result, payload, merged, merged_meta, expires_at=now + ttl
                )
                return written, stored
            current = await self._load_record(name)
            target = None if current is None else records.moved_to(current.payload)
            if target is not None and moves < MAX_MOVES:
                # regenerate() moved the session while this request ran: the
                # change still belongs to it, in its new record (whose id only
                # the client of the moving request knows).
                moves += 1
                sid, name, current = None, target, await self._load_record(target)
            if current is None or records.is_marker(current.payload):
                return Written.GONE, None
            if attempt > 1:
                # Other processes write this session too: back off exponentially
                # (full jitter), but never past the time a store call may take.
                pause = random.uniform(0, min(MAX_BACKOFF, BASE_BACKOFF * 2 ** (attempt - 2)))
                if time.monotonic() + pause > give_up_at:
                    break
                await anyio.sleep(pause)
        raise SessionConflictError(
            f"session changes not saved: {attempt} compare-and-set attempts within "
            f"{self.settings.backend_timeout:g}s all lost to concurrent writes of the same session"
        )

    # -- whose session it is (SESSION_USER_KEY) -------------------------------------
    def _owned(self, data: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
        """*meta* naming the user *data* belongs to (SESSION_USER_KEY)."""
        key = self.settings.user_key
        if key is None:
            return meta
        try:
            owner = owner_of(data, key)
        except NotAUser as error:
            raise SessionDataError(str(error)) from None
        if owner == meta.get(OWNER):
            return meta
        meta = {k: v for k, v in meta.items() if k != OWNER}
        if owner is not None:
            meta[OWNER] = owner
        return meta

    def _unindexed(self, data: dict[str, Any]) -> bool:
        """Whether *data* names a user its metadata does not (yet)."""
        key = self.settings.user_key
        try:
            return key is not None and owner_of(data, key) is not None
        except NotAUser:
            return False

    async def _announce(self, owner: object, name: str) -> None:
        """List record *name* in *owner*'s index before it is written: an
        entry whose record never came is pruned when read, while a record
        written first and never listed (the process died in between) would be
        missed by revoke_user."""
        if self.users is not None and isinstance(owner, str):
            await self.users.add(owner, name)

    async def _reindex(
        self,
        before: object,
        old_name: str | None,
        meta: dict[str, Any],
        name: str,
        announced: tuple[str, str] | None = None,
    ) -> None:
        """Keep the users' indexes true after record *name* (formerly
        *old_name*, owned by *before*) was written with *meta*, *announced*
        (user, record name) having been listed before the write."""
        users = self.users
        if users is None:
            return
        after = meta.get(OWNER)
        if after == before and name == old_name:
            return  # the common write: same user, same record
        now = _announced(after, name)
        if announced is not None and announced != now:
            await users.remove(*announced)  # a merge or a move made it another
        if isinstance(before, str) and old_name is not None and (before, old_name) != now:
            await users.remove(before, old_name)
        if now is not None:
            if now != announced:
                await users.add(*now)
            await users.cap(*now)

    def _parts_of(self, payload: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
        """(data, meta) of a record to merge with (empty if it is corrupt)."""
        try:
            return self.decode(payload)
        except ValueError:
            return {}, {}

    def _changes(
        self, loaded: bytes, data: dict[str, Any], meta: dict[str, Any]
    ) -> tuple[records.Changes, records.Changes]:
        """What a request that loaded the record *loaded* changed in its data
        and in its metadata (e.g. ``session.lifetime``): both merge by key."""
        base_data, base_meta = self._parts_of(loaded)
        return records.diff(base_data, data), records.diff(base_meta, meta)

    def _merged(
        self, changes: tuple[records.Changes, records.Changes], newer: bytes
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """*changes* applied on top of the newer record *newer*."""
        their_data, their_meta = self._parts_of(newer)
        return records.merge(changes[0], their_data), records.merge(changes[1], their_meta)

    # -- ending and moving ----------------------------------------------------------
    async def end(
        self, sid: str, version: Version | None = None, *, owner: str | None = None
    ) -> None:
        """End session *sid* for good (logout; revocation from a script).

        A ``regenerate()`` racing this must not move the data away unseen: if
        it already did, the marker it left names the new record, which is
        ended too. *version* is the one the caller loaded, if any.
        """
        await self.end_named(self.name_of(sid), version, sid=sid, owner=owner)

    async def end_named(
        self,
        name: str,
        version: Version | None = None,
        *,
        sid: str | None = None,
        owner: str | None = None,
    ) -> bool:
        """:meth:`end` of the record named *name* (session *sid*, if known;
        its user *owner*, if the caller knows it). Whether a session was there
        to end, where the store showed it (False: nothing, or not known)."""
        ended = await self._end(name, version, 0)
        send(signals.session_deleted, self.sender, sid=sid)
        if self.users is not None:
            if owner is None and ended is not None:
                owner = self._owner_in(ended)
            if owner is not None:
                await self.users.remove(owner, name)
        return ended is not None

    def _owner_in(self, payload: bytes) -> str | None:
        owner = self._parts_of(payload)[1].get(OWNER)
        return owner if isinstance(owner, str) else None

    async def _end(self, name: str, version: Version | None, hops: int) -> bytes | None:
        """End record *name*; the session payload it held, where seen."""
        store, key = self.store, self._key(name)
        if store.can_take:
            # One atomic step: whatever the key held is gone, and if it was a
            # moved marker, the session it names is ended too.
            taken = await self.calls.run(store, store.take, key)
            if taken is None:
                return None
            target = records.moved_to(taken.payload)
            if target is not None and hops < MAX_MOVES:
                return await self._end(target, None, hops + 1)
            return None if records.is_marker(taken.payload) else taken.payload
        # Otherwise: replace the record by an ended marker with compare-and-set
        # (a racing move then fails, or has left its marker here), then delete.
        ended: bytes | None = None
        for _ in range(MAX_SAVE_ATTEMPTS):
            if version is None:
                current = await self._load_record(name)
                if current is None:
                    return ended
                version = current.version
                if current.payload == records.ENDED:
                    break
                if not records.is_marker(current.payload):
                    ended = current.payload
            result = await self.calls.run(
                store, store.save, key, records.ENDED, self.settings.lifetime, version
            )
            if result is Outcome.GONE:
                return None
            if not isinstance(result, Outcome):
                break
            current = await self._load_record(name)  # written since it was loaded: by whom?
            if current is None:
                return None
            target = records.moved_to(current.payload)
            if target is not None and hops < MAX_MOVES:
                ended = await self._end(target, None, hops + 1) or ended
            if current.payload == records.ENDED:
                break
            if not records.is_marker(current.payload):
                ended = current.payload
            version = current.version
        await self.calls.run(store, store.delete, key)
        return ended

    async def regenerate(
        self,
        loaded: Basis | StoredSession,
        data: dict[str, Any],
        meta: dict[str, Any],
        *,
        leave_marker: bool = True,
    ) -> StoredSession | None:
        """Move the session *loaded* (with *data* and *meta* as the caller has
        them now) to a fresh id; the old id stops working.

        None, with nothing left behind, if the session was ended or moved
        meanwhile: logout wins. Without *leave_marker* the old key is deleted
        rather than left naming the new id (for callers that know no request
        can still act on the old record).

        The absolute lifetime counts from now (a login); the session's own
        lifetime stays.
        """
        store, lifetime = self.store, self.settings.lifetime
        from_key = self._key(loaded.name)
        before = meta.get(OWNER)  # as loaded
        meta, ttl = self._born(self._owned(data, meta))
        payload = self.encode(data, meta)
        sid, version = await self._create_record(payload, ttl, meta.get(OWNER))
        name, key = self.name_of(sid), self.key_for(sid)
        merged, merged_meta = data, meta  # until a merge makes others
        expected = loaded.version
        changes: tuple[records.Changes, records.Changes] | None = None
        for _ in range(MAX_SAVE_ATTEMPTS):
            result = await self.calls.run(
                store, store.save, from_key, records.moved(name), lifetime, expected
            )
            if not isinstance(result, Outcome):
                if not leave_marker:
                    await self.calls.run(store, store.delete, from_key)
                send(signals.session_created, self.sender, sid=sid)
                send(signals.session_regenerated, self.sender, old_sid=loaded.sid, sid=sid)
                self._saved_with(name, ttl)
                announced = _announced(meta.get(OWNER), name)
                await self._reindex(before, loaded.name, merged_meta, name, announced)
                expires_at = meta[CREATED] + ttl
                return StoredSession(
                    sid, name, version, payload, merged, merged_meta, expires_at=expires_at
                )
            current = None
            if result is Outcome.CONFLICT:
                current = await self.calls.run(store, store.load, from_key)
            if current is None or records.is_marker(current.payload):
                await self.calls.run(store, store.delete, key)
                return None
            # Another request saved the old record meanwhile: carry its changes over.
            if changes is None:
                changes = self._changes(loaded.payload, data, meta)
            merged, merged_meta = self._merged(changes, current.payload)
            merged_meta = self._owned(merged, merged_meta)
            # Their lifetime may differ; the new stamp is this move's own.
            ttl = self.lifetimes.ttl(merged_meta, meta[CREATED]) or ttl
            payload = self.encode(merged, merged_meta)
            rewritten = await self.calls.run(store, store.save, key, payload, ttl, version)
            if isinstance(rewritten, Outcome):  # nobody else knows the new id yet
                raise SessionBackendError(
                    store.name, store.address, "a session under a fresh id changed unexpectedly"
                )
            version, expected = rewritten, current.version
        await self.calls.run(store, store.delete, key)
        raise SessionConflictError(
            f"gave up regenerating after {MAX_SAVE_ATTEMPTS} conflicting concurrent writes"
        )


def _announced(owner: object, name: str) -> tuple[str, str] | None:
    """(user, record name) of a record listed in a user's index, if it has a user."""
    return (owner, name) if isinstance(owner, str) else None
