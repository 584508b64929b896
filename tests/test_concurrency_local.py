"""The concurrency suite on the stores that need no server."""

from __future__ import annotations

from typing import Any

import pytest

from .concurrency import ConcurrencyBehaviour, ReadRaw, Served
from .test_behaviour_local import FileSystemFixtures, memory_reader


class TestMemoryConcurrency(ConcurrencyBehaviour):
    @pytest.fixture
    def store_config(self) -> dict[str, Any]:
        return {"SESSION_TYPE": "memory"}

    @pytest.fixture
    def read_raw(self, served: Served) -> ReadRaw:
        return memory_reader(lambda: served.app)


class TestFileSystemConcurrency(FileSystemFixtures, ConcurrencyBehaviour):
    pass
