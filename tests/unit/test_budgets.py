"""A request's budget for store work: each call gets what is left, time
spent in overlapping blocks counts once, and a budget applies only while its
request is served."""

from __future__ import annotations

import time

import anyio
import pytest

from quart_session.budgets import StoreBudget, current_budget, own_budget, start_budget
from quart_session.calls import StoreCalls
from quart_session.errors import SessionBackendError
from quart_session.stores.memory import MemoryStore

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def left(budget: StoreBudget) -> float:
    """What a store call started now would get."""
    with budget as ends_at:
        return ends_at - time.monotonic()


async def test_overlapping_blocks_spend_their_time_once() -> None:
    budget = StoreBudget(1.0)
    with budget:
        await anyio.sleep(0.05)
        with budget:
            await anyio.sleep(0.05)
    assert 0.85 < left(budget) <= 0.9


async def test_what_is_left_counts_a_block_in_progress_and_never_goes_below_zero() -> None:
    budget = StoreBudget(0.05)
    with budget:
        await anyio.sleep(0.02)
        assert left(budget) < 0.035
        await anyio.sleep(0.05)
    assert left(budget) <= 0.0


async def test_a_budget_applies_only_while_open_and_an_own_one_only_in_its_block() -> None:
    budget = start_budget(2.0)
    assert current_budget() is budget
    with own_budget(1.0) as own:
        assert current_budget() is own
    assert current_budget() is budget
    budget.open = False  # the request was answered
    assert current_budget() is None


async def slow(seconds: float) -> str:
    await anyio.sleep(seconds)
    return "answered"


async def test_each_call_of_a_request_gets_what_is_left_of_its_time() -> None:
    calls, store = StoreCalls(0.3, sender=None), MemoryStore()
    with own_budget(0.3):
        assert await calls.run(store, slow, 0.2) == "answered"
        started = time.monotonic()
        with pytest.raises(SessionBackendError, match=r"what was left of the request's 0\.3s"):
            await calls.run(store, slow, 0.2)  # alone it would be in time
        assert time.monotonic() - started < 0.2
        spent: list[str] = []
        with pytest.raises(SessionBackendError, match="not started: 0s left"):
            await calls.run(store, spent.append, "sent")  # type: ignore[arg-type]
        assert spent == []  # nothing left: the store is not even asked


async def test_outside_a_request_each_call_has_the_whole_timeout() -> None:
    calls, store = StoreCalls(0.3, sender=None), MemoryStore()
    for _ in range(2):
        assert await calls.run(store, slow, 0.2) == "answered"


async def test_a_call_that_needs_more_time_than_is_left_is_not_started() -> None:
    # SQLite's driver must not be cut short while it waits for a lock: a
    # call with less time left than that wait fails before it starts.
    calls, store = StoreCalls(1.0, sender=None), MemoryStore()
    store.needs_at_least = 0.3
    sent: list[str] = []
    with own_budget(1.0):
        await calls.run(store, slow, 0.75)
        with pytest.raises(SessionBackendError, match=r"not started: 0\.2\d*s left.*needs 0\.3s"):
            await calls.run(store, sent.append, "sent")  # type: ignore[arg-type]
    assert sent == []
    assert await calls.run(store, slow, 0.01) == "answered"  # outside: the whole timeout
