"""The concurrency suite on the stores that need no server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .concurrency import ConcurrencyBehaviour, ReadRaw, Served
from .test_behaviour_local import filesystem_config, filesystem_reader


class TestMemoryConcurrency(ConcurrencyBehaviour):
    @pytest.fixture
    def store_config(self) -> dict[str, Any]:
        return {"SESSION_TYPE": "memory"}

    @pytest.fixture
    def read_raw(self, served: Served) -> ReadRaw:
        async def read(key: str) -> bytes | None:
            record = await served.app.session_interface.store.load(key)  # type: ignore[attr-defined]
            return None if record is None else bytes(record.payload)

        return read


class TestFileSystemConcurrency(ConcurrencyBehaviour):
    @pytest.fixture
    def store_config(self, tmp_path: Path) -> dict[str, Any]:
        return filesystem_config(tmp_path)

    @pytest.fixture
    def read_raw(self, tmp_path: Path) -> ReadRaw:
        return filesystem_reader(tmp_path)
