"""A real memcached for tests: session-scoped, on a free 127.0.0.1 port, stopped
after: the ``memcached_server`` fixture (a plugin of ``tests/conftest.py``); the
benchmarks start theirs with ``run_memcached``.

Also ``command_count``: round trips measured with the server's ``stats``
counters, read over a connection of its own.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from .processes import free_port, freeze, need_binary, running

#: ``stats`` counters that together count every get, set, touch and delete
#: command once, classic or meta (a meta get with a TTL counts as a touch only).
COMMAND_COUNTERS = ("cmd_get", "cmd_set", "cmd_touch", "delete_hits", "delete_misses")


@dataclass(frozen=True)
class MemcachedServer:
    host: str
    port: int
    process: subprocess.Popen[bytes]

    def stats(self) -> dict[str, str]:
        return memcached_stats(self.host, self.port)

    # An outage for OutageBehaviour that the server survives.
    async def stop(self) -> None:
        """Freeze the server: connections hang as they would on a dead host."""
        freeze(self.process.pid)

    async def start(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def command_count(self) -> int:
        """Commands the server has answered so far (stats itself not included)."""
        stats = self.stats()
        return sum(int(stats[name]) for name in COMMAND_COUNTERS)


def memcached_command(host: str, port: int, command: bytes, ends_with: bytes) -> bytes:
    """*command*'s whole reply (read until it ends with *ends_with*), over a
    connection of its own."""
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(command)
        reply = b""
        while not reply.endswith(ends_with):
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("memcached closed the connection")
            reply += chunk
    return reply


def memcached_stats(host: str, port: int) -> dict[str, str]:
    """The server's ``stats``, over a connection of their own (counted in them)."""
    reply = memcached_command(host, port, b"stats\r\n", b"END\r\n")
    lines = reply.decode().splitlines()[:-1]
    return {name: value for _, name, value in (line.split(" ", 2) for line in lines)}


@contextmanager
def run_memcached(log: Path, *options: str) -> Iterator[MemcachedServer]:
    """A server until the block ends, logging to *log*; *options* are added to ours."""
    binary = need_binary("memcached", "memcached")
    port = free_port()
    argv = [binary, "-l", "127.0.0.1", "-p", str(port), "-U", "0", *options]
    if os.geteuid() == 0:
        argv += ["-u", "nobody"]  # memcached refuses to run as root
    with running(argv, port, log) as process:
        yield MemcachedServer("127.0.0.1", port, process)


@pytest.fixture(scope="session", name="memcached_server")
def memcached_server_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MemcachedServer]:
    with run_memcached(tmp_path_factory.mktemp("memcached") / "memcached.log") as server:
        yield server
