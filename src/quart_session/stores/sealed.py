"""SealedStore: encryption at rest around any store (SESSION_ENCRYPTION_KEYS).

It sits between the engine and the real store: every payload saved is sealed
(``crypto.Keyring``: AES-256-GCM, the store key as associated data), every
payload loaded or taken is opened again. Markers are sealed like sessions, so
the engine never sees ciphertext and the store never sees plaintext; comparing
a fresh encoding with the loaded payload (unchanged-save detection) still
compares plaintext.

A record no key opens — sealed by a key since removed, altered, copied from
another key, or stored unencrypted before the keys were set — loads as None
(the user gets a fresh session) with one log line naming at most a key id.
``save`` passes the compare-and-set through untouched, which keeps it sound
over such a record: a create finds the key taken (CONFLICT: the engine picks
another id); an update finds another version (CONFLICT), reloads None and
counts the session as gone, as if it had ended meanwhile.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace

from ..crypto import OVERHEAD, Keyring, NotSealed, Unreadable
from .base import Outcome, Record, SaveResult, Store, Version

logger = logging.getLogger("quart_session")

#: Compare-and-set attempts of one record's rewrite before rotation leaves it
#: to the requests writing it (their writes are sealed under the first key).
MAX_RESEAL_ATTEMPTS = 8


class Resealed(enum.Enum):
    """What rotation did with one record."""

    REWRITTEN = "rewritten under the first key"
    ENCRYPTED = "encrypted (stored unencrypted before)"
    CURRENT = "already under the first key"
    UNREADABLE = "opened by no configured key (left as is)"
    GONE = "gone (expired or deleted meanwhile)"
    BUSY = "written by requests throughout (left to them)"


class SealedStore(Store):
    """*inner* with every payload sealed under *keys* (the first seals)."""

    def __init__(self, inner: Store, keys: Sequence[bytes]) -> None:
        self.inner = inner
        self.keyring = Keyring(keys)
        self.offer_what(inner)
        limit = getattr(inner, "max_payload", None)
        if limit is not None:
            self.max_payload = limit - OVERHEAD

    def __repr__(self) -> str:
        return f"SealedStore({self.inner!r}, {self.keyring!r})"

    @property
    def address(self) -> str:
        return self.inner.address

    def _opened(self, key: str, record: Record | None) -> Record | None:
        if record is None:
            return None
        try:
            payload = self.keyring.open(key, record.payload)
        except Unreadable as error:
            logger.warning("Starting a fresh session: %s", error)
            return None
        return replace(record, payload=payload)

    async def load(self, key: str, refresh_ttl: int | None = None) -> Record | None:
        return self._opened(key, await self.inner.load(key, refresh_ttl))

    async def expire(self, key: str, ttl: int) -> bool:
        # The record's key is the same sealed or not, and its payload stays as it is.
        return await self.inner.expire(key, ttl)

    async def expires_at(self, key: str) -> float | None:
        return await self.inner.expires_at(key)

    async def save(
        self, key: str, payload: bytes, ttl: int, expected: Version | None
    ) -> SaveResult:
        return await self.inner.save(key, self.keyring.seal(key, payload), ttl, expected)

    async def delete(self, key: str) -> None:
        await self.inner.delete(key)

    async def take(self, key: str) -> Record | None:
        return self._opened(key, await self.inner.take(key))

    async def purge_expired(self) -> int:
        return await self.inner.purge_expired()

    async def count(self, prefix: str) -> int:
        return await self.inner.count(prefix)

    def keys(self, prefix: str) -> AsyncIterator[str]:
        return self.inner.keys(prefix)

    async def ping(self) -> None:
        await self.inner.ping()

    async def close(self) -> None:
        await self.inner.close()

    async def reseal(self, key: str, ttl_of: Callable[[bytes], int | None]) -> Resealed:
        """Rewrite the record at *key* under the first key (encrypting it if
        it was stored unencrypted), by compare-and-set on its version: a
        request's write landing meanwhile is never overwritten. The record
        gets the seconds to live ``ttl_of(payload)`` gives its payload, as a
        request's write would (a session's own lifetime, cut short by its
        absolute end); None leaves it as it is, to expire."""
        for _ in range(MAX_RESEAL_ATTEMPTS):
            record = await self.inner.load(key)
            if record is None:
                return Resealed.GONE
            done = Resealed.REWRITTEN
            try:
                payload = self.keyring.open(key, record.payload)
            except NotSealed:
                payload, done = record.payload, Resealed.ENCRYPTED
            except Unreadable:
                return Resealed.UNREADABLE
            if self.keyring.is_current(record.payload):
                return Resealed.CURRENT
            ttl = ttl_of(payload)
            if ttl is None:
                return Resealed.GONE
            result = await self.inner.save(
                key, self.keyring.seal(key, payload), ttl, record.version
            )
            if result is Outcome.GONE:
                return Resealed.GONE
            if not isinstance(result, Outcome):
                return done
        return Resealed.BUSY
