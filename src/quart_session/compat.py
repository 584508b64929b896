"""Quart-Session 3.0 compatibility, in one place.

Everything here exists only so that an upgrade from Quart-Session 3.0 keeps its
users signed in and its configuration working. It can be removed one day (a
major release after 3.0's sessions have long expired): delete this module, the
code that imports it (``grep -rn compat src``) and ``SESSION_LEGACY_IDS``.
Removing it means:

* a cookie holding a 3.0 id (a UUID4, signed the 3.0 way) is no longer moved to
  a new id: its user starts a fresh session, i.e. signs in again;
* so no record 3.0 wrote is read any more, and with it go its permanent flag
  and hijack pin kept among the data (``_permanent``, ``_addr``) and its
  datetimes tagged ``" d"`` (HTTP dates): those would otherwise come back as
  session data, and as ``{" d": "..."}`` dicts;
* ``SESSION_PROTECTION``, ``SESSION_REVERSE_PROXY`` and ``SESSION_TYPE =
  "redis+trio"`` stop working: the config should then refuse them by name
  rather than ignore them;
* ``ServerSideSessionInterface.serialize``, 3.0's spelling of ``serializer``
  (an alias in ``interface.py``, marked there), goes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from itsdangerous import BadSignature, Signer
from quart.json.tag import JSONTag
from werkzeug.http import parse_date

from . import records
from .addresses import forwarded_client, same_client
from .records import permanent_of
from .signals import hijack_detected

if TYPE_CHECKING:
    from .engine import SessionEngine
    from .session import ServerSideSession

#: 3.0's config key names that still work: old name -> new name.
CONFIG_KEY_ALIASES = {
    "SESSION_PROTECTION": "SESSION_HIJACK_PROTECTION",
    "SESSION_REVERSE_PROXY": "SESSION_HIJACK_REVERSE_PROXY",
}
#: 3.0's SESSION_TYPE names that still work: "redis+trio" chose redis-py's Trio
#: support, which the redis store now picks by itself.
STORE_TYPE_ALIASES = {"redis+trio": "redis"}

# -- ids ----------------------------------------------------------------------------

#: A 3.0 session id: a UUID4 as ``str(uuid.uuid4())`` writes it.
LEGACY_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


class LegacyIdReader:
    """Reads the session id out of a cookie Quart-Session 3.0 set."""

    def __init__(self, secret_keys: Iterable[str | bytes] = ()) -> None:
        keys = [key.encode() if isinstance(key, str) else key for key in secret_keys]
        # 3.0 signed with itsdangerous's defaults of its day (HMAC key
        # derivation, SHA-1); itsdangerous verifies with every key, signs with the last.
        self._signer = (
            Signer(keys[::-1], salt="quart-session", key_derivation="hmac") if keys else None
        )

    def read(self, value: str) -> str | None:
        """The 3.0 id in a cookie value, or None if it is malformed or badly signed."""
        if self._signer is not None:
            try:
                value = self._signer.unsign(value).decode()
            except BadSignature:
                return None
        return value if LEGACY_ID.fullmatch(value) else None


# -- records ------------------------------------------------------------------------

#: Where 3.0 kept the permanent flag: among the session's data.
LEGACY_PERMANENT_KEY = "_permanent"
#: Where 3.0 kept the client address a session was pinned to: among the data,
#: as the address it saw (behind a proxy: the raw X-Forwarded-For value).
LEGACY_PIN_KEY = "_addr"


def legacy_meta(data: dict[str, Any], default_permanent: bool) -> dict[str, Any]:
    """The metadata of a record that has none (3.0 wrote none), taken out of
    *data*: 3.0 kept the permanent flag among the data."""
    return records.meta(bool(data.pop(LEGACY_PERMANENT_KEY, default_permanent)), None)


def legacy_pin_holds(pin: str, address: str | None, trusted_proxies: int | None) -> bool:
    """Whether the client at *address* is the one a 3.0 session was pinned to.

    Behind *trusted_proxies* reverse proxies (None: none) only the entry our
    proxies appended to the stored X-Forwarded-For value counts: the entries
    before it were written by the client.
    """
    if trusted_proxies is not None:
        pin = forwarded_client([pin], trusted_proxies) or ""
    return address is not None and same_client(pin, address)


class LegacyDateTimeTag(JSONTag):
    """Reads the datetimes 3.0's tagged JSON wrote (``" d"``: an HTTP date, to
    the second, always UTC); never writes one: datetimes are now ISO 8601."""

    __slots__ = ()
    key = " d"

    def check(self, value: Any) -> bool:
        return False

    def to_python(self, value: Any) -> Any:
        return parse_date(value)


# -- moving a 3.0 session to a new id -------------------------------------------------


async def migrate(
    engine: SessionEngine,
    legacy_sid: str,
    fresh: ServerSideSession,
    *,
    pinned: bool,
    trusted_proxies: int | None,
) -> bool:
    """Move the 3.0 session *legacy_sid* into *fresh* (a new session of this
    request, pinned to its client when *pinned*) under a new id, once, so that
    upgrading logs nobody out. False if there was nothing to move, or it was
    pinned to another client (then it is ended), or another request moved or
    ended it meanwhile."""
    # 3.0 stored records under the id itself, never a hash of it: read that
    # key; the session moves to a new id, stored the way this app stores ids.
    stored = await engine.load_named(legacy_sid, legacy_sid)
    if stored is None:
        return False
    pin = stored.data.pop(LEGACY_PIN_KEY, None)
    if (
        pinned
        and pin is not None
        and not legacy_pin_holds(str(pin), fresh.client_address, trusted_proxies)
    ):
        hijack_detected(engine.sender, legacy_sid, str(pin), fresh.client_address)
        await engine.end_named(stored.name, stored.version, sid=legacy_sid)
        return False
    fresh.permanent = permanent_of(stored.meta, engine.settings.permanent)
    # Every request with the old cookie migrates (or fails to) while opening,
    # so none can act on the old record later: no marker is left there.
    moved = await engine.regenerate(stored, stored.data, fresh.meta(), leave_marker=False)
    if moved is None:
        return False
    fresh.adopt(moved)
    fresh.modified = True  # the response must carry the new id
    return True
