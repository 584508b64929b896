"""Who a session belongs to and how its handle is made (``users.py``): pure."""

from __future__ import annotations

import string
from dataclasses import FrozenInstanceError
from datetime import UTC, datetime
from typing import Any

import pytest

from quart_session.users import (
    NotAUser,
    SessionInfo,
    entries_of,
    entry,
    handle_of,
    index_name,
    index_of_handle,
    owner_of,
    user_text,
)

URL_SAFE = set(string.ascii_letters + string.digits + "-_")
NAME = "n" * 43  # a record name's shape


@pytest.mark.parametrize(
    ("value", "text"),
    [("alice", "alice"), ("", ""), (42, "42"), (-1, "-1"), (1.5, "1.5"), (True, "true")],
)
def test_a_scalar_user_is_its_text(value: Any, text: str) -> None:
    """Proves: the value under SESSION_USER_KEY and the user given to the API
    become the same text (JSON for numbers and bools), so ``user_sessions(42)``
    finds sessions holding ``user_id = 42``."""
    assert owner_of({"user_id": value}, "user_id") == text
    assert user_text(value) == text


def test_no_user_key_or_none_means_no_owner() -> None:
    """Proves: a session without the key, or holding None there, belongs to nobody."""
    assert owner_of({}, "user_id") is None
    assert owner_of({"user_id": None}, "user_id") is None
    assert owner_of({"other": "alice"}, "user_id") is None


@pytest.mark.parametrize("value", [["alice"], {"id": 1}, ("a",), b"alice", object()])
def test_a_user_that_is_not_a_scalar_is_refused(value: object) -> None:
    """Proves: containers, bytes and objects are no user: NotAUser names the
    key and the type; the API refuses them with TypeError."""
    with pytest.raises(NotAUser, match=rf"user_id.*SESSION_USER_KEY.*{type(value).__name__}"):
        owner_of({"user_id": value}, "user_id")
    with pytest.raises(TypeError):
        user_text(value)


def test_user_text_refuses_none() -> None:
    """Proves: None is no user to list or revoke (it means "no owner" in a session)."""
    with pytest.raises(TypeError):
        user_text(None)


@pytest.mark.parametrize("user", ["alice", "../../etc/passwd", "a:b*c", "\ud800", "é" * 1000])
def test_an_index_name_is_a_fixed_size_url_safe_hash(user: str) -> None:
    """Proves: whatever the user's text (paths, key patterns, lone
    surrogates, long text), its index name is 43 URL-safe characters that
    hold none of it."""
    name = index_name(user)
    assert len(name) == 43 and set(name) <= URL_SAFE
    assert user not in name or user == ""
    assert index_name(user) == name


def test_handles_are_stable_distinct_and_point_to_their_index() -> None:
    """Proves: a handle is the same for the same user and record, differs
    for another record or another user, and names its user's index."""
    handle = handle_of("alice", NAME)
    assert handle == handle_of("alice", NAME)
    assert handle != handle_of("alice", "m" * 43)
    assert handle != handle_of("bob", NAME)
    assert index_of_handle(handle) == index_name("alice")
    index, dot, rest = handle.partition(".")
    assert dot and len(rest) == 43 and set(index + rest) <= URL_SAFE


def test_a_handle_holds_nothing_of_the_record_name() -> None:
    """Proves: neither half of a handle is the record name (the hash of the
    id), so a handle leads nowhere as a cookie or as a key."""
    handle = handle_of("alice", NAME)
    assert NAME not in handle
    assert handle_of("alice", NAME).split(".")[1] != NAME


@pytest.mark.parametrize(
    "handle",
    [
        "",
        "garbage",
        "a.b",
        "A" * 43,
        "A" * 43 + ".",
        "." + "A" * 43,
        "A" * 42 + "." + "A" * 43,
        "A" * 43 + "." + "A" * 44,
        "A" * 43 + "." + "A" * 43 + ".x",
        "!" * 43 + "." + "A" * 43,
        "A" * 43 + "." + "A" * 42 + "/",
        "A" * 42 + "é." + "A" * 43,
    ],
)
def test_a_malformed_handle_points_nowhere(handle: str) -> None:
    """Proves: anything but two 43-character URL-safe halves gives no index
    (so revoke() of it touches no store)."""
    assert index_of_handle(handle) is None


def test_an_entry_keeps_what_was_seen_and_bounds_the_user_agent() -> None:
    """Proves: an entry holds the record name, when it was listed (whole
    seconds), address and User-Agent (cut to 512 characters: the client's
    text), and leaves out what is unknown."""
    listed = entry(NAME, "10.0.0.1", "x" * 2000, 1700000000.9)
    assert listed == {"n": NAME, "t": 1700000000, "a": "10.0.0.1", "u": "x" * 512}
    assert entry(NAME, None, None, 5.0) == {"n": NAME, "t": 5}


def test_entries_of_drops_whatever_we_did_not_write() -> None:
    """Proves: a stored index is read defensively: only {handle: {"n": text}}
    entries survive; anything else (wrong types, no name) is dropped."""
    good = {"n": NAME, "a": "10.0.0.1"}
    stored = {"h1": good, "h2": {"n": 5}, "h3": "text", "h4": {"a": "x"}, 5: good}
    assert entries_of(stored) == {"h1": good}
    junk: object
    for junk in (None, [], "text", 42):
        assert entries_of(junk) == {}


def test_session_info_is_frozen_and_not_current_by_default() -> None:
    """Proves: a listed session cannot be altered by the app, and is not the
    caller's unless the listing says so."""
    moment = datetime.now(UTC)
    info = SessionInfo("h", moment, moment, moment, None, None)
    assert info.current is False
    with pytest.raises(FrozenInstanceError):
        info.current = True  # type: ignore[misc]
