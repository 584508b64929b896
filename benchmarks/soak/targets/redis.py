"""Redis standalone, with AOF and ``appendfsync always``: an acknowledged
write is on disk before the client hears of it, so a ``SIGKILL`` loses none.

Faults: ``sigkill-restart`` (killed, restarted on the same port and folder,
replaying its AOF), ``sigstop-3s`` (frozen: connections hang as on a dead
host), ``client-pause-3s`` (``CLIENT PAUSE 3000 WRITE``: writes wait, reads go on).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis as redis_py
from tests.servers.processes import free_port, need_binary, port_open, stop

from ..target import Fault

FAULT_SECONDS = 3.0
START_TIMEOUT = 30.0


class RedisProcess:
    """One redis-server on a fixed port and folder, which can be killed and restarted."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        binary = need_binary("redis-server", "redis-server")
        self.argv = [binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        self.argv += ["--dir", str(folder), "--save", "", "--appendonly", "yes"]
        self.argv += ["--appendfsync", "always"]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.folder / "redis.log", "ab") as log:
            self.process = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not (port_open(self.port) and self._loaded()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)

    def _loaded(self) -> bool:
        """Whether the AOF is replayed (before that, commands answer LOADING)."""
        try:
            with self.client() as client:
                return bool(client.ping())
        except redis_py.RedisError:
            return False

    def client(self) -> redis_py.Redis:
        return redis_py.Redis(port=self.port, protocol=2, socket_timeout=5)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)

    # -- faults -------------------------------------------------------------------
    def kill_and_restart(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        assert self.process is not None
        self.process.wait(10)
        self.start()

    def freeze(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)
        try:
            time.sleep(FAULT_SECONDS)
        finally:
            os.kill(self.pid, signal.SIGCONT)

    def pause_clients(self) -> None:
        with self.client() as client:
            client.execute_command("CLIENT", "PAUSE", int(FAULT_SECONDS * 1000), "WRITE")
        time.sleep(FAULT_SECONDS)


class StandaloneTarget:
    name = "redis"

    def __init__(self, server: RedisProcess) -> None:
        self.server = server

    def app_config(self) -> dict[str, Any]:
        return {"SESSION_TYPE": "redis", "SESSION_URI": f"redis://127.0.0.1:{self.server.port}/0"}

    def faults(self) -> Sequence[Fault]:
        return [
            Fault("sigkill-restart", self.server.kill_and_restart),
            Fault("sigstop-3s", self.server.freeze),
            Fault("client-pause-3s", self.server.pause_clients),
        ]

    def connections(self) -> int | None:
        with self.server.client() as client:
            # Less the connection this INFO came on.
            return int(client.info("clients")["connected_clients"]) - 1


@contextmanager
def standalone(tmp: Path) -> Iterator[StandaloneTarget]:
    folder = tmp / "redis"
    folder.mkdir()
    server = RedisProcess(folder)
    try:
        server.start()
        yield StandaloneTarget(server)
    finally:
        server.stop()
