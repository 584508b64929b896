"""A MongoDB stand-in for tests: nx-27017 (MongoDB's wire protocol on SQLite),
session-scoped, on a free 127.0.0.1 port with its database in a temp dir.
The ``mongo_server`` fixture is a plugin of ``tests/conftest.py``.

No real MongoDB can be installed here; what nx-27017 does differently is
listed in the README. Also ``CommandCounter``: round trips counted with
PyMongo's command monitoring, and ``stored_date``: a date as nx-27017 gives it back.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient, monitoring

from .processes import free_port, running


@dataclass(frozen=True)
class MongoServer:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}"


@dataclass
class CommandCounter(monitoring.CommandListener):
    """Names of the commands a client sent, in order (one command, one round trip)."""

    commands: list[str] = field(default_factory=list)

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.commands.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def stored_date(value: object) -> datetime:
    """A date the store wrote, read back raw, as an aware UTC datetime.

    MongoDB gives back a datetime. nx-27017 gives back the text
    ``"2026-11-30 02:02:46.896000"`` for a date that ``$set`` wrote into an
    existing document (a refresh, a save over a session): its filters still
    compare it as a date, so only a raw read like this one sees the difference.
    """
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime), f"not a date: {value!r}"
    return value.replace(tzinfo=UTC)


def nx_27017() -> str:
    """The nx-27017 script of this virtualenv (it is a test dependency)."""
    binary = Path(sys.executable).with_name("nx-27017")
    if not binary.exists():
        pytest.fail("nx-27017 not found: pip install -e '.[test]' (./scripts/test does)")
    return str(binary)


def nx_27017_command(port: int, folder: Path) -> list[str]:
    """nx-27017 on 127.0.0.1:*port*, its data, log and pid file in *folder*."""
    return [
        nx_27017(),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--data-dir", str(folder / "data"),
        "--log-file", str(folder / "nx.log"),
        "--pid-file", str(folder / "nx.pid"),
    ]  # fmt: skip


@pytest.fixture(scope="session", name="mongo_server")
def mongo_server_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MongoServer]:
    folder = tmp_path_factory.mktemp("nx-27017")
    port = free_port()
    argv = nx_27017_command(port, folder)
    with running(argv, port, folder / "output.log", cwd=folder) as process:
        yield MongoServer(port, process)


@pytest.fixture
async def mongo_client(mongo_server: MongoServer) -> AsyncIterator[AsyncMongoClient[Any]]:
    """A plain client of the test's own on the server."""
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_server.uri)
    yield client
    await client.close()
