"""The concurrency suite on the stores that need no server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from quart_session.stores.filesystem import FileSystemStore

from ..suites.concurrency import ConcurrencyBehaviour, ReadRaw, Served
from ..suites.race import InProcessRegenerateRace, RaceTarget, RegenerateRaceBehaviour
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


class TestMemoryRegenerateRace(InProcessRegenerateRace):
    """A memory store lives inside one process, so its race runs in one
    in-process worker: the order is set by sleeps, the same race."""

    @pytest.fixture
    def store_config(self) -> dict[str, Any]:
        return {"SESSION_TYPE": "memory"}

    @pytest.fixture
    def read_raw(self, race_target: RaceTarget) -> ReadRaw:
        app = race_target.app
        assert app is not None
        return memory_reader(lambda: app)


class TestFileSystemRegenerateRace(RegenerateRaceBehaviour):
    """Two workers sharing one folder, read back through the store's own code
    (a file holds a header before the payload, and may have expired)."""

    @pytest.fixture(scope="class")
    @classmethod
    def session_dir(cls, tmp_path_factory: pytest.TempPathFactory) -> Path:
        return tmp_path_factory.mktemp("race") / "sessions"

    @pytest.fixture(scope="class")
    @classmethod
    def worker_config(cls, session_dir: Path) -> dict[str, Any]:
        return {"SESSION_TYPE": "filesystem", "SESSION_FILE_DIR": str(session_dir)}

    @pytest.fixture
    def read_raw(self, session_dir: Path) -> ReadRaw:
        store = FileSystemStore(session_dir)

        async def read(key: str) -> bytes | None:
            record = await store.load(key)
            return None if record is None else bytes(record.payload)

        return read
