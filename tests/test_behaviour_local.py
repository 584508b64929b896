"""The behaviour suite on the stores that need no server."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from quart import Quart
from quart_trio import QuartTrio

from .behaviour import ReadRaw, SessionBehaviour


def filesystem_config(tmp_path: Path) -> dict[str, Any]:
    return {"SESSION_TYPE": "filesystem", "SESSION_FILE_DIR": str(tmp_path / "sessions")}


def filesystem_reader(tmp_path: Path) -> ReadRaw:
    """Reads a record the way the store keeps it: one file per SHA-256 of the key."""

    async def read(key: str) -> bytes | None:
        path = tmp_path / "sessions" / hashlib.sha256(key.encode()).hexdigest()
        return path.read_bytes() if path.exists() else None

    return read


class TestMemoryBehaviour(SessionBehaviour):
    @pytest.fixture
    def store_config(self) -> dict[str, Any]:
        return {"SESSION_TYPE": "memory"}

    @pytest.fixture
    def read_raw(self, built_apps: list[Quart]) -> ReadRaw:
        # A memory store lives in its app: read through the newest app's store.
        async def read(key: str) -> bytes | None:
            record = await built_apps[-1].session_interface.store.load(key)  # type: ignore[attr-defined]
            return None if record is None else bytes(record.payload)

        return read


class TestFileSystemBehaviour(SessionBehaviour):
    @pytest.fixture
    def store_config(self, tmp_path: Path) -> dict[str, Any]:
        return filesystem_config(tmp_path)

    @pytest.fixture
    def read_raw(self, tmp_path: Path) -> ReadRaw:
        return filesystem_reader(tmp_path)


class TestFileSystemBehaviourOnTrio(TestFileSystemBehaviour):
    """The same suite in a QuartTrio app on the Trio event loop."""

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "trio"

    @pytest.fixture
    def app_class(self) -> type[Quart]:
        return QuartTrio


class TestMemoryBehaviourOnTrio(TestMemoryBehaviour):
    @pytest.fixture
    def anyio_backend(self) -> str:
        return "trio"

    @pytest.fixture
    def app_class(self) -> type[Quart]:
        return QuartTrio
