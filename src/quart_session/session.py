"""The session mapping a view sees as ``quart.session``.

It records what the interface needs to save the least possible: whether the
session was read (``Vary: Cookie``), written, cleared, or handed out a mutable
value that may have been changed in place (``session["cart"].append(x)``).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from quart.sessions import SessionMixin

from . import records
from .engine import Basis, SessionEngine, StoredSession, Written
from .errors import SessionNotLoadedError
from .lifetimes import CREATED, LIFETIME, lifetime_seconds, seconds_of, whole_seconds
from .stores.base import Version

if TYPE_CHECKING:
    from _collections_abc import dict_items, dict_keys, dict_values

logger = logging.getLogger("quart_session")


class Persisted(enum.Enum):
    """What storing a request's changes did."""

    #: A new session nobody wrote to (or cleared before it was stored).
    NOTHING = enum.auto()
    #: A loaded session nobody changed.
    UNCHANGED = enum.auto()
    CREATED = enum.auto()
    #: A new session that was not stored: creating was not allowed (websockets).
    NOT_CREATED = enum.auto()
    SAVED = enum.auto()
    #: Saved in the record regenerate() moved the session to meanwhile.
    MOVED = enum.auto()
    #: Ended by this request (clear()).
    ENDED = enum.auto()
    #: Ended by another request meanwhile: nothing saved.
    GONE = enum.auto()


_PERSISTED = {
    Written.SAVED: Persisted.SAVED,
    Written.MOVED: Persisted.MOVED,
    Written.GONE: Persisted.GONE,
}


# Values of these types cannot be changed in place, so reading them cannot
# hide a nested mutation.
_IMMUTABLE = (str, int, float, bool, bytes, type(None))


class ServerSideSession(dict[str, Any], SessionMixin):
    """A dict that remembers how it was used during one request."""

    # What a session has not done yet, as class attributes: one is created per
    # request, so only what differs is set on the instance.
    modified = False
    _read_or_written = False
    cleared = False
    marked_dirty = False
    may_have_mutated = False
    #: Set once the interface has saved this session (websocket teardown
    #: must not save twice).
    saved = False
    #: Whether opening it reset its stored expiry: the cookie is re-sent then.
    refreshed = False
    #: Whether the cookie must be re-sent anyway (signed with an old key).
    resend_cookie = False
    #: When it was created or last regenerated (seconds since the epoch), once stored.
    created_at: float | None = None
    #: Its own lifetime in seconds, None for the configured one.
    _lifetime: int | None = None
    #: The user it belonged to when loaded (SESSION_USER_KEY), as text.
    owner: str | None = None
    #: When it expires (seconds since the epoch) as of when it was loaded or
    #: last saved (a permanent cookie's Expires), None until the store has it.
    expires_at: float | None = None

    def __init__(
        self,
        data: dict[str, Any] | None = None,
        *,
        sid: str | None = None,
        name: str | None = None,
        version: Version | None = None,
        payload: bytes | None = None,
        permanent: bool = True,
        client_address: str | None = None,
    ) -> None:
        super().__init__(data or {})
        #: The session id, None until a new session is first saved (and once
        #: a save found it moved by a regenerate() elsewhere: the browser got
        #: the new id from that response, this one cannot know it).
        self.sid = sid
        #: The name of its record (see SessionEngine.name_of), None until a
        #: new session is first saved: what the engine addresses it by.
        self.name = name
        #: The store version seen at load time (compare-and-set token).
        self.version = version
        #: The stored bytes this session was decoded from: comparing a fresh
        #: encoding with them shows whether anything changed, nested or not.
        self.loaded_payload = payload
        #: The address the session is pinned to (hijack protection). Kept
        #: outside the data so that ``clear()`` cannot remove the pin.
        self.client_address = client_address
        self._permanent = permanent
        self.new = sid is None

    # -- reads ------------------------------------------------------------
    def _handed_out(self, value: Any) -> Any:
        if not isinstance(value, _IMMUTABLE):
            self.may_have_mutated = True
        return value

    def __getitem__(self, key: str) -> Any:
        self._read_or_written = True
        return self._handed_out(super().__getitem__(key))

    def get(self, key: str, default: Any = None) -> Any:
        self._read_or_written = True
        return self._handed_out(super().get(key, default))

    def __contains__(self, key: object) -> bool:
        self._read_or_written = True
        return super().__contains__(key)

    def __iter__(self) -> Iterator[str]:
        self._read_or_written = True
        return super().__iter__()

    def __len__(self) -> int:
        self._read_or_written = True
        return super().__len__()

    def keys(self) -> dict_keys[str, Any]:
        self._read_or_written = True
        return super().keys()

    def values(self) -> dict_values[str, Any]:
        self._read_or_written = self.may_have_mutated = True
        return super().values()

    def items(self) -> dict_items[str, Any]:
        self._read_or_written = self.may_have_mutated = True
        return super().items()

    def copy(self) -> dict[str, Any]:
        self._read_or_written = self.may_have_mutated = True
        return dict(super().items())

    # -- writes -----------------------------------------------------------
    def _written(self) -> None:
        self._read_or_written = self.modified = True

    def __setitem__(self, key: str, value: Any) -> None:
        self._written()
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self._written()
        super().__delitem__(key)

    def setdefault(self, key: str, default: Any = None) -> Any:
        self._written()
        return self._handed_out(super().setdefault(key, default))

    def pop(self, key: str, *default: Any) -> Any:
        self._written()
        return super().pop(key, *default)

    def popitem(self) -> tuple[str, Any]:
        self._written()
        return super().popitem()

    def update(self, *args: Any, **kwargs: Any) -> None:
        self._written()
        super().update(*args, **kwargs)

    def clear(self) -> None:
        """Empty the session; on save its record and cookie are deleted."""
        self._written()
        self.cleared = True
        super().clear()

    def __ior__(self, other: Any) -> ServerSideSession:  # type: ignore[override,misc]
        self.update(other)
        return self

    @property
    def accessed(self) -> bool:
        """Whether the data was read or written (the response then varies on
        the cookie). Tracked here: Quart 0.23 sets ``accessed`` on every
        access of its context's session, including its own when saving."""
        return self._read_or_written

    @accessed.setter
    def accessed(self, value: bool) -> None:
        return  # Quart's own bookkeeping, see the getter

    @property
    def permanent(self) -> bool:
        return self._permanent

    @permanent.setter
    def permanent(self, value: bool) -> None:
        if bool(value) != self._permanent:
            self._written()
            self._permanent = bool(value)

    @property
    def lifetime(self) -> timedelta | None:
        """This session's own lifetime ("remember me"), or None for
        ``PERMANENT_SESSION_LIFETIME``.

        Set it to a positive ``timedelta`` or number of seconds in any view
        (e.g. ``session.lifetime = timedelta(days=30)`` at login): from that
        response on, the store's expiry and a permanent session's cookie
        follow it, sliding refresh keeps it, ``regenerate()`` keeps it, and
        ``SESSION_ABSOLUTE_LIFETIME`` still bounds it. ValueError for zero,
        negative or non-numeric values.
        """
        own = self._lifetime
        return None if own is None else timedelta(seconds=own)

    @lifetime.setter
    def lifetime(self, value: timedelta | float | None) -> None:
        seconds = lifetime_seconds(value)
        if seconds != self._lifetime:
            self._written()
            self._lifetime = seconds

    def dirty(self) -> None:
        """Mark the session for saving (needed for new sessions with
        ``SESSION_EXPLICIT``)."""
        self._written()
        self.marked_dirty = True

    def snapshot(self) -> dict[str, Any]:
        """The data as a plain dict, without marking the session accessed."""
        return dict(super().items())

    # -- handing the session to the engine and back ----------------------------------
    @classmethod
    def from_stored(cls, stored: StoredSession, default_permanent: bool) -> ServerSideSession:
        """The session a request sees for *stored*."""
        session = cls(
            stored.data,
            sid=stored.sid,
            name=stored.name,
            version=stored.version,
            payload=stored.payload,
            permanent=records.permanent_of(stored.meta, default_permanent),
            client_address=stored.address,
        )
        if stored.refreshed:
            session.refreshed = True
        session._stand_for(stored)
        if stored.stamped:
            session.modified = True  # keep the creation stamp it was just given
        return session

    def _stand_for(self, stored: StoredSession) -> None:
        """Take the lifetimes of *stored*."""
        meta = stored.meta
        self.created_at = seconds_of(meta.get(CREATED))
        self._lifetime = whole_seconds(meta.get(LIFETIME))
        owner = meta.get(records.OWNER)
        self.owner = owner if isinstance(owner, str) else None
        self.expires_at = stored.expires_at

    def meta(self) -> dict[str, Any]:
        """The metadata stored beside the data."""
        return records.meta(
            self._permanent, self.client_address, self.created_at, self._lifetime, self.owner
        )

    def basis(self) -> Basis:
        """The record this session's changes apply to."""
        assert self.name is not None
        assert self.version is not None
        assert self.loaded_payload is not None
        return Basis(self.sid, self.name, self.version, self.loaded_payload)

    def adopt(self, stored: StoredSession, sent: dict[str, Any] | None = None) -> None:
        """Stand for *stored* from now on; take its data too, unless it is what
        was *sent* (a merge gives other data: later saves diff against it)."""
        if stored.data is not sent:
            super().clear()
            super().update(stored.data)
        self.sid, self.name = stored.sid, stored.name
        self.version, self.loaded_payload = stored.version, stored.payload
        self._stand_for(stored)

    async def persist(
        self, engine: SessionEngine, *, explicit: bool, can_create: bool = True
    ) -> Persisted:
        """Store what this request changed through *engine*; say what happened."""
        if self.cleared:
            if self.name is not None:
                await engine.end_named(self.name, self.version, sid=self.sid, owner=self.owner)
            if not self.snapshot():
                return Persisted.NOTHING if self.new else Persisted.ENDED
            self.restart(keep_data=True)  # data set after clear(): a new session
        if self.name is None:
            if not (self.modified and self.snapshot()) or (explicit and not self.marked_dirty):
                return Persisted.NOTHING
            if not can_create:
                return Persisted.NOT_CREATED
            data = self.snapshot()
            self.adopt(await engine.create(data, self.meta()), data)
            return Persisted.CREATED
        if not (self.modified or self.may_have_mutated):
            return Persisted.UNCHANGED
        data = self.snapshot()
        written, stored = await engine.save(self.basis(), data, self.meta())
        if stored is not None:
            self.adopt(stored, data)
        return _PERSISTED[written]

    async def regenerate(self, engine: SessionEngine) -> None:
        """Move to a fresh id through *engine*; see the interface's ``regenerate``."""
        if self.name is None:
            return  # a new session gets a fresh id when first saved anyway
        data = self.snapshot()
        moved = await engine.regenerate(self.basis(), data, self.meta())
        if moved is None:
            logger.info("regenerate(): the session was ended meanwhile; starting a fresh one")
            self.restart()
            return
        self.adopt(moved, data)
        self._written()  # the response must carry the new id

    def restart(self, keep_data: bool = False) -> None:
        """Become a new session, not stored yet (after a logout, or a
        ``regenerate()`` that found the session ended)."""
        if not keep_data:
            super().clear()
        self.sid = self.name = self.version = self.loaded_payload = None
        self.created_at = self.expires_at = self.owner = None
        self.new = True
        self.cleared = False


def unwrap(session: SessionMixin, caller: str) -> ServerSideSession:
    """The session object behind ``quart.session`` (or *session* itself)."""
    unwrap = getattr(session, "_get_current_object", None)
    target = unwrap() if unwrap is not None else session
    if not isinstance(target, ServerSideSession):
        raise TypeError(f"{caller}() needs a quart_session session, not {target!r}")
    return target


class DetachedSession(ServerSideSession):
    """The session of a request that did not load it (a static file, a URL no
    route serves): it reads as empty, and nothing written to it is stored, so
    the browser's real session and cookie stay as they are."""


class UnavailableSession(ServerSideSession):
    """Stands in when the session cannot be used: the store failed while
    opening it, or the view is marked ``no_session``.

    Opening happens before any error handler can run, so the error is raised
    where the session is first used instead: a view that never touches the
    session still works while the store is down.
    """

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def _fail(self, *args: Any, **kwargs: Any) -> Any:
        raise self._error()

    def _error(self) -> Exception:
        return self.error

    __getitem__ = get = __contains__ = __iter__ = __len__ = _fail
    keys = values = items = copy = _fail
    __setitem__ = __delitem__ = setdefault = pop = popitem = update = clear = _fail
    dirty = _fail
    lifetime = property(_fail, _fail)


class RefusedSession(UnavailableSession):
    """The session of a view marked ``no_session``: touching it raises
    SessionNotLoadedError naming the view (made only then: most such
    requests never touch it)."""

    def __init__(self, endpoint: str) -> None:
        ServerSideSession.__init__(self)
        self.endpoint = endpoint

    def _error(self) -> Exception:
        return SessionNotLoadedError(
            f"the view {self.endpoint!r} is marked no_session: it does not load the "
            "session, so neither it nor a hook running for it can use the session"
        )
