"""Saves of one session in this process take turns.

Requests of one process that write the same session at once take turns instead
of colliding in the store: the second one would otherwise lose its
compare-and-set, reload and retry, and with hundreds of writers the retries
multiply. Each turn also hands the next one the record it stored, so the next
writer merges onto that at once instead of first losing a compare-and-set
against it.

Hand-written rather than an ``anyio.Lock`` per session: almost every save is
alone, and creating and taking an anyio lock costs more than the rest of a
save's own work (about 7 µs). Here a turn nobody waits for is two dict
operations; an event is made only when a second writer arrives.
"""

from __future__ import annotations

from types import TracebackType

import anyio

from .errors import SessionConflictError
from .stores.base import Record


class Turn:
    """One save's turn at a session; ``latest`` travels to the next turn."""

    __slots__ = ("latest", "released")

    def __init__(self, latest: Record | None) -> None:
        #: What the last save of this session in this process stored, if one
        #: finished just before this turn (None: nothing known).
        self.latest = latest
        #: Made by the first save that waits for this turn to end.
        self.released: anyio.Event | None = None


class SessionTurns:
    """Turns keyed by session id, alive only while taken (memory follows the
    saves in flight, not the number of sessions)."""

    def __init__(self) -> None:
        self._taken: dict[str, Turn] = {}

    def take(self, sid: str, within: float) -> _Taking:
        """``async with turns.take(sid, within) as turn:`` waits for the turn at
        *sid*, at most *within* seconds (then SessionConflictError: hundreds of
        writers of one session must not hold a request past the time a store
        call may take)."""
        return _Taking(self, sid, within)

    def __len__(self) -> int:
        return len(self._taken)


class _Taking:
    __slots__ = ("_sid", "_turn", "_turns", "_within")

    def __init__(self, turns: SessionTurns, sid: str, within: float) -> None:
        self._turns = turns
        self._sid = sid
        self._within = within
        self._turn: Turn | None = None

    async def __aenter__(self) -> Turn:
        taken, sid = self._turns._taken, self._sid
        # Almost every save is alone: no timer unless there is a wait.
        latest = await self._wait() if sid in taken else None
        turn = self._turn = taken[sid] = Turn(latest)
        return turn

    async def _wait(self) -> Record | None:
        """Wait until nobody holds the turn; what the last holder stored."""
        taken, sid = self._turns._taken, self._sid
        latest = None
        # Everyone waiting wakes when a turn ends; the first to run takes the
        # next one and the others wait again, for that one. Waiting owns
        # nothing, so a waiter cancelled here leaves nothing behind.
        with anyio.move_on_after(self._within):
            while (current := taken.get(sid)) is not None:
                if current.released is None:
                    current.released = anyio.Event()
                await current.released.wait()
                latest = current.latest
            return latest  # the caller takes the turn before anything else runs
        raise SessionConflictError(
            f"session changes not saved: other saves of the same session in this process "
            f"held it for {self._within:g}s"
        )

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        turn = self._turn
        assert turn is not None
        del self._turns._taken[self._sid]
        if turn.released is not None:
            turn.released.set()
