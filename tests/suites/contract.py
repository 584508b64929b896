"""The store contract suite: every store's test class inherits ``StoreContract``.

A subclass provides an async ``store`` fixture yielding a fresh, empty store
(and cleaning up after). A new store is correct when it passes this suite.

Also ``ExpiredLeftovers``, for stores whose expired records stay stored until
purged (or until the database's lazy TTL removes them), and the event loops a
store runs the suites on: ``TrioLoop``, ``BothLoops``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Sequence
from typing import Protocol

import anyio
import pytest

from quart_session.stores.base import Outcome, Record, Store, Version

KEY = "session:contract-key"


async def create(store: Store, key: str = KEY, payload: bytes = b"one", ttl: int = 60) -> object:
    version = await store.save(key, payload, ttl, None)
    assert not isinstance(version, Outcome), f"creating {key!r} failed: {version}"
    return version


@pytest.mark.anyio
class StoreContract:
    async def test_missing_key_loads_none(self, store: Store) -> None:
        assert await store.load(KEY) is None

    async def test_created_record_loads_with_its_version(self, store: Store) -> None:
        version = await create(store)
        assert await store.load(KEY) == Record(b"one", version)  # type: ignore[arg-type]

    async def test_creating_an_existing_key_conflicts(self, store: Store) -> None:
        await create(store)
        assert await store.save(KEY, b"two", 60, None) is Outcome.CONFLICT
        record = await store.load(KEY)
        assert record is not None and record.payload == b"one"

    async def test_save_with_current_version_writes_and_changes_version(self, store: Store) -> None:
        first = await create(store)
        second = await store.save(KEY, b"two", 60, first)  # type: ignore[arg-type]
        assert not isinstance(second, Outcome)
        assert second != first
        assert await store.load(KEY) == Record(b"two", second)

    async def test_save_with_stale_version_conflicts_and_changes_nothing(
        self, store: Store
    ) -> None:
        first = await create(store)
        second = await store.save(KEY, b"two", 60, first)  # type: ignore[arg-type]
        assert await store.save(KEY, b"three", 60, first) is Outcome.CONFLICT  # type: ignore[arg-type]
        assert await store.load(KEY) == Record(b"two", second)  # type: ignore[arg-type]

    async def test_save_after_delete_is_gone_and_does_not_resurrect(self, store: Store) -> None:
        version = await create(store)
        await store.delete(KEY)
        assert await store.save(KEY, b"two", 60, version) is Outcome.GONE  # type: ignore[arg-type]
        assert await store.load(KEY) is None

    async def test_take_returns_the_record_and_removes_it_for_good(self, store: Store) -> None:
        if not store.can_take:
            with pytest.raises(NotImplementedError):
                await store.take(KEY)
            return
        version = await create(store)
        assert await store.take(KEY) == Record(b"one", version)  # type: ignore[arg-type]
        assert await store.load(KEY) is None
        assert await store.take(KEY) is None
        assert await store.save(KEY, b"two", 60, version) is Outcome.GONE  # type: ignore[arg-type]

    async def test_take_ignores_an_expired_record(self, store: Store) -> None:
        if not store.can_take:
            pytest.skip(f"the {store.name} store cannot take records")
        await create(store, ttl=1)
        await anyio.sleep(1.6)
        assert await store.take(KEY) is None

    async def test_delete_of_missing_key_is_fine(self, store: Store) -> None:
        await store.delete(KEY)
        assert await store.load(KEY) is None

    async def test_record_expires_after_its_ttl(self, store: Store) -> None:
        await create(store, ttl=1)
        await anyio.sleep(2.1)
        assert await store.load(KEY) is None
        assert await store.load(KEY, refresh_ttl=60) is None

    async def test_load_with_refresh_extends_the_ttl(self, store: Store) -> None:
        version = await create(store, ttl=2)
        await anyio.sleep(1.0)
        assert await store.load(KEY, refresh_ttl=5) == Record(b"one", version)  # type: ignore[arg-type]
        await anyio.sleep(2.0)
        record = await store.load(KEY)
        assert record is not None and record.version == version

    async def test_load_without_refresh_ttl_never_refreshes(self, store: Store) -> None:
        # memcached's clock ticks once a second: a 3 s record lives 2 to 3 s there.
        await create(store, ttl=3)
        await anyio.sleep(1.0)
        record = await store.load(KEY, None)
        assert record is not None and not record.refreshed
        await anyio.sleep(2.6)  # past the first deadline: nothing moved it
        assert await store.load(KEY) is None

    async def test_a_load_with_refresh_always_refreshes(self, store: Store) -> None:
        """However recently the record was written or refreshed: when to
        refresh is the engine's choice (SESSION_REFRESH_AFTER), not the store's."""
        version = await create(store, ttl=2)
        for _ in range(2):  # just saved, then just refreshed
            record = await store.load(KEY, refresh_ttl=5)
            assert record == Record(b"one", version) and record.refreshed  # type: ignore[arg-type]
        await anyio.sleep(3.0)  # past the first deadline
        record = await store.load(KEY)
        assert record is not None and record.version == version and not record.refreshed

    async def test_a_refresh_shortens_a_record_saved_under_a_longer_lifetime(
        self, store: Store
    ) -> None:
        """A lifetime shortened in the configuration applies to sessions saved
        before, at their next read, on every store."""
        version = await create(store, ttl=600)
        record = await store.load(KEY, refresh_ttl=2)
        assert record == Record(b"one", version) and record.refreshed  # type: ignore[arg-type]
        await anyio.sleep(3.1)  # memcached's clock ticks once a second
        assert await store.load(KEY) is None

    async def test_loads_report_when_the_record_expires(self, store: Store) -> None:
        """Where a refresh costs a write, every load says when the record
        expires (the engine refreshes only once that is near); free stores
        may leave it out."""

        async def expires_at(ttl: int, operation: Awaitable[Record | None]) -> None:
            before = time.time()
            record = await operation
            after = time.time()
            assert record is not None
            if record.expires_at is None:
                assert store.refresh_is_free, f"the {store.name} store must report expires_at"
                return
            assert before + ttl - 1.5 < record.expires_at < after + ttl + 0.5

        await create(store, ttl=60)
        await expires_at(60, store.load(KEY))
        await expires_at(600, store.load(KEY, refresh_ttl=600))  # the new deadline
        await expires_at(600, store.load(KEY))  # as stored
        assert await store.expire(KEY, 300)
        await expires_at(300, store.load(KEY))

    async def test_expire_extends_a_record_past_its_first_deadline(self, store: Store) -> None:
        version = await create(store, ttl=2)
        assert await store.expire(KEY, 6) is True
        await anyio.sleep(3.0)  # past the first deadline (memcached: 1 to 2 s)
        record = await store.load(KEY)
        assert record == Record(b"one", version) and not record.refreshed  # type: ignore[arg-type]

    async def test_expire_can_shorten_a_record(self, store: Store) -> None:
        """A session near its absolute end, or with a shorter lifetime of its own."""
        await create(store, ttl=600)
        assert await store.expire(KEY, 2) is True
        assert await store.load(KEY) is not None
        await anyio.sleep(3.1)  # memcached's clock ticks once a second
        assert await store.load(KEY) is None

    async def test_expire_keeps_payload_and_version(self, store: Store) -> None:
        version = await create(store)
        assert await store.expire(KEY, 120) is True
        assert await store.load(KEY) == Record(b"one", version)  # type: ignore[arg-type]
        # A request that loaded the record before the expire still saves over it.
        saved = await store.save(KEY, b"two", 60, version)  # type: ignore[arg-type]
        assert not isinstance(saved, Outcome)
        assert await store.load(KEY) == Record(b"two", saved)

    async def test_expire_of_a_missing_or_expired_record_is_false_and_creates_nothing(
        self, store: Store
    ) -> None:
        assert await store.expire(KEY, 60) is False
        assert await store.load(KEY) is None
        version = await create(store, key="session:expired", ttl=1)
        await anyio.sleep(2.1)
        assert await store.expire("session:expired", 60) is False
        assert await store.load("session:expired") is None
        # Nothing revived: the old version finds the record gone.
        assert await store.save("session:expired", b"x", 60, version) is Outcome.GONE  # type: ignore[arg-type]

    async def test_expires_at_reports_a_live_record_s_deadline(self, store: Store) -> None:
        """What listing a user's sessions reads (every store that can keep a
        user's index: memcached cannot, and reports nothing)."""
        assert await store.expires_at(KEY) is None
        await create(store, ttl=600)
        deadline = await store.expires_at(KEY)
        if store.name == "memcached":
            assert deadline is None
            return
        assert deadline is not None and abs(deadline - (time.time() + 600)) < 2
        await store.expire(KEY, 30)
        deadline = await store.expires_at(KEY)
        assert deadline is not None and abs(deadline - (time.time() + 30)) < 2
        await store.delete(KEY)
        assert await store.expires_at(KEY) is None

    async def test_load_with_refresh_of_a_missing_key_creates_nothing(self, store: Store) -> None:
        assert await store.load(KEY, refresh_ttl=60) is None
        assert await store.load(KEY) is None

    async def test_any_bytes_and_large_payloads_round_trip(self, store: Store) -> None:
        payload = bytes(range(256)) * 400  # 100 KiB, every byte value
        await create(store, payload=payload)
        record = await store.load(KEY)
        assert record is not None and record.payload == payload

    @pytest.mark.parametrize("prefix", ["", "weird prefix/ü:\n", "x" * 300])
    async def test_keys_with_any_prefix_work(self, store: Store, prefix: str) -> None:
        key = prefix + "abcDEF-_0123456789"
        await create(store, key=key)
        assert (await store.load(key)) is not None
        assert await store.load(KEY) is None
        await store.delete(key)
        assert await store.load(key) is None

    async def test_only_one_of_many_concurrent_writers_wins(self, store: Store) -> None:
        version = await create(store)
        results: list[object] = []

        async def write(n: int) -> None:
            results.append(await store.save(KEY, b"w%d" % n, 60, version))  # type: ignore[arg-type]

        async with anyio.create_task_group() as group:
            for n in range(20):
                group.start_soon(write, n)
        winners = [r for r in results if not isinstance(r, Outcome)]
        assert len(winners) == 1
        assert results.count(Outcome.CONFLICT) == 19
        record = await store.load(KEY)
        assert record is not None and record.version == winners[0]

    async def test_only_one_of_many_concurrent_creators_wins(self, store: Store) -> None:
        results: list[object] = []

        async def write(n: int) -> None:
            results.append(await store.save(KEY, b"c%d" % n, 60, None))

        async with anyio.create_task_group() as group:
            for n in range(20):
                group.start_soon(write, n)
        assert sum(not isinstance(r, Outcome) for r in results) == 1

    async def test_purge_expired_removes_only_expired_records(self, store: Store) -> None:
        await create(store, key="session:short", ttl=1)
        await create(store, key="session:long", ttl=60)
        await anyio.sleep(2.1)
        # Stores that do not need purging have nothing to purge.
        assert await store.purge_expired() == (1 if store.needs_purge else 0)
        assert await store.load("session:short") is None
        assert await store.load("session:long") is not None

    async def test_count_is_offered_where_can_count_says(self, store: Store) -> None:
        if not store.can_count:
            with pytest.raises(NotImplementedError):
                await store.count("session:")
            return
        assert await store.count("session:") == 0
        await create(store, key="session:a")
        await create(store, key="session:b")
        await create(store, key="other:c")
        await create(store, key="session:short", ttl=1)
        await anyio.sleep(1.6)
        assert await store.count("session:") == 2
        assert await store.count("other:") == 1

    async def test_ping_succeeds_on_a_reachable_store(self, store: Store) -> None:
        await store.ping()


class TrioLoop:
    """The suite on the Trio event loop (asyncio is the default)."""

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "trio"


class BothLoops:
    """The suite once on asyncio, once on Trio: for stores that run on both."""

    @pytest.fixture(params=["asyncio", "trio"])
    def anyio_backend(self, request: pytest.FixtureRequest) -> str:
        return str(request.param)


class Leftovers(Protocol):
    """Records past their expiry that the database still holds."""

    async def plant(self, keys: Sequence[str]) -> list[Version]:
        """Leave a record under each key, expired by the time this returns;
        their versions, in order."""
        ...

    async def stored(self, key: str) -> bool:
        """Whether the database still holds a record (expired or not) under *key*."""
        ...


@pytest.mark.anyio
class ExpiredLeftovers:
    """A subclass provides ``store`` and ``leftovers`` (a ``Leftovers`` on it)."""

    async def test_expired_leftovers_are_ignored_until_purged(
        self, store: Store, leftovers: Leftovers
    ) -> None:
        version, _ = await leftovers.plant([KEY, "session:b"])
        assert await store.load(KEY) is None
        assert await store.load(KEY, refresh_ttl=60) is None
        assert await store.expire(KEY, 60) is False
        assert await store.save(KEY, b"new", 60, version) is Outcome.GONE
        assert await store.count("session:") == 0
        assert await leftovers.stored(KEY)  # ignored, not removed
        fresh = await create(store, payload=b"fresh")  # the leftover does not block it
        assert await store.load(KEY) == Record(b"fresh", fresh)  # type: ignore[arg-type]
        assert await leftovers.stored("session:b")  # ignored, not removed, until purged
        assert await store.purge_expired() == 1
        assert not await leftovers.stored("session:b")
