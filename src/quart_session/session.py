"""The session mapping a view sees as ``quart.session``.

It records what the interface needs to save the least possible: whether the
session was read (``Vary: Cookie``), written, cleared, or handed out a mutable
value that may have been changed in place (``session["cart"].append(x)``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from quart.sessions import SessionMixin

from .stores.base import Version

if TYPE_CHECKING:
    from _collections_abc import dict_items, dict_keys, dict_values

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

    def __init__(
        self,
        data: dict[str, Any] | None = None,
        *,
        sid: str | None = None,
        version: Version | None = None,
        payload: bytes | None = None,
        permanent: bool = True,
        client_address: str | None = None,
    ) -> None:
        super().__init__(data or {})
        #: The session id, None until a new session is first saved.
        self.sid = sid
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

    def dirty(self) -> None:
        """Mark the session for saving (needed for new sessions with
        ``SESSION_EXPLICIT``)."""
        self._written()
        self.marked_dirty = True

    def snapshot(self) -> dict[str, Any]:
        """The data as a plain dict, without marking the session accessed."""
        return dict(super().items())


class UnavailableSession(ServerSideSession):
    """Stands in when the store failed while opening the session.

    Opening happens before any error handler can run, so the error is raised
    where the session is first used instead: a view that never touches the
    session still works while the store is down.
    """

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def _fail(self, *args: Any, **kwargs: Any) -> Any:
        raise self.error

    __getitem__ = get = __contains__ = __iter__ = __len__ = _fail
    keys = values = items = copy = _fail
    __setitem__ = __delitem__ = setdefault = pop = popitem = update = clear = _fail
    dirty = _fail
