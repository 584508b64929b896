"""The filesystem store against other local users and damaged files.

"Another user" is uid 65534 (nobody): the tests run as root, so they can
``chown`` files to it. A session file lives at ``sha256(key).hexdigest()`` in
the folder, its lock at ``.locks/<first two hex digits>``.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from quart import Quart

from quart_session.errors import SessionConfigError
from quart_session.stores.base import Outcome, Record
from quart_session.stores.filesystem import FileSystemStore

from ..suites.behaviour import Browser, build_app

OTHER_UID = 65534
KEY = "session:victim-id"
OTHER_KEY = "session:other-id"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")


def file_of(folder: Path, key: str) -> Path:
    return folder / hashlib.sha256(key.encode()).hexdigest()


def lock_of(folder: Path, key: str) -> Path:
    return folder / ".locks" / file_of(folder, key).name[:2]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def keep_alive_for_an_hour(path: Path) -> None:
    """A file's modification time is its deadline: this one is live."""
    deadline = time.time() + 3600
    os.utime(path, (deadline, deadline), follow_symlinks=False)


def plant(path: Path, content: bytes) -> None:
    path.write_bytes(content)
    keep_alive_for_an_hour(path)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "sessions"


@pytest.fixture
def store(folder: Path) -> FileSystemStore:
    return FileSystemStore(folder)


Warnings = Callable[[], list[str]]


@pytest.fixture
def warnings(caplog: pytest.LogCaptureFixture) -> Iterator[Warnings]:
    """The warnings logged so far on logger "quart_session"; none may name a
    key or an id (checked again at the end of the test)."""
    caplog.set_level(logging.WARNING, logger="quart_session")

    def logged() -> list[str]:
        messages = [r.getMessage() for r in caplog.records if r.name == "quart_session"]
        assert not [m for m in messages if "victim-id" in m or "other-id" in m]
        return messages

    yield logged
    logged()


# -- 1. folders private whatever the umask -------------------------------------------
def test_folders_are_private_under_a_permissive_umask(tmp_path: Path) -> None:
    folder = tmp_path / "missing" / "parent" / "sessions"
    previous = os.umask(0)
    try:
        FileSystemStore(folder)
    finally:
        os.umask(previous)
    assert mode(folder) == 0o700
    assert mode(folder / ".locks") == 0o700
    assert not mode(folder.parent) & 0o022
    assert not mode(folder.parent.parent) & 0o022


@pytest.mark.anyio
async def test_session_and_lock_files_are_readable_by_their_owner_only(
    store: FileSystemStore, folder: Path
) -> None:
    await store.save(KEY, b"secret", 60, None)
    assert mode(file_of(folder, KEY)) == 0o600
    assert mode(lock_of(folder, KEY)) == 0o600


# -- 2. refusing folders others can write to -------------------------------------------
def owned_by_another_user(folder: Path) -> None:
    folder.mkdir(mode=0o700)
    os.chown(folder, OTHER_UID, OTHER_UID)


def group_writable(folder: Path) -> None:
    folder.mkdir()
    folder.chmod(0o770)


def world_writable_and_sticky(folder: Path) -> None:
    folder.mkdir()
    folder.chmod(0o1777)


def a_symlink_to_a_private_folder(folder: Path) -> None:
    target = folder.with_name("elsewhere")
    target.mkdir(mode=0o700)
    folder.symlink_to(target)


def locks_owned_by_another_user(folder: Path) -> None:
    (folder / ".locks").mkdir(mode=0o700, parents=True)
    os.chown(folder / ".locks", OTHER_UID, OTHER_UID)


def locks_world_writable(folder: Path) -> None:
    (folder / ".locks").mkdir(parents=True)
    (folder / ".locks").chmod(0o777)


def locks_a_symlink(folder: Path) -> None:
    target = folder.with_name("their-locks")
    target.mkdir(mode=0o700)
    folder.mkdir(mode=0o700)
    (folder / ".locks").symlink_to(target)


def a_lock_file_owned_by_another_user(folder: Path) -> None:
    (folder / ".locks").mkdir(mode=0o700, parents=True)
    (folder / ".locks" / "7f").write_bytes(b"")
    os.chown(folder / ".locks" / "7f", OTHER_UID, OTHER_UID)


def a_lock_file_symlink(folder: Path) -> None:
    (folder / ".locks").mkdir(mode=0o700, parents=True)
    (folder / ".locks" / "7f").symlink_to(folder.with_name("created-through-the-link"))


@pytest.mark.parametrize(
    "prepare",
    [
        owned_by_another_user,
        group_writable,
        world_writable_and_sticky,
        a_symlink_to_a_private_folder,
        locks_owned_by_another_user,
        locks_world_writable,
        locks_a_symlink,
        a_lock_file_owned_by_another_user,
        a_lock_file_symlink,
    ],
)
def test_a_folder_others_can_write_to_refuses_the_store(
    folder: Path, prepare: Callable[[Path], None]
) -> None:
    prepare(folder)
    with pytest.raises(SessionConfigError, match=r"must be private|symlink"):
        FileSystemStore(folder)
    assert not folder.with_name("created-through-the-link").exists()


@pytest.mark.anyio
async def test_a_file_in_the_folders_place_is_the_store_being_down(folder: Path) -> None:
    plant(folder, b"")
    store = FileSystemStore(folder)
    with pytest.raises(NotADirectoryError):
        await store.ping()
    with pytest.raises(NotADirectoryError):
        await store.load(KEY)


@pytest.mark.anyio
async def test_a_folder_missing_at_start_is_checked_on_ping_and_first_use(
    tmp_path: Path,
) -> None:
    parent = tmp_path / "mount"
    parent.write_bytes(b"")  # not mounted yet: the folder cannot be made
    store = FileSystemStore(parent / "sessions")  # the store is down, not refused
    with pytest.raises(OSError, match="Not a directory"):
        await store.ping()
    parent.unlink()
    parent.mkdir()
    owned_by_another_user(parent / "sessions")
    with pytest.raises(SessionConfigError, match="owned by uid 65534"):
        await store.ping()
    with pytest.raises(SessionConfigError, match="owned by uid 65534"):
        await store.load(KEY)


@pytest.mark.anyio
async def test_a_folder_made_after_start_works_on_first_use(tmp_path: Path) -> None:
    parent = tmp_path / "mount"
    parent.write_bytes(b"")
    store = FileSystemStore(parent / "sessions")
    parent.unlink()
    assert await store.load(KEY) is None
    assert mode(parent / "sessions") == 0o700
    assert not isinstance(await store.save(KEY, b"one", 60, None), Outcome)


# -- 3. lock files planted after start ---------------------------------------------
@pytest.mark.anyio
async def test_a_lock_file_replaced_by_a_symlink_is_never_followed(
    store: FileSystemStore, folder: Path
) -> None:
    target = folder.with_name("created-through-the-link")
    lock_of(folder, KEY).unlink(missing_ok=True)
    lock_of(folder, KEY).symlink_to(target)
    with pytest.raises(SessionConfigError, match="symlink"):
        await store.save(KEY, b"one", 60, None)
    with pytest.raises(SessionConfigError, match="symlink"):
        await store.delete(KEY)
    assert not target.exists() and not target.is_symlink()


@pytest.mark.anyio
async def test_a_lock_file_of_another_user_is_refused(
    store: FileSystemStore, folder: Path
) -> None:
    lock_of(folder, KEY).write_bytes(b"")
    os.chown(lock_of(folder, KEY), OTHER_UID, OTHER_UID)
    with pytest.raises(SessionConfigError, match="owned by uid 65534"):
        await store.save(KEY, b"one", 60, None)


# -- 4. session files that are not ours or not the key's ----------------------------
@pytest.mark.anyio
async def test_a_session_file_of_another_user_is_absent(
    store: FileSystemStore, folder: Path, warnings: Warnings
) -> None:
    await store.save(KEY, b"planted", 60, None)
    os.chown(file_of(folder, KEY), OTHER_UID, OTHER_UID)
    deadline = file_of(folder, KEY).stat().st_mtime_ns
    assert await store.load(KEY) is None
    assert await store.load(KEY, refresh_ttl=600) is None
    assert await store.expire(KEY, 600) is False
    assert file_of(folder, KEY).stat().st_mtime_ns == deadline  # neither moved it
    assert await store.count("session:") == 0
    assert await store.save(KEY, b"x", 60, "any-version") is Outcome.GONE
    version = await store.save(KEY, b"ours", 60, None)
    assert await store.load(KEY) == Record(b"ours", version)  # type: ignore[arg-type]
    assert file_of(folder, KEY).stat().st_uid == os.geteuid()
    assert any(file_of(folder, KEY).name in message for message in warnings())


@pytest.mark.anyio
async def test_a_session_file_holding_another_keys_record_is_absent(
    store: FileSystemStore, folder: Path, warnings: Warnings
) -> None:
    await store.save(OTHER_KEY, b"someone else's", 60, None)
    plant(file_of(folder, KEY), file_of(folder, OTHER_KEY).read_bytes())
    deadline = file_of(folder, KEY).stat().st_mtime_ns
    assert await store.load(KEY) is None
    assert await store.expire(KEY, 7200) is False
    assert file_of(folder, KEY).stat().st_mtime_ns == deadline
    assert await store.count("session:") == 1
    assert warnings()


@pytest.mark.anyio
async def test_a_session_file_symlink_is_never_followed(
    store: FileSystemStore, folder: Path, warnings: Warnings
) -> None:
    await store.save(KEY, b"planted", 60, None)
    outside = folder.with_name("outside")
    file_of(folder, KEY).rename(outside)
    file_of(folder, KEY).symlink_to(outside)
    deadline = outside.stat().st_mtime_ns
    assert await store.load(KEY) is None
    assert await store.load(KEY, refresh_ttl=600) is None
    assert await store.expire(KEY, 600) is False
    assert outside.stat().st_mtime_ns == deadline  # the target's times untouched
    assert warnings()


@pytest.mark.anyio
async def test_a_folder_under_a_session_files_name_is_absent(
    store: FileSystemStore, folder: Path
) -> None:
    file_of(folder, KEY).mkdir()
    assert await store.load(KEY) is None


@pytest.fixture
def unblock_a_fifo_reader() -> Iterator[Callable[[Path], None]]:
    """Opens a FIFO's write end after two seconds if someone is stuck reading
    it, so a store that would hang fails the test instead."""
    done = threading.Event()
    threads: list[threading.Thread] = []

    def rescue(fifo: Path) -> None:
        if done.wait(2):
            return
        while not done.is_set():
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError as error:
                if error.errno != errno.ENXIO:  # ENXIO: no reader yet
                    raise
                time.sleep(0.05)

    def start(fifo: Path) -> None:
        threads.append(threading.Thread(target=rescue, args=(fifo,), daemon=True))
        threads[-1].start()

    yield start
    done.set()
    for thread in threads:
        thread.join()


@pytest.mark.anyio
async def test_a_fifo_under_a_session_files_name_neither_hangs_nor_counts(
    store: FileSystemStore, folder: Path, unblock_a_fifo_reader: Callable[[Path], None]
) -> None:
    os.mkfifo(file_of(folder, KEY))
    keep_alive_for_an_hour(file_of(folder, KEY))
    unblock_a_fifo_reader(file_of(folder, KEY))
    started = time.monotonic()
    assert await store.load(KEY) is None
    assert await store.expire(KEY, 60) is False
    assert time.monotonic() - started < 1


# -- 5. durable writes ----------------------------------------------------------------
@pytest.mark.anyio
async def test_the_new_file_is_synced_before_it_replaces_the_old_one(
    store: FileSystemStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
        events.append(("replace", os.fspath(source)))
        real_replace(source, target)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    await store.save(KEY, b"one", 60, None)
    assert [name for name, _ in events] == ["fsync", "replace"]
    assert events[0][1] == events[1][1]  # the very temporary file that is renamed


# -- 6. corrupt and truncated files -------------------------------------------------------
def encoded(key: str) -> bytes:
    return base64.urlsafe_b64encode(key.encode())


CORRUPT = {
    "zero-length": b"",
    "garbage": b"\x00\xff garbage \x01",
    "no newline after the header": b"QS4 0123456789abcdef " + encoded(KEY),
    "two header fields": b"QS4 0123456789abcdef\npayload",
    "bad base64": b"QS4 0123456789abcdef @@@@@\npayload",
    "wrong magic": b"QS3 0123456789abcdef " + encoded(KEY) + b"\npayload",
    "non-ASCII version": b"QS4 \xff\xfe " + encoded(KEY) + b"\npayload",
}


@pytest.mark.anyio
@pytest.mark.parametrize("content", CORRUPT.values(), ids=CORRUPT.keys())
async def test_a_corrupt_live_file_is_absent_and_can_be_replaced(
    store: FileSystemStore, folder: Path, content: bytes, warnings: Warnings
) -> None:
    plant(file_of(folder, KEY), content)
    deadline = file_of(folder, KEY).stat().st_mtime_ns
    assert await store.load(KEY) is None
    assert await store.load(KEY, refresh_ttl=7200) is None
    assert await store.expire(KEY, 7200) is False
    assert file_of(folder, KEY).stat().st_mtime_ns == deadline
    assert await store.save(KEY, b"new", 60, "0123456789abcdef") is Outcome.GONE
    version = await store.save(KEY, b"new", 60, None)
    assert await store.load(KEY) == Record(b"new", version)  # type: ignore[arg-type]
    assert warnings() and all(file_of(folder, KEY).name in message for message in warnings())


@pytest.mark.anyio
async def test_count_skips_unusable_files(store: FileSystemStore, folder: Path) -> None:
    await store.save(OTHER_KEY, b"live", 60, None)
    plant(file_of(folder, KEY), b"")
    plant(file_of(folder, "session:foreign"), b"")
    os.chown(file_of(folder, "session:foreign"), OTHER_UID, OTHER_UID)
    assert await store.count("session:") == 1


@pytest.mark.anyio
async def test_purge_removes_expired_and_unusable_files_and_follows_no_link(
    store: FileSystemStore, folder: Path
) -> None:
    await store.save(OTHER_KEY, b"live", 60, None)
    await store.save("session:expired", b"old", 60, None)
    os.utime(file_of(folder, "session:expired"), (1, 1))
    plant(file_of(folder, KEY), b"")
    outside = folder.with_name("outside")
    plant(outside, b"not a session, not ours to delete")
    file_of(folder, "session:link").symlink_to(outside)
    assert await store.purge_expired() == 3
    assert sorted(os.listdir(folder)) == sorted(
        [".locks", file_of(folder, OTHER_KEY).name]
    )
    assert outside.read_bytes() == b"not a session, not ours to delete"
    assert await store.load(OTHER_KEY) is not None


@pytest.mark.anyio
async def test_a_truncated_session_file_answers_with_a_fresh_session(
    tmp_path: Path, warnings: Warnings
) -> None:
    folder = tmp_path / "sessions"
    static = tmp_path / "static"
    static.mkdir()
    app: Quart = build_app({"SESSION_TYPE": "filesystem", "SESSION_FILE_DIR": str(folder)}, static)
    browser = Browser(app)
    await browser.text("/set/user/alice")
    old = browser.sid
    path = file_of(folder, app.session_interface.engine.key_for(old))  # type: ignore[attr-defined]
    path.write_bytes(b"")  # what a crash between write and rename can leave
    keep_alive_for_an_hour(path)

    response = await browser.get("/get/user")
    assert response.status_code == 200
    assert await response.get_data(as_text=True) == "None"
    await browser.text("/set/user/bob")
    assert browser.sid != old
    assert await browser.text("/get/user") == "'bob'"
    assert all(old not in message for message in warnings())


@pytest.mark.anyio
async def test_an_app_on_a_folder_of_another_user_refuses_to_start(folder: Path) -> None:
    owned_by_another_user(folder)
    app = build_app(
        {"SESSION_TYPE": "filesystem", "SESSION_FILE_DIR": str(folder)}, folder.parent
    )
    # Quart's test app wraps start-up errors in its LifespanError.
    with pytest.raises(Exception, match=r"is owned by uid 65534.*must be private"):
        async with app.test_app():
            pass
