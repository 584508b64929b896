"""A store of one file per session in a folder: the default, needs no server.

Safe for several worker processes sharing the folder:

* a file's modification time *is* its expiry deadline, so sliding expiry is a
  single ``utime`` and never rewrites the data;
* writes go to a temporary file that is renamed over the old one, so readers
  never see half a record and take no lock;
* compare-and-set and delete hold an exclusive ``flock`` on one of 256 stripe
  lock files (never deleted, so no lock can be taken on an unlinked file).

File names are the SHA-256 of the key: safe whatever the prefix, and an id
never becomes a path.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import os
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import anyio.to_thread

from .base import Outcome, Record, SaveResult, Store, Version

if TYPE_CHECKING:
    from ..config import Settings

_MAGIC = b"QS4"
_T = TypeVar("_T")


class FileSystemStore(Store):
    name = "filesystem"

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self._dir = Path(directory)
        self._locks = self._dir / ".locks"
        with contextlib.suppress(OSError):  # reported by ping() and every operation
            self._make_folders()

    def _make_folders(self) -> None:
        self._locks.mkdir(mode=0o700, parents=True, exist_ok=True)

    async def ping(self) -> None:
        await self._run(self._make_folders)

    @property
    def address(self) -> str:
        return str(self._dir)

    # Every public method hops to a worker thread once: file calls block.
    async def _run(self, func: Callable[[], _T]) -> _T:
        return await anyio.to_thread.run_sync(func)

    def _path(self, key: str) -> Path:
        return self._dir / hashlib.sha256(key.encode()).hexdigest()

    @contextmanager
    def _locked(self, path: Path) -> Iterator[None]:
        fd = os.open(self._locks / path.name[:2], os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    @staticmethod
    def _read(path: Path) -> tuple[bytes, str, bytes] | None:
        """(key, version, payload) of the file at *path* if it is live."""
        try:
            with open(path, "rb") as file:
                deadline = os.fstat(file.fileno()).st_mtime
                content = file.read()
        except FileNotFoundError:
            return None
        if deadline <= time.time():
            return None
        header, _, payload = content.partition(b"\n")
        magic, version, key = header.split(b" ")
        if magic != _MAGIC:
            raise ValueError(f"{path} is not a quart-session file")
        return base64.urlsafe_b64decode(key), version.decode(), payload

    def _write(self, path: Path, key: str, payload: bytes, ttl: int) -> str:
        version = secrets.token_hex(8)
        header = b" ".join((_MAGIC, version.encode(), base64.urlsafe_b64encode(key.encode())))
        fd, temp = tempfile.mkstemp(dir=self._dir, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(header + b"\n" + payload)
            deadline = time.time() + ttl
            os.utime(temp, (deadline, deadline))
            os.replace(temp, path)
        except BaseException:
            os.unlink(temp)
            raise
        return version

    async def load(self, key: str, refresh_ttl: int | None = None) -> Record | None:
        path = self._path(key)

        def load() -> Record | None:
            found = self._read(path)
            if found is None:
                return None
            if refresh_ttl is not None:
                deadline = time.time() + refresh_ttl
                try:
                    os.utime(path, (deadline, deadline))
                except FileNotFoundError:
                    return None
            return Record(found[2], found[1])

        return await self._run(load)

    async def save(
        self, key: str, payload: bytes, ttl: int, expected: Version | None
    ) -> SaveResult:
        path = self._path(key)

        def save() -> SaveResult:
            with self._locked(path):
                found = self._read(path)
                if expected is None:
                    if found is not None:
                        return Outcome.CONFLICT
                elif found is None:
                    return Outcome.GONE
                elif found[1] != expected:
                    return Outcome.CONFLICT
                return self._write(path, key, payload, ttl)

        return await self._run(save)

    async def delete(self, key: str) -> None:
        path = self._path(key)

        def delete() -> None:
            with self._locked(path):
                path.unlink(missing_ok=True)

        await self._run(delete)

    async def touch(self, key: str, ttl: int) -> bool:
        path = self._path(key)

        def touch() -> bool:
            with self._locked(path):
                if self._read(path) is None:
                    return False
                deadline = time.time() + ttl
                os.utime(path, (deadline, deadline))
                return True

        return await self._run(touch)

    def _session_files(self) -> Iterator[Path]:
        for entry in os.scandir(self._dir):
            if entry.is_file() and len(entry.name) == 64:
                yield Path(entry.path)

    async def purge_expired(self) -> int:
        def purge() -> int:
            purged = 0
            for path in self._session_files():
                with self._locked(path):
                    try:
                        if path.stat().st_mtime <= time.time():
                            path.unlink()
                            purged += 1
                    except FileNotFoundError:
                        pass
            return purged

        return await self._run(purge)

    async def count(self, prefix: str) -> int:
        wanted = prefix.encode()

        def count() -> int:
            total = 0
            for path in self._session_files():
                found = self._read(path)
                if found is not None and found[0].startswith(wanted):
                    total += 1
            return total

        return await self._run(count)


def from_settings(settings: Settings) -> FileSystemStore:
    return FileSystemStore(settings.file_dir)
