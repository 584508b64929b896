"""Start real server binaries for tests: free 127.0.0.1 ports, temp dirs, stopped after.

Every networked store's fixtures use :func:`running`. A missing binary fails the
test with the package to install: ``./scripts/test`` installs them, and a skip
would hide an untested store.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def need_binary(name: str, package: str, extra_dirs: Sequence[str] = ()) -> str:
    """Path of the *name* binary, or fail naming the Debian *package*."""
    found = shutil.which(name, path=os.pathsep.join([*extra_dirs, os.environ["PATH"]]))
    if found is None:
        pytest.fail(f"{name} not found: apt-get install {package} (./scripts/test does)")
    return found


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


@contextmanager
def running(
    argv: Sequence[str],
    port: int,
    log: Path,
    *,
    ready: Callable[[], bool] | None = None,
    timeout: float = 30.0,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    user: str | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run *argv* until the block ends; wait until *port* accepts connections
    (and *ready()* is true). Output goes to *log*, shown if start-up fails."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            user=user,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + timeout
        while not (port_open(port) and (ready is None or ready())):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"{argv[0]} did not start on port {port}:\n{log.read_text(errors='replace')}"
                )
            time.sleep(0.05)
        yield proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Terminate *proc* and its children; kill what does not stop in time."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def freeze(pid: int) -> None:
    """SIGSTOP *pid* and wait until every thread of it has stopped: the signal
    is delivered asynchronously, and a thread that was already awake could
    otherwise still answer a command sent right after (a test that expects the
    command to hang would then see it answered, now and then)."""
    os.kill(pid, signal.SIGSTOP)
    deadline = time.monotonic() + 2
    while not all_threads_stopped(pid):
        if time.monotonic() > deadline:
            raise TimeoutError(f"process {pid} did not stop within 2 s of SIGSTOP")
        time.sleep(0.001)


def all_threads_stopped(pid: int) -> bool:
    """Every thread of *pid* is stopped (state T), or the process is gone."""
    try:
        stats = [task.read_text() for task in Path(f"/proc/{pid}/task").glob("*/stat")]
    except FileNotFoundError:
        return True  # gone meanwhile (a thread or the process): nothing left to answer
    return all(stat.rsplit(")", 1)[1].split()[0] in "Tt" for stat in stats)


class Frozen:
    """An outage of a shared server: frozen (SIGSTOP), so it outlives the test."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    async def stop(self) -> None:
        freeze(self.pid)

    async def start(self) -> None:
        os.kill(self.pid, signal.SIGCONT)
