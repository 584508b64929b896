"""memcached, and its one fault: ``restart`` (killed and started again on the
same port). Every session is lost, whole, by memcached's nature; nothing else
may break.
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

from tests.servers.memcached import memcached_stats
from tests.servers.processes import free_port, need_binary, port_open, stop

from ..target import Fault

START_TIMEOUT = 30.0
#: More memory than the default 64 MB, so that no session a run makes is evicted.
MEMORY_MB = "256"


class MemcachedProcess:
    def __init__(self, folder: Path) -> None:
        self.log = folder / "memcached.log"
        self.port = free_port()
        binary = need_binary("memcached", "memcached")
        self.argv = [binary, "-l", "127.0.0.1", "-p", str(self.port), "-U", "0", "-m", MEMORY_MB]
        if os.geteuid() == 0:
            self.argv += ["-u", "nobody"]  # memcached refuses to run as root
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not port_open(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"memcached did not start on port {self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)

    def restart(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        self.start()

    def connections(self) -> int:
        """Open client connections, less the one this ``stats`` came on."""
        # memcached counts its listening socket too.
        return int(memcached_stats("127.0.0.1", self.port)["curr_connections"]) - 2


class MemcachedTarget:
    name = "memcached"

    def __init__(self, server: MemcachedProcess) -> None:
        self.server = server

    def app_config(self) -> dict[str, Any]:
        return {"SESSION_TYPE": "memcached", "SESSION_URI": f"127.0.0.1:{self.server.port}"}

    def faults(self) -> Sequence[Fault]:
        return [Fault("restart", self.server.restart, loses_data=True)]

    def connections(self) -> int | None:
        return self.server.connections()


@contextmanager
def memcached(tmp: Path) -> Iterator[MemcachedTarget]:
    server = MemcachedProcess(tmp)
    try:
        server.start()
        yield MemcachedTarget(server)
    finally:
        server.stop()
