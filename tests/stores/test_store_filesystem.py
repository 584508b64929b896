from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from quart_session.stores.filesystem import FileSystemStore

from ..suites.contract import BothLoops, StoreContract


class TestFileSystemStore(BothLoops, StoreContract):
    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[FileSystemStore]:
        yield FileSystemStore(tmp_path / "sessions")


INCREMENTER = """
import asyncio, sys
from quart_session.stores.base import Outcome
from quart_session.stores.filesystem import FileSystemStore

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
