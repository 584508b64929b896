"""The sealed record format (crypto.Keyring) and SESSION_ENCRYPTION_KEYS parsing."""

from __future__ import annotations

import base64
import secrets
from typing import Any

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from quart_session.crypto import (
    FORMAT,
    HEADER_LENGTH,
    OVERHEAD,
    Keyring,
    NotSealed,
    Unreadable,
    key_id,
    parse_keys,
)
from quart_session.errors import SessionConfigError
from quart_session.stores.base import Outcome
from quart_session.stores.memory import MemoryStore
from quart_session.stores.sealed import Resealed, SealedStore

KEY = secrets.token_bytes(32)
OLD = secrets.token_bytes(32)
RING = Keyring([KEY, OLD])
STORE_KEYS = st.text(min_size=1, max_size=80)


@given(payload=st.binary(max_size=2048), store_key=STORE_KEYS)
def test_a_sealed_payload_opens_to_itself_and_hides_it(payload: bytes, store_key: str) -> None:
    sealed = RING.seal(store_key, payload)
    assert len(sealed) == len(payload) + OVERHEAD
    assert sealed[:HEADER_LENGTH] == FORMAT + key_id(KEY)
    assert RING.open(store_key, sealed) == payload
    if len(payload) >= 8:
        assert payload not in sealed


def test_every_write_gets_a_fresh_nonce() -> None:
    assert RING.seal("k", b"same") != RING.seal("k", b"same")


@given(
    payload=st.binary(max_size=256),
    store_key=STORE_KEYS,
    data=st.data(),
)
def test_changing_any_byte_makes_it_unreadable(
    payload: bytes, store_key: str, data: st.DataObject
) -> None:
    sealed = bytearray(RING.seal(store_key, payload))
    index = data.draw(st.integers(0, len(sealed) - 1), label="index")
    sealed[index] ^= data.draw(st.integers(1, 255), label="flip")
    with pytest.raises(Unreadable):
        RING.open(store_key, bytes(sealed))


@given(payload=st.binary(max_size=256), data=st.data())
def test_a_truncated_or_extended_payload_is_unreadable(payload: bytes, data: st.DataObject) -> None:
    sealed = RING.seal("k", payload)
    cut = data.draw(st.integers(1, len(sealed) - 1), label="cut")
    extra = data.draw(st.binary(min_size=1, max_size=16), label="extra")
    for changed in (sealed[:cut], sealed + extra):
        with pytest.raises(Unreadable):
            RING.open("k", changed)


@given(payload=st.binary(max_size=256), here=STORE_KEYS, there=STORE_KEYS)
def test_a_payload_opens_only_under_the_key_it_was_sealed_for(
    payload: bytes, here: str, there: str
) -> None:
    sealed = RING.seal(here, payload)
    if there != here:
        with pytest.raises(Unreadable, match="fails authentication"):
            RING.open(there, sealed)


def test_rotation_old_keys_open_and_only_the_first_seals() -> None:
    sealed_by_old = Keyring([OLD]).seal("k", b"data")
    assert RING.open("k", sealed_by_old) == b"data"
    assert not RING.is_current(sealed_by_old)
    assert RING.is_current(RING.seal("k", b"data"))


def test_an_unknown_key_is_named_by_its_id_only() -> None:
    other = secrets.token_bytes(32)
    with pytest.raises(Unreadable) as caught:
        Keyring([KEY]).open("k", Keyring([other]).seal("k", b"data"))
    message = str(caught.value)
    assert key_id(other).hex() in message
    assert other.hex() not in message and base64.urlsafe_b64encode(other).decode() not in message


@pytest.mark.parametrize(
    "payload", [b'{"user": "alice"}', b"\x81\xa1a\x01", b"\x00quart-session:ended", b""]
)
def test_plaintext_is_told_apart_from_sealed(payload: bytes) -> None:
    with pytest.raises(NotSealed):
        RING.open("k", payload)


def test_keys_parse_from_bytes_and_url_safe_base64() -> None:
    raw = secrets.token_bytes(32)
    text = base64.urlsafe_b64encode(raw).decode()
    assert parse_keys([raw, text, text.rstrip("="), secrets.token_urlsafe(32)])[:3] == (raw,) * 3
    assert parse_keys(None) == ()


#: (keys, what is wrong with them); the tests are named by the problem, not the
#: value: random values would give each pytest-xdist process other test ids
#: (and the ids would print key material).
BAD_KEYS: list[tuple[object, str]] = [
    ([secrets.token_urlsafe(16)], "16 bytes long"),
    ([secrets.token_bytes(31)], "31 bytes long"),
    ([secrets.token_urlsafe(32)[:-1] + "+"], "not URL-safe base64"),
    ([secrets.token_urlsafe(32) + "!"], "not URL-safe base64"),
    (["A" * 41], "not valid URL-safe base64"),
    ([123], "bytes or base64 text, not a int"),
    ([], "empty"),
    (secrets.token_urlsafe(32), "a list of keys"),
]


@pytest.mark.parametrize(
    ("value", "problem"),
    BAD_KEYS,
    ids=[f"{n}-{problem}" for n, (_, problem) in enumerate(BAD_KEYS)],
)
def test_bad_keys_are_refused_without_showing_them(value: object, problem: str) -> None:
    with pytest.raises(SessionConfigError, match=problem) as caught:
        parse_keys(value)
    message = str(caught.value)
    for key in value if isinstance(value, list) else [value]:
        if isinstance(key, str | bytes) and len(key) > 4:
            assert str(key) not in message and repr(key) not in message


@given(payload=st.binary(max_size=256), data=st.data())
def test_a_store_record_with_any_byte_changed_loads_as_none(
    payload: bytes, data: st.DataObject
) -> None:
    async def check() -> None:
        inner = MemoryStore()
        sealed = SealedStore(inner, [KEY, OLD])
        version = await sealed.save("session:x", payload, 60, None)
        assert not isinstance(version, Outcome)
        stored = await inner.load("session:x")
        assert stored is not None and (await sealed.load("session:x")) is not None
        changed = bytearray(stored.payload)
        index = data.draw(st.integers(0, len(changed) - 1), label="index")
        changed[index] ^= data.draw(st.integers(1, 255), label="flip")
        assert not isinstance(await inner.save("session:x", bytes(changed), 60, version), Outcome)
        assert await sealed.load("session:x") is None
        assert await sealed.take("session:x") is None

    anyio.run(check)


def test_the_sealed_store_forwards_what_its_store_can_do() -> None:
    inner = MemoryStore()
    sealed = SealedStore(inner, [KEY])
    flags = ("name", "can_take", "can_count", "can_list", "needs_purge", "refresh_is_free")
    assert [getattr(sealed, flag) for flag in flags] == [getattr(inner, flag) for flag in flags]
    assert sealed.address == inner.address
    assert KEY.hex() not in repr(sealed) and repr(KEY) not in repr(sealed)


class WrittenMeanwhile(MemoryStore):
    """A memory store where a request's write lands right after the next load
    (what rotation races with)."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: tuple[str, bytes] | None = None

    async def load(self, key: str, refresh_ttl: int | None = None) -> Any:
        record = await super().load(key, refresh_ttl)
        if self.pending is not None and record is not None:
            (key, payload), self.pending = self.pending, None
            await self.save(key, payload, 60, record.version)
        return record


def test_rotation_never_overwrites_a_write_that_lands_meanwhile() -> None:
    async def check() -> None:
        store = WrittenMeanwhile()
        await SealedStore(store, [OLD]).save("session:x", b"before", 60, None)
        rotating = SealedStore(store, [KEY, OLD])
        store.pending = ("session:x", rotating.keyring.seal("session:x", b"written meanwhile"))
        assert await rotating.reseal("session:x", lambda payload: 60) is Resealed.CURRENT
        record = await rotating.load("session:x")
        assert record is not None and record.payload == b"written meanwhile"

    anyio.run(check)
