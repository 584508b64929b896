"""SESSION_ENCRYPTION_KEYS: validation at init_app, secrecy in reprs, every
serializer, and ``quart session rotate`` from the command line (the shared
suite ``suites/encryption.py`` runs the rest on every store)."""

from __future__ import annotations

import base64
import logging
import secrets
import sys
import time
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from quart import Quart, session
from quart.typing import ResponseReturnValue

from quart_session import ServerSideSessionInterface, Session, SessionConfigError
from quart_session.crypto import key_id
from quart_session.stores.sealed import SealedStore

from .servers.memcached import MemcachedServer
from .suites.behaviour import Browser

NEW_TEXT = secrets.token_urlsafe(32)
NEW = base64.urlsafe_b64decode(NEW_TEXT + "=")
OLD = secrets.token_bytes(32)


def make_app(folder: Path, keys: Any, store_type: str = "filesystem", **config: Any) -> Quart:
    app = Quart(__name__)
    app.config.update(
        SECRET_KEY="encryption-test",
        SESSION_TYPE=store_type,
        SESSION_FILE_DIR=str(folder / "sessions"),
        SESSION_ENCRYPTION_KEYS=keys,
        **config,
    )
    Session(app)

    @app.get("/set/<key>/<value>")
    async def set_(key: str, value: str) -> ResponseReturnValue:
        session[key] = value
        return "ok"

    @app.get("/get/<key>")
    async def get(key: str) -> ResponseReturnValue:
        return repr(session.get(key))

    @app.get("/regenerate")
    async def regenerate() -> ResponseReturnValue:
        await app.session_interface.regenerate(session)  # type: ignore[attr-defined]
        return "ok"

    return app


def interface_of(app: Quart) -> ServerSideSessionInterface:
    interface = app.session_interface
    assert isinstance(interface, ServerSideSessionInterface)
    return interface


def write(app: Quart, path: str) -> str:
    """The cookie a request to *path* leaves (in its own event loop, as a
    command that runs later needs)."""

    async def get() -> str:
        browser = Browser(app)
        await browser.text(path)
        await interface_of(app).close()
        assert browser.cookie is not None
        return browser.cookie

    return anyio.run(get)


def read(app: Quart, cookie: str, key: str) -> str:
    async def get() -> str:
        browser = Browser(app)
        browser.cookie = cookie
        text = await browser.text(f"/get/{key}")
        await interface_of(app).close()
        return text

    return anyio.run(get)


# -- configuration ------------------------------------------------------------------
def test_keys_never_show_in_the_settings_repr(tmp_path: Path) -> None:
    app = make_app(tmp_path, [NEW_TEXT, OLD])
    settings = interface_of(app).settings
    assert settings.encryption_keys == (NEW, OLD)
    for shown in (repr(settings), str(settings), f"{settings}"):
        for secret in (NEW_TEXT, repr(NEW), repr(OLD), NEW.hex(), OLD.hex()):
            assert secret not in shown


def test_a_bad_key_fails_at_init_app_without_showing_it(tmp_path: Path) -> None:
    short = secrets.token_urlsafe(24)
    with pytest.raises(SessionConfigError, match=r"SESSION_ENCRYPTION_KEYS\[1\] is 24 bytes") as e:
        make_app(tmp_path, [NEW_TEXT, short])
    assert short not in str(e.value) and NEW_TEXT not in str(e.value)


def test_keys_without_the_cryptography_package_name_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.ciphers.aead", None)
    with pytest.raises(SessionConfigError, match=r"quart-session\[encryption\]"):
        make_app(tmp_path, [NEW_TEXT])
    make_app(tmp_path, None)  # without keys, the package is not needed


def test_a_store_handed_in_is_encrypted_too(tmp_path: Path) -> None:
    from quart_session.stores.memory import MemoryStore

    store = MemoryStore()
    app = make_app(tmp_path, [NEW], store_type=store)  # type: ignore[arg-type]
    assert isinstance(interface_of(app).store, SealedStore)
    assert interface_of(app).store.inner is store  # type: ignore[attr-defined]


# -- every serializer ----------------------------------------------------------------
@pytest.mark.anyio
@pytest.mark.parametrize("serializer", ["json", "msgpack", "pickle"])
async def test_every_serializer_works_through_encryption(tmp_path: Path, serializer: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pickle warns that it is unsafe
        app = make_app(tmp_path, [NEW], store_type="memory", SESSION_SERIALIZER=serializer)
    browser = Browser(app)
    await browser.text("/set/user/alice")
    await browser.text("/regenerate")
    assert await browser.text("/get/user") == "'alice'"
    inner = interface_of(app).store.inner  # type: ignore[attr-defined]
    record = await inner.load(interface_of(app).engine.key_for(browser.sid))
    assert record.payload.startswith(b"\x01" + key_id(NEW))
    assert b"alice" not in record.payload


# -- quart session rotate ------------------------------------------------------------
def rotate(app: Quart) -> tuple[int, str]:
    result = app.test_cli_runner().invoke(args=["session", "rotate"])
    return result.exit_code, result.output


def test_rotate_rewrites_old_and_unencrypted_sessions_under_the_first_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    old = write(make_app(tmp_path, [OLD]), "/set/user/alice")
    plain = write(make_app(tmp_path, None), "/set/user/bob")
    stranger = write(make_app(tmp_path, [secrets.token_bytes(32)]), "/set/user/eve")
    rotating = make_app(tmp_path, [NEW, OLD])
    status, output = rotate(rotating)
    assert status == 0, output
    assert "Checked 3 sessions in the filesystem store" in output
    assert "1 rewritten under the first key" in output
    assert "1 encrypted (stored unencrypted before)" in output
    assert "1 opened by no configured key (left as is)" in output
    assert "already under the first key" in rotate(rotating)[1]
    only_new = make_app(tmp_path, [NEW])
    assert read(only_new, old, "user") == "'alice'"
    assert read(only_new, plain, "user") == "'bob'"
    with caplog.at_level(logging.WARNING, logger="quart_session"):
        assert read(only_new, stranger, "user") == "None"
    assert "encrypted by a key not configured (id " in caplog.text
    for secret in (NEW.hex(), OLD.hex(), NEW_TEXT):
        assert secret not in caplog.text and secret not in output


def test_rotate_keeps_each_session_s_own_lifetime(tmp_path: Path) -> None:
    """A record rewritten under the new key keeps the time to live a request's
    write would give it: a remember-me session is not cut to the configured
    lifetime (the file's modification time is its deadline)."""
    app = make_app(tmp_path, [OLD], PERMANENT_SESSION_LIFETIME=60)

    @app.get("/remember")
    async def remember() -> ResponseReturnValue:
        session.lifetime = timedelta(days=30)  # type: ignore[attr-defined]
        return "ok"

    async def remembered() -> str:
        browser = Browser(app)
        await browser.text("/set/user/alice")
        await browser.text("/remember")
        await interface_of(app).close()
        assert browser.cookie is not None
        return browser.cookie

    cookie = anyio.run(remembered)
    rotating = make_app(tmp_path, [NEW, OLD], PERMANENT_SESSION_LIFETIME=60)
    status, output = rotate(rotating)
    assert status == 0 and "1 rewritten under the first key" in output, output
    # One record file (beside the store's lock folder); its modification time
    # is its deadline.
    (record,) = (path for path in (tmp_path / "sessions").iterdir() if path.is_file())
    assert abs(record.stat().st_mtime - time.time() - 30 * 86400) < 60
    assert read(make_app(tmp_path, [NEW], PERMANENT_SESSION_LIFETIME=60), cookie, "user") == (
        "'alice'"
    )


def test_rotate_without_keys_says_so(tmp_path: Path) -> None:
    status, output = rotate(make_app(tmp_path, None))
    assert status == 1
    assert "SESSION_ENCRYPTION_KEYS is not set" in output


def test_rotate_on_memcached_says_it_cannot(
    tmp_path: Path, memcached_server: MemcachedServer
) -> None:
    app = make_app(
        tmp_path,
        [NEW, OLD],
        store_type="memcached",
        SESSION_MEMCACHED_HOST=memcached_server.host,
        SESSION_MEMCACHED_PORT=memcached_server.port,
    )
    status, output = rotate(app)
    assert status == 1
    assert "the memcached store at" in output
    assert "cannot list its sessions" in output
