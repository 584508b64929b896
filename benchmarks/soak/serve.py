"""Serve the soak app with Hypercorn, two worker processes, on 127.0.0.1.

Each worker builds the app from the JSON config in ``SOAK_APP_CONFIG``
(``benchmarks.soak.app:create_app()``), so a target's config must be JSON-able.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.servers.processes import free_port, running

from .app import CONFIG_VARIABLE

WORKERS = 2
START_TIMEOUT = 60.0
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class SoakServer:
    url: str
    master_pid: int
    log: Path

    def worker_pids(self) -> list[int]:
        """The Hypercorn worker processes: children of the master that
        multiprocessing spawned (not its resource tracker)."""
        return [pid for pid in children_of(self.master_pid) if is_spawned_worker(pid)]

    def worker_rss(self) -> dict[int, int]:
        """Resident memory of each worker, in bytes (VmRSS)."""
        return {pid: rss for pid in self.worker_pids() if (rss := rss_of(pid)) is not None}


def children_of(parent: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        if ppid == parent:
            found.append(int(stat.parent.name))
    return sorted(found)


def is_spawned_worker(pid: int) -> bool:
    try:
        return b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def rss_of(pid: int) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return None


def workers_ready(log: Path) -> bool:
    """Every worker logs "Running on" once its app (and so its store) started."""
    return log.exists() and log.read_text(errors="replace").count("Running on") >= WORKERS


@contextmanager
def serving(config: dict[str, Any], folder: Path) -> Iterator[SoakServer]:
    """The soak app served until the block ends (stopped, and waited for, after)."""
    port = free_port()
    log = folder / "hypercorn.log"
    argv = [sys.executable, "-m", "hypercorn", "--workers", str(WORKERS)]
    argv += ["--bind", f"127.0.0.1:{port}", "benchmarks.soak.app:create_app()"]
    env = {CONFIG_VARIABLE: json.dumps(config)}
    with running(
        argv, port, log, ready=lambda: workers_ready(log), timeout=START_TIMEOUT, cwd=ROOT, env=env
    ) as process:
        yield SoakServer(f"http://127.0.0.1:{port}", process.pid, log)
