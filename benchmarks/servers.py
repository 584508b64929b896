"""The stores' servers for a benchmark run, and the counters that see round trips.

Started the way the test suite starts them, memcached and PostgreSQL by its
own helpers: real binaries on free 127.0.0.1 ports in temp dirs, stopped at
the end.
"""

from __future__ import annotations

import socket
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.servers.memcached import MemcachedServer as Memcached
from tests.servers.memcached import run_memcached
from tests.servers.postgres import PostgresServer, run_postgres
from tests.servers.processes import free_port, need_binary, running


@contextmanager
def redis_server(tmp: Path) -> Iterator[int]:
    binary = need_binary("redis-server", "redis-server")
    port = free_port()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp)]
    argv += ["--save", "", "--appendonly", "no"]
    with running(argv, port, tmp / "redis.log"):
        yield port


@contextmanager
def memcached(tmp: Path) -> Iterator[Memcached]:
    # More memory than the default 64 MB, so that no session a run makes is evicted.
    with run_memcached(tmp / "memcached.log", "-m", "256") as server:
        yield server


@dataclass(frozen=True)
class Postgres:
    """The tests' PostgreSQL, with its logged statements counted."""

    server: PostgresServer

    @property
    def url(self) -> str:
        return self.server.url

    def log_size(self) -> int:
        return self.server.log_size()

    def statements_since(self, offset: int) -> int:
        """Statements the server ran (and logged) after *offset* in its log."""
        logged = self.server.statements_since(offset)
        return sum(line.startswith(("statement: ", "execute ")) for line in logged)


@contextmanager
def postgres() -> Iterator[Postgres]:
    """The tests' PostgreSQL (every statement logged, so it can be counted),
    with commits that do not wait for the disk."""
    with run_postgres("synchronous_commit=off") as server:
        yield Postgres(server)


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
