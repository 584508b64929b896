"""Timeouts of store calls on asyncio, cheaper than one ``asyncio.timeout`` each."""

from __future__ import annotations

import asyncio
from typing import Any


class _Expired:
    __slots__ = ("cancelling", "cancels", "task")

    def __init__(self, task: asyncio.Task[Any], cancelling: int) -> None:
        self.task = task
        #: The task's cancel count when the call started.
        self.cancelling = cancelling
        #: How often the timeout has cancelled the task since.
        self.cancels = 0


class Deadlines:
    """Timeouts of store calls on asyncio for the price of a dict entry.

    ``asyncio.timeout`` arms and cancels a timer on every call (5 µs); here
    one timer waits for the earliest deadline of the calls in flight. Calls
    usually get the whole timeout; one of a request that has spent part of
    its time on store work already gets less (``budgets.py``), and moves the
    timer earlier when its deadline comes more than ``LATE`` before it.

    As with anyio's cancel scopes, a call past its deadline is cancelled again
    every millisecond until it ends: a driver may catch one cancellation to
    clean up (SQLAlchemy closing a connection to a dead server) and then wait
    out its own, longer timeouts. Only these cancellations, none from
    elsewhere, turn into a TimeoutError.
    """

    #: Seconds between cancellations of a call past its deadline.
    REPEAT = 0.001
    #: Seconds a call may be cancelled after its deadline rather than move the
    #: timer: most saves come a few milliseconds after their request's load,
    #: with that much less time, and moving the timer for each costs a new
    #: event-loop timer per call (what this class saves).
    LATE = 0.01

    def __init__(self, loop: asyncio.AbstractEventLoop, seconds: float) -> None:
        self.loop = loop
        self.seconds = seconds
        #: token -> (deadline, task, the task's cancel count when it started)
        self._running: dict[object, tuple[float, asyncio.Task[Any], int]] = {}
        self._expired: dict[object, _Expired] = {}
        self._timer: asyncio.TimerHandle | None = None
        #: When the timer fires (read often: cheaper than its when()).
        self._timer_at = 0.0
        self._repeat: asyncio.TimerHandle | None = None

    def arm(self, seconds: float | None = None) -> object:
        """Start the clock of a call of the current task: *seconds*, or the
        timeout given at creation."""
        task = asyncio.current_task()
        assert task is not None
        token = object()
        deadline = self.loop.time() + (self.seconds if seconds is None else seconds)
        self._running[token] = (deadline, task, task.cancelling())
        timer = self._timer
        if timer is None or deadline < self._timer_at - self.LATE:
            if timer is not None:
                timer.cancel()
            self._timer = self.loop.call_at(deadline, self._expire)
            self._timer_at = deadline
        return token

    def timed_out(self, token: object) -> bool:
        """Whether a CancelledError in the call of *token* is its timeout."""
        expired = self._expired.pop(token, None)
        return expired is not None and self._uncancel(expired) <= expired.cancelling

    def disarm(self, token: object) -> None:
        self._running.pop(token, None)
        expired = self._expired.pop(token, None)
        if expired is not None:  # the call ended despite its cancellations
            self._uncancel(expired)

    @staticmethod
    def _uncancel(expired: _Expired) -> int:
        remaining = expired.task.cancelling()
        for _ in range(expired.cancels):
            remaining = expired.task.uncancel()
        return remaining

    def _expire(self) -> None:
        self._timer = None
        now = self.loop.time()
        following = None  # the earliest deadline still ahead
        for token, (deadline, task, cancelling) in list(self._running.items()):
            if deadline > now:
                if following is None or deadline < following:
                    following = deadline
                continue
            del self._running[token]
            self._expired[token] = _Expired(task, cancelling)
        if following is not None:
            self._timer = self.loop.call_at(following, self._expire)
            self._timer_at = following
        if self._repeat is None:
            self._cancel_expired()

    def _cancel_expired(self) -> None:
        self._repeat = None
        for expired in self._expired.values():
            expired.task.cancel()
            expired.cancels += 1
        if self._expired:
            self._repeat = self.loop.call_later(self.REPEAT, self._cancel_expired)
