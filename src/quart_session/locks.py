"""One lock per session for the saves of this process.

Requests of one process that write the same session at once take turns instead
of colliding in the store: the second one would otherwise lose its
compare-and-set, reload and retry, and with hundreds of writers the retries
multiply. Each slot also remembers the record the last save through it wrote,
so the next writer merges onto that at once instead of first losing a
compare-and-set against it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio

from .stores.base import Record


@dataclass
class Slot:
    lock: anyio.Lock = field(default_factory=anyio.Lock)
    #: Requests holding or awaiting the lock; the slot is dropped at zero.
    users: int = 0
    #: What the last save through this slot stored, while anyone still waits.
    latest: Record | None = None


class SessionLocks:
    """Slots keyed by session id, alive only while someone holds or awaits them
    (so memory follows concurrency, not the number of sessions)."""

    def __init__(self) -> None:
        self._slots: dict[str, Slot] = {}

    @asynccontextmanager
    async def hold(self, sid: str) -> AsyncIterator[Slot]:
        slot = self._slots.get(sid)
        if slot is None:
            slot = self._slots[sid] = Slot()
        slot.users += 1
        try:
            async with slot.lock:
                yield slot
        finally:
            slot.users -= 1
            if not slot.users:
                del self._slots[sid]

    def __len__(self) -> int:
        return len(self._slots)
