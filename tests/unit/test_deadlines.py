"""The shared deadline timer: a call past its deadline is cancelled (again
every millisecond) and reports a timeout; a call in time is left alone; a
cancellation from elsewhere is never taken for a timeout."""

from __future__ import annotations

import asyncio

import pytest

from quart_session.deadlines import Deadlines

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def guarded(deadlines: Deadlines, work: float, seconds: float | None = None) -> str:
    token = deadlines.arm(seconds)
    try:
        await asyncio.sleep(work)
        return "done"
    except asyncio.CancelledError:
        return "timeout" if deadlines.timed_out(token) else "cancelled"
    finally:
        deadlines.disarm(token)


async def test_a_call_in_time_finishes_and_a_late_one_times_out() -> None:
    deadlines = Deadlines(asyncio.get_running_loop(), 0.05)
    assert await guarded(deadlines, 0.01) == "done"
    assert await guarded(deadlines, 5) == "timeout"


async def test_calls_started_at_different_times_each_get_their_own_deadline() -> None:
    deadlines = Deadlines(asyncio.get_running_loop(), 0.1)
    first = asyncio.create_task(guarded(deadlines, 5))
    await asyncio.sleep(0.06)
    second = asyncio.create_task(guarded(deadlines, 0.07))  # ends 0.13 s in: in time
    assert await asyncio.gather(first, second) == ["timeout", "done"]


async def test_a_cancellation_from_elsewhere_is_not_a_timeout() -> None:
    deadlines = Deadlines(asyncio.get_running_loop(), 5)
    task = asyncio.create_task(guarded(deadlines, 5))
    await asyncio.sleep(0.01)
    task.cancel()
    assert await task == "cancelled"


async def test_a_call_that_swallows_one_cancellation_is_cancelled_again() -> None:
    deadlines = Deadlines(asyncio.get_running_loop(), 0.02)
    token = deadlines.arm()
    caught = 0
    try:
        for _ in range(3):
            try:
                await asyncio.sleep(5)
            except asyncio.CancelledError:
                caught += 1  # a driver cleaning up, then waiting again
        outcome = "survived"
    finally:
        deadlines.disarm(token)
    assert (caught, outcome) == (3, "survived")
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_a_call_given_less_time_times_out_before_an_earlier_one_with_more() -> None:
    # A request that spent most of its time already: its call's deadline
    # comes before that of a call started earlier with the whole timeout.
    deadlines = Deadlines(asyncio.get_running_loop(), 5)
    loop = asyncio.get_running_loop()
    first = asyncio.create_task(guarded(deadlines, 0.5, 5))
    await asyncio.sleep(0.01)
    started = loop.time()
    assert await guarded(deadlines, 5, 0.05) == "timeout"
    assert loop.time() - started < 0.4
    assert await first == "done"
