"""Upgrading from Quart-Session 3.0 does not log everybody out (SESSION_LEGACY_IDS)."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from itsdangerous import Signer
from quart import Quart, session

from quart_session import Session
from quart_session.stores.filesystem import FileSystemStore

from .behaviour import ID_PATTERN, Browser

pytestmark = pytest.mark.anyio

# What Quart-Session 3.0 wrote: tagged JSON, permanent flag among the data,
# datetimes as HTTP dates.
LEGACY_PAYLOAD = (
    b'{"user":"alice","cart":{" t":[1,2]},'
    b'"seen":{" d":"Sun, 22 Nov 2026 10:00:00 GMT"},"_permanent":true}'
)


def app_with(tmp_path: Path, **config: Any) -> Quart:
    app = Quart(__name__)
    app.config.update(
        SECRET_KEY="s", SESSION_TYPE="filesystem", SESSION_FILE_DIR=str(tmp_path), **config
    )

    @app.get("/whoami")
    async def whoami() -> str:
        return repr((session.get("user"), session.get("cart"), session.get("seen")))

    Session(app)
    return app


async def plant_legacy_session(tmp_path: Path) -> str:
    legacy_id = str(uuid.uuid4())
    await FileSystemStore(tmp_path).save(f"session:{legacy_id}", LEGACY_PAYLOAD, 600, None)
    return legacy_id


def exists(tmp_path: Path, sid: str) -> bool:
    return (tmp_path / hashlib.sha256(f"session:{sid}".encode()).hexdigest()).exists()


EXPECTED = repr(("alice", (1, 2), datetime(2026, 11, 22, 10, 0, tzinfo=UTC)))


async def test_a_legacy_cookie_is_moved_to_a_new_id_once(tmp_path: Path) -> None:
    legacy_id = await plant_legacy_session(tmp_path)
    app = app_with(tmp_path, SESSION_LEGACY_IDS=True)
    browser = Browser(app)
    browser.cookie = legacy_id
    assert await browser.text("/whoami") == EXPECTED
    assert browser.cookie is not None
    assert ID_PATTERN.fullmatch(browser.cookie)
    assert not exists(tmp_path, legacy_id)
    assert exists(tmp_path, browser.sid)
    assert await browser.text("/whoami") == EXPECTED
    replay = Browser(app)
    replay.cookie = legacy_id
    assert await replay.text("/whoami") == repr((None, None, None))


async def test_signed_legacy_cookies_are_verified_the_old_way(tmp_path: Path) -> None:
    legacy_id = await plant_legacy_session(tmp_path)
    app = app_with(tmp_path, SESSION_LEGACY_IDS=True, SESSION_USE_SIGNER=True)
    forged = Browser(app)
    forged.cookie = legacy_id + ".forgedsignature"
    assert await forged.text("/whoami") == repr((None, None, None))
    browser = Browser(app)
    browser.cookie = (
        Signer("s", salt="quart-session", key_derivation="hmac").sign(legacy_id).decode()
    )
    assert await browser.text("/whoami") == EXPECTED


async def test_legacy_cookies_are_ignored_unless_enabled(tmp_path: Path) -> None:
    legacy_id = await plant_legacy_session(tmp_path)
    browser = Browser(app_with(tmp_path))
    browser.cookie = legacy_id
    assert await browser.text("/whoami") == repr((None, None, None))
    assert exists(tmp_path, legacy_id)
