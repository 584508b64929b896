"""PostgreSQL, run through ``pg_ctl`` so that it can be restarted the way an
upgrade does. Faults: ``pg-restart-fast`` (``pg_ctl restart -m fast``: every
connection dropped, committed data kept) and ``table-lock-3s`` (``LOCK TABLE``
on the sessions table, held 3 s by a connection of our own).

PostgreSQL refuses to run as root: as root the server runs as ``postgres``.
"""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from tests.servers.processes import free_port, need_binary

from ..target import Fault

FAULT_SECONDS = 3.0
TABLE = "sessions"
SERVER_USER = "postgres"


def binaries() -> list[str]:
    # Debian keeps the server binaries out of PATH, one folder per major version.
    folders = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda f: int(f.split("/")[-2]))
    return folders[::-1]


class PostgresProcess:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.port = free_port()
        self.pg_ctl = need_binary("pg_ctl", "postgresql", binaries())
        self.user = SERVER_USER if os.geteuid() == 0 else None
        settings = ["listen_addresses=127.0.0.1", "unix_socket_directories=", "fsync=off"]
        self.options = " ".join(f"-c {s}" for s in [f"port={self.port}", *settings])

    def pg(self, *args: str, timeout: float = 120) -> None:
        # Output to a file, not a pipe: the server pg_ctl starts would hold
        # a pipe open, and reading it would never end.
        with open(self.folder / "pg_ctl.log", "ab") as out:
            subprocess.run(
                [self.pg_ctl, "-D", str(self.data), *args],
                cwd=self.folder,
                user=self.user,
                check=True,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
            )

    def init(self) -> None:
        initdb = need_binary("initdb", "postgresql", binaries())
        subprocess.run(
            [initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync"],
            cwd=self.folder,
            user=self.user,
            check=True,
            capture_output=True,
            timeout=120,
        )

    @property
    def log(self) -> str:
        return str(self.folder / "postgres.log")

    def start(self) -> None:
        self.pg("start", "-w", "-o", self.options, "-l", self.log)

    def restart_fast(self) -> None:
        self.pg("restart", "-w", "-m", "fast", "-o", self.options, "-l", self.log)

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.pg("stop", "-w", "-m", "immediate", timeout=60)

    async def _connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(
            host="127.0.0.1", port=self.port, user="postgres", database="postgres", ssl=False
        )

    async def _lock_table(self) -> None:
        connection = await self._connect()
        try:
            async with connection.transaction():
                await connection.execute(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE")
                await asyncio.sleep(FAULT_SECONDS)
        finally:
            await connection.close()

    def lock_table(self) -> None:
        asyncio.run(self._lock_table())

    async def _connections(self) -> int:
        connection = await self._connect()
        try:
            count = await connection.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
            )
        finally:
            await connection.close()
        return int(count) - 1  # less this query's own

    def connections(self) -> int:
        """Client backends connected now."""
        return asyncio.run(self._connections())


class PostgresTarget:
    name = "postgresql"

    def __init__(self, server: PostgresProcess) -> None:
        self.server = server

    def app_config(self) -> dict[str, Any]:
        url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.server.port}/postgres?ssl=disable"
        return {"SESSION_TYPE": "sqlalchemy", "SESSION_SQLALCHEMY_URI": url}

    def faults(self) -> Sequence[Fault]:
        return [
            Fault("pg-restart-fast", self.server.restart_fast),
            Fault("table-lock-3s", self.server.lock_table),
        ]

    def connections(self) -> int | None:
        return self.server.connections()


@contextmanager
def postgresql(tmp: Path) -> Iterator[PostgresTarget]:
    del tmp  # the server's folder must be open to its user: one of its own
    folder = Path(tempfile.mkdtemp(prefix="soak-postgres-"))
    server = PostgresProcess(folder)
    try:
        if server.user is not None:
            shutil.chown(folder, server.user)
        server.init()
        server.start()
        yield PostgresTarget(server)
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
