"""SessionTurns, the hand-written per-session lock of saves: it excludes like
the ``anyio.Lock`` it replaces, on asyncio and Trio, and survives cancellation."""

from __future__ import annotations

import random
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from quart_session.errors import SessionConflictError
from quart_session.locks import SessionTurns
from quart_session.stores.base import Record

pytestmark = pytest.mark.anyio
#: Longer than any test here holds a turn: only the test of the bound reaches it.
WAIT = 60.0


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def overlaps(hold: Callable[[str], AbstractAsyncContextManager[Any]]) -> list[int]:
    """Run 60 tasks over 3 sessions, each holding its session's lock across a
    few yields; return the most holders any one session ever had at once."""
    inside = {"a": 0, "b": 0, "c": 0}
    most = {"a": 0, "b": 0, "c": 0}
    rng = random.Random(7)

    async def work(sid: str, pauses: int) -> None:
        async with hold(sid):
            inside[sid] += 1
            most[sid] = max(most[sid], inside[sid])
            for _ in range(pauses):
                await anyio.lowlevel.checkpoint()
            inside[sid] -= 1

    async with anyio.create_task_group() as group:
        for _ in range(60):
            group.start_soon(work, rng.choice("abc"), rng.randint(0, 3))
    return sorted(most.values())


async def test_turns_exclude_like_the_anyio_lock_they_replace() -> None:
    turns = SessionTurns()
    locks: dict[str, anyio.Lock] = {}

    def with_anyio(sid: str) -> AbstractAsyncContextManager[Any]:
        return locks.setdefault(sid, anyio.Lock())

    ours = await overlaps(lambda sid: turns.take(sid, WAIT))
    assert ours == await overlaps(with_anyio) == [1, 1, 1]
    assert len(turns) == 0  # nothing kept once no save is in flight


async def test_without_turns_the_same_work_overlaps() -> None:
    """The check above can fail: with no lock the tasks do run together."""

    class NoLock:
        async def __aenter__(self) -> None:
            return None

        async def __aexit__(self, *args: object) -> None:
            return None

    assert max(await overlaps(lambda sid: NoLock())) > 1


async def test_the_next_turn_receives_what_the_last_one_stored() -> None:
    turns = SessionTurns()
    seen: list[Record | None] = []
    first_in = anyio.Event()

    async def first() -> None:
        async with turns.take("s", WAIT) as turn:
            first_in.set()
            await anyio.sleep(0.01)  # the second one is waiting by now
            turn.latest = Record(b"stored", 7)

    async def second() -> None:
        await first_in.wait()
        async with turns.take("s", WAIT) as turn:
            seen.append(turn.latest)

    async with anyio.create_task_group() as group:
        group.start_soon(first)
        group.start_soon(second)
    assert seen == [Record(b"stored", 7)]
    async with turns.take("s", WAIT) as turn:  # nobody before it: nothing known
        assert turn.latest is None


async def test_a_cancelled_waiter_or_holder_leaves_the_turn_free() -> None:
    turns = SessionTurns()
    holding = anyio.Event()

    async def hold_forever() -> None:
        async with turns.take("s", WAIT):
            holding.set()
            await anyio.sleep_forever()

    async with anyio.create_task_group() as group:
        group.start_soon(hold_forever)
        await holding.wait()
        with anyio.move_on_after(0.05):  # a waiter gives up
            async with turns.take("s", WAIT):
                pytest.fail("took a turn that was held")
        group.cancel_scope.cancel()  # the holder is cancelled
    with anyio.fail_after(1):
        async with turns.take("s", WAIT):
            pass
    assert len(turns) == 0


async def test_a_turn_is_waited_for_at_most_the_time_given() -> None:
    """A save queued behind others of its session (hundreds of writers of one
    session in one process) gives up after *within* with a conflict (409 and
    Retry-After), never holding its request past the time a store call may
    take; the holder keeps its turn, and nothing is left behind."""
    turns = SessionTurns()
    holding, release = anyio.Event(), anyio.Event()

    async def hold() -> None:
        async with turns.take("s", WAIT):
            holding.set()
            await release.wait()

    async with anyio.create_task_group() as group:
        group.start_soon(hold)
        await holding.wait()
        started = anyio.current_time()
        with anyio.fail_after(5), pytest.raises(SessionConflictError, match=r"held it for 0\.2s"):
            async with turns.take("s", 0.2):
                pytest.fail("took a turn that was held")
        assert 0.2 <= anyio.current_time() - started < 1
        assert len(turns) == 1  # the holder's turn, untouched
        release.set()
    assert len(turns) == 0
