"""The stores' servers for a benchmark run, and the counters that see round trips.

Started the way the test suite starts them (``tests/servers.py``): real
binaries on free 127.0.0.1 ports in a temp dir, stopped at the end.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.servers import free_port, need_binary, running

#: ``stats`` counters that together count every get, set, touch and delete
#: command once, classic or meta (a meta get with a TTL counts as a touch only).
MEMCACHED_COUNTERS = ("cmd_get", "cmd_set", "cmd_touch", "delete_hits", "delete_misses")


@contextmanager
def redis_server(tmp: Path) -> Iterator[int]:
    binary = need_binary("redis-server", "redis-server")
    port = free_port()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp)]
    argv += ["--save", "", "--appendonly", "no"]
    with running(argv, port, tmp / "redis.log"):
        yield port


@dataclass(frozen=True)
class Memcached:
    port: int

    def command_count(self) -> int:
        """Commands answered so far, from ``stats`` on a connection of its own."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            sock.sendall(b"stats\r\n")
            reply = b""
            while not reply.endswith(b"END\r\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("memcached closed the stats connection")
                reply += chunk
        stats = dict(line.split(" ", 2)[1:] for line in reply.decode().splitlines()[:-1])
        return sum(int(stats[name]) for name in MEMCACHED_COUNTERS)


@contextmanager
def memcached(tmp: Path) -> Iterator[Memcached]:
    binary = need_binary("memcached", "memcached")
    port = free_port()
    argv = [binary, "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-m", "256"]
    if os.geteuid() == 0:
        argv += ["-u", "nobody"]  # memcached refuses to run as root
    with running(argv, port, tmp / "memcached.log"):
        yield Memcached(port)


@dataclass(frozen=True)
class Postgres:
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def log_size(self) -> int:
        return self.log.stat().st_size

    def statements_since(self, offset: int) -> int:
        """Statements the server ran (and logged) after *offset* in its log."""
        with open(self.log, "rb") as log:
            log.seek(offset)
            text = log.read()
        return text.count(b"LOG:  statement: ") + text.count(b"LOG:  execute ")


@contextmanager
def postgres() -> Iterator[Postgres]:
    """PostgreSQL in a temp dir; as the ``postgres`` user when we are root
    (it refuses to run as root), every statement logged so it can be counted."""
    folders = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda f: int(f.split("/")[-2]))
    initdb = need_binary("initdb", "postgresql", folders[::-1])
    server = need_binary("postgres", "postgresql", folders[::-1])
    user = "postgres" if os.geteuid() == 0 else None
    folder = Path(tempfile.mkdtemp(prefix="quart-session-bench-pg-"))
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
        argv = [server, "-D", str(data), "-p", str(port)]
        for setting in (
            "listen_addresses=127.0.0.1",
            "unix_socket_directories=",
            "fsync=off",
            "synchronous_commit=off",
            "full_page_writes=off",
            "log_statement=all",
        ):
            argv += ["-c", setting]
        log = folder / "postgres.log"
        ready = lambda: b"ready to accept connections" in log.read_bytes()  # noqa: E731
        with running(argv, port, log, ready=ready, cwd=folder, user=user):
            yield Postgres(port, log)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class RedisMonitor:
    """Commands clients sent to a Redis server, seen through ``MONITOR``.

    ``INFO commandstats`` also counts what a Lua script runs inside the server
    (a save would look like EVALSHA + GETRANGE + SET); MONITOR marks those
    ``[0 lua]``, so only real round trips are counted.
    """

    END = b"bench-monitor-end"

    def __init__(self, port: int) -> None:
        self.port = port
        self.commands: Counter[str] = Counter()
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self._sock.sendall(b"MONITOR\r\n")
        self._buffer = b""
        if self._line() != b"+OK":
            raise RuntimeError("MONITOR refused")
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _line(self) -> bytes:
        while b"\r\n" not in self._buffer:
            chunk = self._sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the MONITOR connection")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\r\n", 1)
        return line

    def _read(self) -> None:
        while True:
            line = self._line()
            if self.END in line:
                return
            origin, _, command = line.partition(b"] ")
            if origin.endswith(b" lua") or not command:
                continue
            self.commands[command.split(b'"', 2)[1].decode().upper()] += 1

    def stop(self) -> Counter[str]:
        """The commands seen so far; the monitor ends."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as sock:
            sock.sendall(b"ECHO " + self.END + b"\r\n")
            sock.recv(1024)
        self._thread.join(30)
        self._sock.close()
        # The end marker itself is left out: _read returns before counting it.
        return self.commands
