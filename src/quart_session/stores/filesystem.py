"""A store of one file per session in a folder: the default, needs no server.

Safe for several worker processes sharing the folder:

* a file's modification time *is* its expiry deadline, so sliding expiry is a
  single ``utime`` and never rewrites the data; a load reports that deadline
  (``Record.expires_at``), and ``expire`` (or a load asked to refresh) sets
  it on the very file it read and checked, taking no lock: a save or delete
  landing meanwhile replaced or unlinked that file, as if it came just after;
* writes go to a temporary file that is synced and renamed over the old one, so
  readers never see half a record and take no lock;
* compare-and-set and delete hold an exclusive ``flock`` on one of 256 stripe
  lock files (never deleted, so no lock can be taken on an unlinked file).

File names are the SHA-256 of the key: safe whatever the prefix, and an id
never becomes a path.

Trust model: the folder and its ``.locks`` folder must be private to the
process user (owned by it, not a symlink, writable by nobody else); the store
creates them ``0700`` and refuses to start on anything else, since whoever can
write there can plant sessions. Files are opened without following symlinks,
and a session file that is not ours, is corrupt or names another key than its
file name is treated as absent and logged. Root and the process user itself
are trusted.
"""

from __future__ import annotations

import base64
import contextlib
import enum
import errno
import fcntl
import hashlib
import logging
import os
import secrets
import stat
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import anyio.to_thread

from ..errors import SessionConfigError
from .base import Outcome, Record, SaveResult, Store, Version

if TYPE_CHECKING:
    from ..config import Settings

logger = logging.getLogger("quart_session")

_MAGIC = b"QS4"
_T = TypeVar("_T")
_HEX = frozenset("0123456789abcdef")
_STRIPES = [f"{n:02x}" for n in range(256)]
#: Never follow a planted symlink; never leak a descriptor into a child process.
_SAFE = os.O_NOFOLLOW | os.O_CLOEXEC
#: O_NONBLOCK: a FIFO planted under a session's name must not hang the reader.
_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | _SAFE
_LOCK_FLAGS = os.O_RDWR | os.O_CREAT | _SAFE
_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _SAFE
#: What opening a symlink (with O_NOFOLLOW) or a socket fails with.
_PLANTED = {errno.ELOOP, errno.ENXIO}


@dataclass(frozen=True, slots=True)
class _Live:
    """A usable, unexpired session file."""

    key: bytes
    version: str
    payload: bytes
    #: Its deadline (seconds since the epoch), as read or as reset.
    expires_at: float
    #: Whether reading it reset its deadline.
    refreshed: bool = False


class _Dead(enum.Enum):
    EXPIRED = "expired"
    UNUSABLE = "unusable"
    """Not a regular file of ours, corrupt, or another key's record: logged."""


_Found = _Live | _Dead | None
"""What a session file holds; None when there is no file."""


class FileSystemStore(Store):
    name = "filesystem"
    can_count = True
    can_list = True
    needs_purge = True

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self._dir = Path(directory)
        self._locks = self._dir / ".locks"
        self._owner = os.geteuid()
        self._ready = False
        # An unsafe folder refuses the store now; a folder that cannot be made
        # yet (a mount not there, a read-only disk) is retried by ping() and
        # on first use, and reported there as the store being down.
        with contextlib.suppress(OSError):
            self._prepare()

    def _prepare(self) -> None:
        """Make and check the folders and stripe lock files; raise
        SessionConfigError if anyone but this user could write to them."""
        _make_parents(self._dir)
        _make_private_folder(self._dir, "session folder", self._owner)
        _make_private_folder(self._locks, "lock folder", self._owner)
        for stripe in _STRIPES:
            os.close(self._open_lock(stripe))
        self._ready = True

    def _ensure_ready(self) -> None:
        if not self._ready:
            self._prepare()

    async def ping(self) -> None:
        await self._run(self._prepare)

    @property
    def address(self) -> str:
        return str(self._dir)

    # Every public method hops to a worker thread once: file calls block.
    async def _run(self, func: Callable[[], _T]) -> _T:
        return await anyio.to_thread.run_sync(func)

    def _path(self, key: str) -> Path:
        return self._dir / hashlib.sha256(key.encode()).hexdigest()

    def _open_lock(self, stripe: str) -> int:
        path = self._locks / stripe
        try:
            fd = os.open(path, _LOCK_FLAGS, 0o600)
        except OSError as error:
            if error.errno == errno.ELOOP:  # O_NOFOLLOW met a symlink
                raise SessionConfigError(f"lock file {path} is a symlink") from None
            raise
        try:
            _check_private(os.fstat(fd), path, "lock file", stat.S_IFREG, self._owner)
        except BaseException:
            os.close(fd)
            raise
        return fd

    @contextmanager
    def _locked(self, path: Path) -> Iterator[None]:
        self._ensure_ready()
        fd = self._open_lock(path.name[:2])
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _inspect(self, path: Path, refresh_ttl: int | None = None) -> _Found:
        """What the file at *path* holds; a live one gets *refresh_ttl* more
        seconds, set on the very file that was read."""
        try:
            fd = os.open(path, _READ_FLAGS)
        except FileNotFoundError:
            return None
        except OSError as error:
            if error.errno not in _PLANTED:
                raise  # the store is down (EIO, EMFILE...): never "no session"
            return _ignore(path, "is a symlink or a socket")
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_uid != self._owner:
                return _ignore(path, f"not a regular file owned by uid {self._owner}")
            now = time.time()
            if info.st_mtime <= now:
                return _Dead.EXPIRED
            # The deadline is kept at the folder's timestamp resolution (ns on
            # ext4/xfs/tmpfs, 2 s on FAT), truncated: a coarse one makes a file
            # look older, so the engine refreshes it that much early, never late.
            found = _parse(os.read(fd, info.st_size), info.st_size, info.st_mtime)
            if found is None:
                return _ignore(path, "corrupt or truncated")
            if hashlib.sha256(found.key).hexdigest() != path.name:
                return _ignore(path, "holds the record of another key")
            if refresh_ttl is None:
                return found
            deadline = now + refresh_ttl
            os.utime(fd, (deadline, deadline))
            return replace(found, expires_at=deadline, refreshed=True)
        finally:
            os.close(fd)

    def _write(self, path: Path, key: str, payload: bytes, ttl: int) -> str:
        version = secrets.token_hex(8)
        header = b" ".join((_MAGIC, version.encode(), base64.urlsafe_b64encode(key.encode())))
        temp = self._dir / f".tmp-{secrets.token_hex(8)}"
        fd = os.open(temp, _TEMP_FLAGS, 0o600)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(header + b"\n" + payload)
                file.flush()
                deadline = time.time() + ttl
                os.utime(fd, (deadline, deadline))
                # Synced before the rename: a crash must leave the old record
                # or the new one, never an empty file under the session's name.
                os.fsync(fd)
            # The folder is not synced after the rename: a power cut that loses
            # the rename leaves the previous whole record (or none), a state
            # compare-and-set already handles; a folder sync costs a second
            # journal commit per save.
            os.replace(temp, path)
        except BaseException:
            os.unlink(temp)
            raise
        return version

    async def load(self, key: str, refresh_ttl: int | None = None) -> Record | None:
        path = self._path(key)

        def load() -> Record | None:
            self._ensure_ready()
            found = self._inspect(path, refresh_ttl)
            if not isinstance(found, _Live):
                return None
            return Record(found.payload, found.version, found.refreshed, found.expires_at)

        return await self._run(load)

    async def expire(self, key: str, ttl: int) -> bool:
        path = self._path(key)

        def expire() -> bool:
            self._ensure_ready()
            # Read and checked like a load: a file that is not a usable record
            # of this key keeps its times.
            return isinstance(self._inspect(path, ttl), _Live)

        return await self._run(expire)

    async def save(
        self, key: str, payload: bytes, ttl: int, expected: Version | None
    ) -> SaveResult:
        path = self._path(key)

        def save() -> SaveResult:
            with self._locked(path):
                found = self._inspect(path)
                if not isinstance(found, _Live):  # absent, expired or unusable
                    if expected is not None:
                        return Outcome.GONE
                elif expected is None or found.version != expected:
                    return Outcome.CONFLICT
                return self._write(path, key, payload, ttl)

        return await self._run(save)

    async def delete(self, key: str) -> None:
        path = self._path(key)

        def delete() -> None:
            with self._locked(path):
                path.unlink(missing_ok=True)

        await self._run(delete)

    def _session_files(self) -> Iterator[Path]:
        """Everything named like a session file, whatever its type: a planted
        symlink or FIFO is found (and purged) too."""
        for entry in os.scandir(self._dir):
            named_like_one = len(entry.name) == 64 and _HEX.issuperset(entry.name)
            if named_like_one and not entry.is_dir(follow_symlinks=False):
                yield Path(entry.path)

    async def purge_expired(self) -> int:
        """Remove expired session files and unusable ones (corrupt, truncated,
        not owned by this user, or holding another key's record: each logged
        as a warning); returns how many files were removed, both kinds."""

        def purge() -> int:
            self._ensure_ready()
            purged = 0
            for path in self._session_files():
                with self._locked(path):
                    if isinstance(self._inspect(path), _Dead):
                        path.unlink(missing_ok=True)
                        purged += 1
            return purged

        return await self._run(purge)

    async def count(self, prefix: str) -> int:
        """Live records whose key starts with *prefix*; unusable files are
        skipped (and logged)."""
        wanted = prefix.encode()

        def count() -> int:
            self._ensure_ready()
            return sum(
                isinstance(found := self._inspect(path), _Live) and found.key.startswith(wanted)
                for path in self._session_files()
            )

        return await self._run(count)

    async def keys(self, prefix: str) -> AsyncIterator[str]:
        """Keys of the live records starting with *prefix* (read from the
        files: their names are hashes); unusable files are skipped."""
        wanted = prefix.encode()

        def listed() -> list[str]:
            self._ensure_ready()
            return [
                found.key.decode("utf-8", "surrogatepass")
                for path in self._session_files()
                if isinstance(found := self._inspect(path), _Live) and found.key.startswith(wanted)
            ]

        for key in await self._run(listed):
            yield key


def _parse(content: bytes, size: int, expires_at: float) -> _Live | None:
    """The record in a file's *content*, or None if it is not a whole one."""
    header, newline, payload = content.partition(b"\n")
    fields = header.split(b" ")
    if len(content) != size or not newline or len(fields) != 3 or fields[0] != _MAGIC:
        return None
    try:
        key = base64.urlsafe_b64decode(fields[2])
        version = fields[1].decode("ascii")
    except ValueError:  # binascii.Error and UnicodeDecodeError
        return None
    return _Live(key, version, payload, expires_at)


def _ignore(path: Path, problem: str) -> _Dead:
    # The file name is a hash of the key: it names the file, never the session.
    logger.warning("Ignoring session file %s: %s", path.name, problem)
    return _Dead.UNUSABLE


def _check_private(info: os.stat_result, path: Path, what: str, kind: int, owner: int) -> None:
    """Refuse *path* unless it is a *kind* (S_IFDIR or S_IFREG) owned by *owner*
    that nobody else may write to."""
    if stat.S_ISLNK(info.st_mode):
        problem = "is a symlink"
    elif stat.S_IFMT(info.st_mode) != kind:
        problem = "is not a " + ("folder" if kind == stat.S_IFDIR else "regular file")
    elif info.st_uid != owner:
        problem = f"is owned by uid {info.st_uid}, not by this process's uid {owner}"
    elif info.st_mode & 0o022:
        problem = f"is writable by others (mode {stat.S_IMODE(info.st_mode):o})"
    else:
        return
    raise SessionConfigError(
        f"{what} {path} {problem}: it must be private to the user the app runs as"
    )


def _make_parents(folder: Path) -> None:
    """Create the missing parents of *folder* writable by their owner only
    (the umask may narrow that further), unlike ``mkdir(parents=True)``."""
    missing = []
    parent = folder.parent
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    for path in reversed(missing):
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=0o755)


def _make_private_folder(folder: Path, what: str, owner: int) -> None:
    """Create *folder* 0700 whatever the umask, or check the one that is there."""
    try:
        folder.mkdir(mode=0o700)
    except FileExistsError:
        created = False
    else:
        created = True
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode) and not stat.S_ISLNK(info.st_mode):
        # A file in the way is the store being down (like a mount not there
        # yet), reported by every operation until it is mended.
        raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(folder))
    _check_private(info, folder, what, stat.S_IFDIR, owner)
    if created:
        # mkdir's mode is masked by the umask: the chmod makes it exactly 0700
        # without touching the process-wide umask (other threads create files).
        os.chmod(folder, 0o700)


def from_settings(settings: Settings) -> FileSystemStore:
    return FileSystemStore(settings.file_dir)
