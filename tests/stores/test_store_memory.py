from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from quart_session.stores.memory import MemoryStore

from ..suites.contract import BothLoops, StoreContract


class TestMemoryStore(BothLoops, StoreContract):
    @pytest.fixture
    async def store(self) -> AsyncIterator[MemoryStore]:
        yield MemoryStore()

    async def test_count_sees_only_live_records_with_the_prefix(self, store: MemoryStore) -> None:
        await store.save("session:a", b"1", 60, None)
        await store.save("other:b", b"1", 60, None)
        assert await store.count("session:") == 1
