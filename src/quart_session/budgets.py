"""One request's time for store work: ``SESSION_BACKEND_TIMEOUT`` in all.

A request may reach the store several times: its load (and a refresh of the
expiry), its save (the wait for its turn, a compare-and-set, the reload of a
merge, retries, the per-user index) and what its view calls (``regenerate``,
``revoke``). Bounded one by one, a slow store could hold a request for several
times ``SESSION_BACKEND_TIMEOUT`` while every single call kept inside it. A
budget makes the bound the request's: each store call and wait takes its time
from the budget and may take at most what is left. The view's own time between
them does not count.

The budget of the request being served travels in a context variable, so the
engine's many store calls need no extra argument; Quart serves each request in
its own task, with its own copy of the context.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from types import TracebackType


class StoreBudget:
    """Seconds of store work left to a request.

    ``with budget as ends_at:`` spends from it while the block runs (blocks
    may nest, or run side by side in tasks of one request: the time counts
    once); ``ends_at`` is the ``time.monotonic()`` by which the work must end.
    """

    __slots__ = ("_ends_at", "_left", "_users", "open")

    def __init__(self, seconds: float) -> None:
        self._left = seconds
        self._ends_at = 0.0
        #: Blocks spending from the budget right now.
        self._users = 0
        #: False once the request is answered: a task it started and that
        #: runs on (its context copied the budget) is no longer held to it.
        self.open = True

    def begin(self) -> float:
        """Start spending (until ``end``); the ``time.monotonic()`` by which
        the work must end."""
        if not self._users:
            self._ends_at = time.monotonic() + self._left
        self._users += 1
        return self._ends_at

    def end(self) -> None:
        self._users -= 1
        if not self._users:
            left = self._ends_at - time.monotonic()
            self._left = left if left > 0.0 else 0.0

    def __enter__(self) -> float:
        return self.begin()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.end()


_current: ContextVar[StoreBudget | None] = ContextVar("quart_session_store_budget", default=None)


def current_budget() -> StoreBudget | None:
    """The open budget of the request being served, if any."""
    budget = _current.get()
    return budget if budget is not None and budget.open else None


def start_budget(seconds: float) -> StoreBudget:
    """Give the request being served *seconds* of store work from now on."""
    budget = StoreBudget(seconds)
    _current.set(budget)
    return budget


@contextmanager
def own_budget(seconds: float) -> Iterator[StoreBudget]:
    """*seconds* of store work for the block alone (a websocket's save: the
    connection may live for hours, each save gets the whole time), then the
    budget the context had before."""
    budget = StoreBudget(seconds)
    token = _current.set(budget)
    try:
        yield budget
    finally:
        _current.reset(token)
