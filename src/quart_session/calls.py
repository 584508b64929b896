"""One store call: its timeout, its errors, and work that must not be cut short.

Every store operation goes through ``StoreCalls.run``: it gets what is left of
its request's ``SESSION_BACKEND_TIMEOUT`` (``budgets.py``; the whole timeout
outside a request), and any failure becomes a ``SessionBackendError`` chained to
the driver's exception (and the ``session_store_error`` signal).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import anyio
from blinker import Signal

from . import signals
from .budgets import StoreBudget, current_budget
from .deadlines import Deadlines
from .errors import SessionBackendError
from .runtime import asyncio_loop, running_trio
from .stores.base import Store

_T = TypeVar("_T")


def send(signal: Signal, sender: object, **kwargs: Any) -> None:
    """Send *signal* only if someone listens (building kwargs is the cost)."""
    if signal.receivers:
        signal.send(sender, **kwargs)


class _TooLittleLeft(TimeoutError):
    """A call not started: less of its request's time is left than it needs."""


class StoreCalls:
    """Runs store operations within their request's budget, or within
    *timeout* seconds each outside a request."""

    def __init__(self, timeout: float, sender: object) -> None:
        self.timeout = timeout
        self.sender = sender
        self._deadlines: Deadlines | None = None

    def budget(self) -> StoreBudget:
        """The budget of the request being served, or a whole one of its own
        for work done outside a request."""
        return current_budget() or StoreBudget(self.timeout)

    async def run(self, store: Store, func: Callable[..., Awaitable[_T]], *args: Any) -> _T:
        """``await func(*args)``, a method of *store*, within the time left;
        any failure becomes a SessionBackendError chained to the driver's
        exception."""
        budget = current_budget()
        # begin() first: it fixes the deadline the time left is measured to.
        timeout = self.timeout if budget is None else budget.begin() - time.monotonic()
        try:
            try:
                if timeout <= store.needs_at_least:
                    raise _TooLittleLeft
                loop = asyncio_loop()
                if loop is None:  # Trio
                    with anyio.fail_after(timeout):
                        return await func(*args)
                deadlines = self._deadlines
                if deadlines is None or deadlines.loop is not loop:
                    deadlines = self._deadlines = Deadlines(loop, self.timeout)
                token = deadlines.arm(timeout)
                try:
                    return await func(*args)
                except asyncio.CancelledError:
                    if deadlines.timed_out(token):
                        raise TimeoutError from None
                    raise
                finally:
                    deadlines.disarm(token)
            finally:
                if budget is not None:
                    budget.end()
        except _TooLittleLeft as error:
            reason = (
                f"{func.__name__} not started: {max(timeout, 0):.3g}s left of the request's "
                f"{self.timeout:g}s for store work"
            )
            if store.needs_at_least:
                reason += f", and the store needs {store.needs_at_least:.3g}s"
            failure = SessionBackendError(store.name, store.address, reason)
            cause: BaseException = error
        except TimeoutError as error:
            reason = f"{func.__name__} timed out after {timeout:.3g}s"
            if budget is not None:
                reason += f" (what was left of the request's {self.timeout:g}s for store work)"
            failure = SessionBackendError(store.name, store.address, reason)
            cause = error
        except Exception as error:  # noqa: BLE001 - any driver failure
            failure = SessionBackendError(
                store.name, store.address, f"{func.__name__} failed: {error!r}"
            )
            cause = error
        send(signals.session_store_error, self.sender, error=failure)
        raise failure from cause


async def uncancellable(work: Coroutine[Any, Any, None]) -> None:
    """Run *work* to its end even if the calling task is cancelled meanwhile;
    the cancellation is re-raised afterwards."""
    if running_trio():
        with anyio.CancelScope(shield=True):  # Trio's shields stop every cancellation
            await work
        return
    # anyio's shield does not stop a plain Task.cancel(), which is how Quart
    # stops a websocket handler: run the work as its own task and outwait it.
    task = asyncio.ensure_future(work)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            cancelled = True
    task.result()
    if cancelled:
        raise asyncio.CancelledError
