"""Stores on the local disk: the filesystem store and SQLite.

As root the store's folder is a small tmpfs this target mounts, so that the
disk can be filled for real, and its faults are:

``read-only-3s``
    The folder read-only for 3 s: a read-only bind mount over it (chmod does
    not stop root), unmounted after.
``disk-full``
    The tmpfs filled with one file for 3 s, then freed.

Without root, or where root may not mount (a container), both faults are
skipped (a line says so).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..target import Fault

FAULT_SECONDS = 3.0
#: The tmpfs the store lives on: room for every session a run makes.
TMPFS_SIZE = "256m"


def mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise OSError(f"mount {' '.join(args)}: {done.stderr.strip()}")


def unmount(folder: Path) -> None:
    # Lazy: a file the app holds open must not keep the mount (or the fault) alive.
    subprocess.run(["umount", "-l", str(folder)], check=True, capture_output=True, timeout=30)


def read_only(folder: Path) -> None:
    mount("--bind", str(folder), str(folder))
    try:
        remount_read_only(folder)
        time.sleep(FAULT_SECONDS)
    finally:
        unmount(folder)


def remount_read_only(folder: Path, tries: int = 100) -> None:
    """The bind mount made read-only. The kernel refuses (EBUSY) while a
    file opened for writing through it is open, which the app does between
    the bind and the remount: tried again until a moment without one."""
    for _ in range(tries - 1):
        try:
            mount("-o", "remount,ro,bind", str(folder))
        except OSError:
            time.sleep(0.01)
        else:
            return
    mount("-o", "remount,ro,bind", str(folder))


def disk_full(folder: Path) -> None:
    filler = folder / "filler"
    try:
        with open(filler, "wb") as out:
            chunk = b"\0" * (1 << 20)
            with contextlib.suppress(OSError):  # ENOSPC: full, as intended
                while True:
                    out.write(chunk)
                    out.flush()
        time.sleep(FAULT_SECONDS)
    finally:
        filler.unlink(missing_ok=True)


@dataclass
class LocalTarget:
    name: str
    folder: Path
    config: dict[str, Any]
    mounted: bool

    def app_config(self) -> dict[str, Any]:
        return dict(self.config)

    def faults(self) -> Sequence[Fault]:
        if not self.mounted:
            print(f"  {self.name}: no mount (not root, or not allowed): disk faults skipped")
            return []
        return [
            Fault("read-only-3s", lambda: read_only(self.folder)),
            Fault("disk-full", lambda: disk_full(self.folder)),
        ]

    def connections(self) -> int | None:
        return None


@contextlib.contextmanager
def store_folder(tmp: Path) -> Iterator[tuple[Path, bool]]:
    """The store's folder: a tmpfs of its own when root (unmounted after)."""
    folder = tmp / "store"
    folder.mkdir()
    if os.geteuid() != 0:
        yield folder, False
        return
    try:
        mount("-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(folder))
    except OSError as error:  # root without the right to mount (a container)
        print(f"  no tmpfs for the store ({error}): its disk faults are skipped")
        yield folder, False
        return
    try:
        yield folder, True
    finally:
        unmount(folder)


@contextlib.contextmanager
def filesystem(tmp: Path) -> Iterator[LocalTarget]:
    with store_folder(tmp) as (folder, mounted):
        sessions = folder / "sessions"
        sessions.mkdir()
        config = {"SESSION_TYPE": "filesystem", "SESSION_FILE_DIR": str(sessions)}
        yield LocalTarget("filesystem", folder, config, mounted)


@contextlib.contextmanager
def sqlite(tmp: Path) -> Iterator[LocalTarget]:
    with store_folder(tmp) as (folder, mounted):
        url = f"sqlite+aiosqlite:///{folder / 'sessions.db'}"
        config = {"SESSION_TYPE": "sqlalchemy", "SESSION_SQLALCHEMY_URI": url}
        yield LocalTarget("sqlite", folder, config, mounted)
