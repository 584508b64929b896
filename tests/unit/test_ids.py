"""The name a session's record is stored under (SESSION_HASH_IDS)."""

from __future__ import annotations

import base64
import hashlib
import re

from hypothesis import given
from hypothesis import strategies as st

from quart_session.ids import encoded_length, new_id, record_name

IDS = st.builds(new_id, st.integers(16, 128))
#: base64url of 32 bytes without padding: what a hashed name always looks like.
HASHED_NAME = re.compile(r"[A-Za-z0-9_-]{43}")


def test_a_hashed_name_is_the_url_safe_sha256_of_the_id() -> None:
    digest = hashlib.sha256(b"abc").digest()
    expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert record_name("abc", hashed=True) == expected
    assert expected == "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"


@given(IDS)
def test_a_hashed_name_never_contains_the_id_and_is_stable(sid: str) -> None:
    name = record_name(sid, hashed=True)
    assert HASHED_NAME.fullmatch(name)
    assert sid not in name
    assert record_name(sid, hashed=True) == name


@given(IDS, IDS)
def test_different_ids_have_different_names(first: str, second: str) -> None:
    if first != second:
        assert record_name(first, hashed=True) != record_name(second, hashed=True)


@given(IDS)
def test_without_hashing_the_name_is_the_id(sid: str) -> None:
    assert record_name(sid, hashed=False) == sid


def test_a_legacy_uuid_is_hashed_like_any_id() -> None:
    legacy = "1b4e28ba-2fa1-4d2b-a3b9-1c2d3e4f5a6b"
    assert HASHED_NAME.fullmatch(record_name(legacy, hashed=True))
    assert record_name(legacy, hashed=False) == legacy


def test_ids_are_as_long_as_their_encoding() -> None:
    assert len(new_id(32)) == encoded_length(32) == 43
