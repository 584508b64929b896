"""A store in this process's memory: for tests and development.

Nothing is shared between worker processes and everything is lost on restart.
Every method runs without awaiting, so on one event loop each is atomic.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from .base import Outcome, Record, SaveResult, Store, Version

if TYPE_CHECKING:
    from ..config import Settings


class MemoryStore(Store):
    name = "memory"
    can_take = True
    can_count = True
    can_list = True
    needs_purge = True
    refresh_is_free = True

    def __init__(self) -> None:
        # key -> (payload, version, monotonic deadline)
        self._records: dict[str, tuple[bytes, int, float]] = {}
        self._versions = itertools.count(1)

    def _live(self, key: str) -> tuple[bytes, int, float] | None:
        entry = self._records.get(key)
        if entry is not None and entry[2] <= time.monotonic():
            del self._records[key]
            return None
        return entry

    async def load(self, key: str, refresh_ttl: int | None = None) -> Record | None:
        entry = self._live(key)
        if entry is None:
            return None
        if refresh_ttl is not None:
            self._records[key] = (entry[0], entry[1], time.monotonic() + refresh_ttl)
        return Record(entry[0], entry[1], refresh_ttl is not None)

    async def expire(self, key: str, ttl: int) -> bool:
        entry = self._live(key)
        if entry is None:
            return False
        self._records[key] = (entry[0], entry[1], time.monotonic() + ttl)
        return True

    async def expires_at(self, key: str) -> float | None:
        entry = self._live(key)
        return None if entry is None else time.time() + entry[2] - time.monotonic()

    async def save(
        self, key: str, payload: bytes, ttl: int, expected: Version | None
    ) -> SaveResult:
        entry = self._live(key)
        if expected is None:
            if entry is not None:
                return Outcome.CONFLICT
        elif entry is None:
            return Outcome.GONE
        elif entry[1] != expected:
            return Outcome.CONFLICT
        version = next(self._versions)
        self._records[key] = (payload, version, time.monotonic() + ttl)
        return version

    async def delete(self, key: str) -> None:
        self._records.pop(key, None)

    async def take(self, key: str) -> Record | None:
        entry = self._live(key)
        if entry is None:
            return None
        del self._records[key]
        return Record(entry[0], entry[1])

    async def purge_expired(self) -> int:
        now = time.monotonic()
        expired = [key for key, entry in self._records.items() if entry[2] <= now]
        for key in expired:
            del self._records[key]
        return len(expired)

    async def count(self, prefix: str) -> int:
        await self.purge_expired()
        return sum(1 for key in self._records if key.startswith(prefix))

    async def keys(self, prefix: str) -> AsyncIterator[str]:
        await self.purge_expired()
        for key in [key for key in self._records if key.startswith(prefix)]:
            yield key


def from_settings(settings: Settings) -> MemoryStore:
    return MemoryStore()
