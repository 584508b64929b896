"""A real PostgreSQL for tests: ``initdb`` in a temp dir, ``postgres`` on a free
127.0.0.1 port, session-scoped and stopped after: the ``postgres_server``
fixture (a plugin of ``tests/conftest.py``); the benchmarks start theirs with
``run_postgres``.

PostgreSQL refuses to run as root: when the tests run as root the server runs
as the ``postgres`` user, which owns the temp dir. Every statement is logged
(``log_statement=all``), so tests can see what reached the server.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from .processes import free_port, freeze, need_binary, running

SERVER_USER = "postgres"


@dataclass(frozen=True)
class PostgresServer:
    port: int
    log: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        # No SSL negotiation (the server has none): asyncpg's SSL-upgrade step
        # leaves a future nobody reads when a connect to a frozen server is
        # cancelled, which the test runner reports as an error (asyncpg #1310).
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres?ssl=disable"

    def log_size(self) -> int:
        return self.log.stat().st_size

    def statements_since(self, offset: int) -> list[str]:
        """Statements the server logged after *offset* in its log."""
        with open(self.log, "rb") as log:
            log.seek(offset)
            lines = log.read().decode(errors="replace").splitlines()
        return [line.split("LOG:  ", 1)[1] for line in lines if "LOG:  " in line]

    # An outage for OutageBehaviour that the server survives.
    async def stop(self) -> None:
        """Freeze the server: connections hang as they would on a dead host."""
        for pid in self._processes():  # the postmaster first: it forks no more
            with contextlib.suppress(ProcessLookupError):
                freeze(pid)

    async def start(self) -> None:
        for pid in reversed(self._processes()):
            signal_if_alive(pid, signal.SIGCONT)

    def _processes(self) -> list[int]:
        """The postmaster and its children (each leads a process group of its own)."""
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue  # gone meanwhile
            if parent == self.process.pid:
                children.append(int(stat.parent.name))
        return [self.process.pid, *children]


def signal_if_alive(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


@contextmanager
def run_postgres(*settings: str) -> Iterator[PostgresServer]:
    """A server until the block ends; *settings* (``name=value``) are added to ours."""
    # Debian keeps the server binaries out of PATH, one folder per major version.
    folders = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda f: int(f.split("/")[-2]))
    initdb = need_binary("initdb", "postgresql", folders[::-1])
    postgres = need_binary("postgres", "postgresql", folders[::-1])
    user = SERVER_USER if os.geteuid() == 0 else None
    # Not under pytest's tmp dir: its folders are private to root.
    folder = Path(tempfile.mkdtemp(prefix="quart-session-postgres-"))
    try:
        if user is not None:
            shutil.chown(folder, user)
        data = folder / "data"
        subprocess.run(
            [initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"],
            cwd=folder,
            user=user,
            check=True,
            capture_output=True,
            timeout=120,
        )
        port = free_port()
        argv = [postgres, "-D", str(data), "-p", str(port)]
        for setting in (
            "listen_addresses=127.0.0.1",
            "unix_socket_directories=",
            "fsync=off",
            "full_page_writes=off",
            "log_statement=all",
            *settings,
        ):
            argv += ["-c", setting]
        log = folder / "postgres.log"
        with running(
            argv,
            port,
            log,
            ready=lambda: b"ready to accept connections" in log.read_bytes(),
            cwd=folder,
            user=user,
        ) as process:
            yield PostgresServer(port, log, process)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session", name="postgres_server")
def postgres_server_fixture() -> Iterator[PostgresServer]:
    with run_postgres() as server:
        yield server
