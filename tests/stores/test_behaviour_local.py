"""The behaviour suite on the stores that need no server."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from quart import Quart

from ..suites.behaviour import AllRecords, OnTrio, ReadRaw, SessionBehaviour
from ..suites.encryption import EncryptionBehaviour
from ..suites.lifetimes import LifetimeBehaviour, ReadTtl
from ..suites.users import UserBehaviour


class FileSystemFixtures:
    """The filesystem store in the test's tmp dir, read the way it keeps a
    record: one file per SHA-256 of the key."""

    @pytest.fixture
    def store_config(self, tmp_path: Path) -> dict[str, Any]:
        return {"SESSION_TYPE": "filesystem", "SESSION_FILE_DIR": str(tmp_path / "sessions")}

    @pytest.fixture
    def read_raw(self, tmp_path: Path) -> ReadRaw:
        async def read(key: str) -> bytes | None:
            path = tmp_path / "sessions" / hashlib.sha256(key.encode()).hexdigest()
            return path.read_bytes() if path.exists() else None

        return read

    @pytest.fixture
    def all_records(self, tmp_path: Path) -> AllRecords:
        """Every file in the folder: its name and the key its header holds
        (base64), and its whole content."""

        async def every() -> list[tuple[bytes, bytes]]:
            found = []
            for path in (tmp_path / "sessions").rglob("*"):
                if not path.is_file():
                    continue
                content = path.read_bytes()
                fields = content.partition(b"\n")[0].split(b" ")
                key = base64.urlsafe_b64decode(fields[2]) if len(fields) == 3 else b""
                found.append((path.name.encode() + b" " + key, content))
            return found

        return every


def memory_reader(app: Callable[[], Quart]) -> ReadRaw:
    """Reads through the store of ``app()``, called at each read: a memory store
    lives in its app, and the app may be built after the reader."""

    async def read(key: str) -> bytes | None:
        store = app().session_interface.store  # type: ignore[attr-defined]
        # Below any wrapper (encryption, call counting): the bytes as kept.
        record = await getattr(store, "inner", store).load(key)
        return None if record is None else bytes(record.payload)

    return read


def memory_records(app: Callable[[], Quart]) -> AllRecords:
    """Every key and payload in the memory store of ``app()``."""

    async def every() -> list[tuple[bytes, bytes]]:
        store = app().session_interface.store  # type: ignore[attr-defined]
        kept = getattr(store, "inner", store)  # below any wrapper: the bytes as kept
        return [(key.encode(), entry[0]) for key, entry in kept._records.items()]

    return every


class TestMemoryBehaviour(EncryptionBehaviour, SessionBehaviour):
    @pytest.fixture
    def store_config(self) -> dict[str, Any]:
        return {"SESSION_TYPE": "memory"}

    @pytest.fixture
    def read_raw(self, built_apps: list[Quart]) -> ReadRaw:
        return memory_reader(lambda: built_apps[-1])

    @pytest.fixture
    def all_records(self, built_apps: list[Quart]) -> AllRecords:
        return memory_records(lambda: built_apps[-1])


class TestFileSystemBehaviour(FileSystemFixtures, EncryptionBehaviour, SessionBehaviour):
    pass


class TestFileSystemBehaviourOnTrio(OnTrio, TestFileSystemBehaviour):
    """The same suite in a QuartTrio app on the Trio event loop."""


class TestMemoryBehaviourOnTrio(OnTrio, TestMemoryBehaviour):
    pass


class FileSystemTtl:
    @pytest.fixture
    def read_ttl(self, tmp_path: Path) -> ReadTtl:
        """Seconds until the file's deadline (its modification time)."""

        async def read(key: str) -> float | None:
            path = tmp_path / "sessions" / hashlib.sha256(key.encode()).hexdigest()
            if not path.exists():
                return None
            left = path.stat().st_mtime - time.time()
            return left if left > 0 else None

        return read


def memory_ttl(app: Callable[[], Quart]) -> ReadTtl:
    """Seconds until the deadline the memory store of ``app()`` keeps for a key."""

    async def read(key: str) -> float | None:
        store = app().session_interface.store  # type: ignore[attr-defined]
        entry = getattr(store, "inner", store)._records.get(key)
        left = None if entry is None else entry[2] - time.monotonic()
        return left if left is not None and left > 0 else None

    return read


class TestMemoryLifetimes(LifetimeBehaviour):
    @pytest.fixture
    def store_config(self) -> dict[str, Any]:
        return {"SESSION_TYPE": "memory"}

    @pytest.fixture
    def read_raw(self, built_apps: list[Quart]) -> ReadRaw:
        return memory_reader(lambda: built_apps[-1])

    @pytest.fixture
    def read_ttl(self, built_apps: list[Quart]) -> ReadTtl:
        return memory_ttl(lambda: built_apps[-1])


class TestFileSystemLifetimes(FileSystemFixtures, FileSystemTtl, LifetimeBehaviour):
    pass


class TestFileSystemLifetimesOnTrio(OnTrio, TestFileSystemLifetimes):
    pass


class TestMemoryLifetimesOnTrio(OnTrio, TestMemoryLifetimes):
    pass


class TestMemoryUsers(UserBehaviour):
    @pytest.fixture
    def store_config(self) -> dict[str, Any]:
        return {"SESSION_TYPE": "memory"}

    @pytest.fixture
    def read_raw(self, built_apps: list[Quart]) -> ReadRaw:
        return memory_reader(lambda: built_apps[-1])

    @pytest.fixture
    def all_records(self, built_apps: list[Quart]) -> AllRecords:
        return memory_records(lambda: built_apps[-1])


class TestFileSystemUsers(FileSystemFixtures, UserBehaviour):
    pass
