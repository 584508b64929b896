from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from quart_session.stores.filesystem import FileSystemStore
from quart_session.stores.sealed import SealedStore

from ..suites.contract import KEY, BothLoops, StoreContract, create


class TestFileSystemStore(BothLoops, StoreContract):
    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[FileSystemStore]:
        yield FileSystemStore(tmp_path / "sessions")

    async def test_a_load_without_refresh_leaves_the_file_alone(
        self, store: FileSystemStore, tmp_path: Path
    ) -> None:
        session_file = tmp_path / "sessions" / hashlib.sha256(KEY.encode()).hexdigest()
        await create(store, ttl=60)
        before = session_file.stat()
        record = await store.load(KEY)
        assert record is not None and not record.refreshed
        assert record.expires_at == before.st_mtime  # the deadline is the file's mtime
        after = session_file.stat()
        # No utime (which moves the ctime too), no rewrite (a new inode).
        assert (after.st_ino, after.st_mtime_ns, after.st_ctime_ns) == (
            before.st_ino,
            before.st_mtime_ns,
            before.st_ctime_ns,
        )

    @pytest.mark.parametrize("move", ["load", "expire"])
    async def test_a_refresh_and_expire_are_a_utime_of_the_same_file(
        self, store: FileSystemStore, tmp_path: Path, move: str
    ) -> None:
        session_file = tmp_path / "sessions" / hashlib.sha256(KEY.encode()).hexdigest()
        await create(store, ttl=60)
        before = session_file.stat()
        if move == "load":
            record = await store.load(KEY, refresh_ttl=120)
            assert record is not None and record.refreshed
        else:
            assert await store.expire(KEY, 120)
        after = session_file.stat()
        assert after.st_ino == before.st_ino  # a utime of the same file, not a rewrite
        assert after.st_size == before.st_size
        assert 115 < after.st_mtime - time.time() <= 120


class TestSealedFileSystemStore(BothLoops, StoreContract):
    """The contract through SealedStore: loads report the inner store's
    expires_at, and expire passes through."""

    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[SealedStore]:
        yield SealedStore(FileSystemStore(tmp_path / "sessions"), [bytes(range(32))])


INCREMENTER = """
import asyncio, sys
from quart_session.stores.base import Outcome
from quart_session.stores.filesystem import FileSystemStore
from quart_session.stores.sealed import SealedStore

async def main(folder: str, times: int) -> None:
    store = FileSystemStore(folder)
    for _ in range(times):
        while True:  # compare-and-set retry loop: bounded by the other writers finishing
            record = await store.load("session:counter")
            assert record is not None
            result = await store.save(
                "session:counter", b"%d" % (int(record.payload) + 1), 60, record.version
            )
            if not isinstance(result, Outcome):
                break

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def test_worker_processes_sharing_the_folder_lose_no_update(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    store = FileSystemStore(folder)
    asyncio.run(store.save("session:counter", b"0", 60, None))
    workers, times = 4, 50
    processes = [
        subprocess.Popen([sys.executable, "-c", INCREMENTER, str(folder), str(times)])
        for _ in range(workers)
    ]
    assert [p.wait(timeout=120) for p in processes] == [0] * workers
    record = asyncio.run(store.load("session:counter"))
    assert record is not None
    assert int(record.payload) == workers * times
