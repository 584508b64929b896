"""A real PostgreSQL for tests: ``initdb`` in a temp dir, ``postgres`` on a free
127.0.0.1 port, session-scoped and stopped after. Test modules import
``postgres_server_fixture`` to use the ``postgres_server`` fixture.

PostgreSQL refuses to run as root: when the tests run as root the server runs
as the ``postgres`` user, which owns the temp dir. Every statement is logged
(``log_statement=all``), so tests can see what reached the server.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .servers import free_port, need_binary, running

SERVER_USER = "postgres"


@dataclass(frozen=True)
class PostgresServer:
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def log_size(self) -> int:
        return self.log.stat().st_size

    def statements_since(self, offset: int) -> list[str]:
        """Statements the server logged after *offset* in its log."""
        with open(self.log, "rb") as log:
            log.seek(offset)
            lines = log.read().decode(errors="replace").splitlines()
        return [line.split("LOG:  ", 1)[1] for line in lines if "LOG:  " in line]


@pytest.fixture(scope="session", name="postgres_server")
def postgres_server_fixture() -> Iterator[PostgresServer]:
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
        )
        port = free_port()
        argv = [postgres, "-D", str(data), "-p", str(port)]
        for setting in (
            "listen_addresses=127.0.0.1",
            "unix_socket_directories=",
            "fsync=off",
            "full_page_writes=off",
            "log_statement=all",
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
        ):
            yield PostgresServer(port, log)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
