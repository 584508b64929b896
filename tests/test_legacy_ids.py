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
from quart_session.compat import LegacyIdReader, legacy_meta, legacy_pin_holds
from quart_session.ids import record_name
from quart_session.serializers import JSONSerializer
from quart_session.stores.filesystem import FileSystemStore

from .suites.behaviour import ID_PATTERN, Browser

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


def record_file(tmp_path: Path, sid: str, *, legacy: bool = False) -> Path:
    """The file of session *sid*'s record: 3.0 keyed it by the raw id, we by
    a hash of the id (SESSION_HASH_IDS)."""
    key = "session:" + record_name(sid, hashed=not legacy)
    return tmp_path / hashlib.sha256(key.encode()).hexdigest()


def exists(tmp_path: Path, sid: str, *, legacy: bool = False) -> bool:
    return record_file(tmp_path, sid, legacy=legacy).exists()


EXPECTED = repr(("alice", (1, 2), datetime(2026, 11, 22, 10, 0, tzinfo=UTC)))


async def test_a_legacy_cookie_is_moved_to_a_new_id_once(tmp_path: Path) -> None:
    legacy_id = await plant_legacy_session(tmp_path)
    app = app_with(tmp_path, SESSION_LEGACY_IDS=True)
    browser = Browser(app)
    browser.cookie = legacy_id
    assert await browser.text("/whoami") == EXPECTED
    assert browser.cookie is not None
    assert ID_PATTERN.fullmatch(browser.cookie)
    assert not exists(tmp_path, legacy_id, legacy=True)
    assert exists(tmp_path, browser.sid)
    assert not exists(tmp_path, browser.sid, legacy=True)  # stored under a hash of the new id
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
    assert exists(tmp_path, legacy_id, legacy=True)


# What Quart-Session 3.0 wrote with SESSION_HIJACK_PROTECTION: the pin among the
# data, behind a proxy as the raw X-Forwarded-For value.
PINNED_PAYLOAD = b'{"user":"alice","_addr":"%s","_permanent":true}'


PINNED_BEHIND_A_PROXY: dict[str, Any] = {
    "SESSION_LEGACY_IDS": True,
    "SESSION_HIJACK_PROTECTION": True,
    "SESSION_HIJACK_REVERSE_PROXY": True,
}


async def plant_pinned_session(tmp_path: Path, address: str) -> str:
    legacy_id = str(uuid.uuid4())
    payload = PINNED_PAYLOAD % address.encode()
    await FileSystemStore(tmp_path).save(f"session:{legacy_id}", payload, 600, None)
    return legacy_id


async def test_migration_honours_the_30_pin(tmp_path: Path) -> None:
    legacy_id = await plant_pinned_session(tmp_path, "10.0.0.1")
    app = app_with(tmp_path, SESSION_LEGACY_IDS=True, SESSION_HIJACK_PROTECTION=True)
    thief = Browser(app, address="10.6.6.6")
    thief.cookie = legacy_id
    assert await thief.text("/whoami") == repr((None, None, None))
    assert not exists(tmp_path, legacy_id, legacy=True)  # the stolen 3.0 session is gone
    owner = Browser(app, address="10.0.0.1")
    owner.cookie = legacy_id
    assert await owner.text("/whoami") == repr((None, None, None))


async def test_the_owner_migrates_and_stays_pinned_without_the_old_key(tmp_path: Path) -> None:
    legacy_id = await plant_pinned_session(tmp_path, "10.0.0.1")
    app = app_with(tmp_path, SESSION_LEGACY_IDS=True, SESSION_HIJACK_PROTECTION=True)
    owner = Browser(app, address="::ffff:10.0.0.1")  # the same address, written otherwise
    owner.cookie = legacy_id
    assert await owner.text("/whoami") == repr(("alice", None, None))
    raw = record_file(tmp_path, owner.sid).read_bytes()
    assert b"_addr" not in raw  # the pin is metadata now, not data
    thief = Browser(app, address="10.6.6.6")
    thief.cookie = owner.cookie
    assert await thief.text("/whoami") == repr((None, None, None))


async def test_a_30_pin_behind_a_proxy_counts_only_the_entry_the_proxy_wrote(
    tmp_path: Path,
) -> None:
    # 3.0 stored the whole header; the client wrote "1.2.3.4", the proxy appended.
    legacy_id = await plant_pinned_session(tmp_path, "1.2.3.4, 203.0.113.7")
    app = app_with(tmp_path, **PINNED_BEHIND_A_PROXY)
    thief = Browser(app, address="10.0.0.254")
    thief.cookie = legacy_id
    forged = {"X-Forwarded-For": "1.2.3.4, 203.0.113.7, 198.51.100.9"}
    response = await thief.get("/whoami", forged)
    assert await response.get_data(as_text=True) == repr((None, None, None))
    assert not exists(tmp_path, legacy_id, legacy=True)


async def test_a_30_pin_behind_a_proxy_lets_the_owner_in(tmp_path: Path) -> None:
    legacy_id = await plant_pinned_session(tmp_path, "1.2.3.4, 203.0.113.7")
    app = app_with(tmp_path, **PINNED_BEHIND_A_PROXY)
    owner = Browser(app, address="10.0.0.254")
    owner.cookie = legacy_id
    response = await owner.get("/whoami", {"X-Forwarded-For": "203.0.113.7"})
    assert await response.get_data(as_text=True) == repr(("alice", None, None))


# -- the pieces of quart_session.compat on their own -------------------------------


class _LaterDateTime(datetime):
    """A datetime subclass: encoded through Quart's tagger rather than our fast path."""


def test_30_dates_are_read_and_never_written() -> None:
    serializer = JSONSerializer()
    stored = b'{"seen":{" d":"Sun, 22 Nov 2026 10:00:00 GMT"}}'
    assert serializer.loads(stored) == {"seen": datetime(2026, 11, 22, 10, 0, tzinfo=UTC)}
    moment = datetime(2026, 11, 22, 10, 0, 0, 1, tzinfo=UTC)
    for value in (moment, _LaterDateTime.fromisoformat(moment.isoformat())):
        written = serializer.dumps({"seen": value})
        assert b'" d"' not in written and b'" dt"' in written
        assert serializer.loads(written) == {"seen": moment}


def test_legacy_meta_takes_the_permanent_flag_out_of_the_data() -> None:
    data: dict[str, Any] = {"user": "alice", "_permanent": False}
    assert legacy_meta(data, default_permanent=True) == {"p": False}
    assert data == {"user": "alice"}
    assert legacy_meta({"user": "bob"}, default_permanent=True) == {"p": True}


def test_legacy_ids_are_uuid4s_signed_the_30_way() -> None:
    legacy_id = str(uuid.uuid4())
    assert LegacyIdReader().read(legacy_id) == legacy_id
    assert LegacyIdReader().read(str(uuid.uuid1())) is None
    assert LegacyIdReader().read(legacy_id.upper()) is None
    reader = LegacyIdReader(["new", "old"])  # SECRET_KEY, then a fallback
    old_way = Signer("old", salt="quart-session", key_derivation="hmac")
    assert reader.read(old_way.sign(legacy_id).decode()) == legacy_id
    new_way = Signer("new", salt="quart-session", digest_method=hashlib.sha256)
    assert reader.read(new_way.sign(legacy_id).decode()) is None
    assert reader.read(legacy_id) is None  # unsigned, where 3.0 signed


def test_a_30_pin_holds_for_the_same_client_only() -> None:
    assert legacy_pin_holds("10.0.0.1", "::ffff:10.0.0.1", None)
    assert not legacy_pin_holds("10.0.0.1", "10.0.0.2", None)
    assert not legacy_pin_holds("10.0.0.1", None, None)
    # Behind one proxy, 3.0 stored the raw header: only the proxy's entry counts.
    assert legacy_pin_holds("1.2.3.4, 203.0.113.7", "203.0.113.7", 1)
    assert not legacy_pin_holds("1.2.3.4, 203.0.113.7", "1.2.3.4", 1)
