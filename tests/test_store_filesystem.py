from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from quart_session.stores.filesystem import FileSystemStore

from .contract import StoreContract


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class TestFileSystemStore(StoreContract):
    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[FileSystemStore]:
        yield FileSystemStore(tmp_path / "sessions")
