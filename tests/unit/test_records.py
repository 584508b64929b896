"""The envelope's pure pieces: what a request changed, and merging it onto a
newer record, against a model of what the merge must mean."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from quart_session import records

KEYS = st.sampled_from(["a", "b", "c", "cart", "user"])
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=6,
)
DATA = st.dictionaries(KEYS, VALUES, max_size=5)


@given(DATA, DATA)
def test_applying_the_diff_to_the_base_gives_what_the_request_left(
    base: dict[str, Any], mine: dict[str, Any]
) -> None:
    # Compared with the types: 0 == False and 1 == 1.0, yet turning one into
    # the other is a change the merge must keep.
    assert records.same(records.merge(records.diff(base, mine), base), mine)


@given(DATA, DATA, DATA)
def test_a_merge_keeps_their_keys_this_request_did_not_touch(
    base: dict[str, Any], mine: dict[str, Any], theirs: dict[str, Any]
) -> None:
    updated, deleted = records.diff(base, mine)
    merged = records.merge((updated, deleted), theirs)
    for key, value in theirs.items():
        if key not in updated and key not in deleted:
            assert merged[key] == value  # another request's change survives
    for key, value in updated.items():
        assert merged[key] == value  # on the same key, the later writer wins
    assert not deleted & merged.keys()


@given(DATA, DATA)
def test_merging_never_changes_its_inputs(base: dict[str, Any], theirs: dict[str, Any]) -> None:
    mine = {**base, "new": 1}
    before = (dict(base), dict(mine), dict(theirs))
    records.merge(records.diff(base, mine), theirs)
    assert (base, mine, theirs) == before


def test_a_change_of_type_alone_is_a_change() -> None:
    base = {"n": 0, "price": 1, "tags": [1], "user": "alice"}
    mine = {"n": False, "price": 1.0, "tags": [True], "user": "alice"}
    assert records.diff(base, mine) == ({"n": False, "price": 1.0, "tags": [True]}, frozenset())
    assert records.same({"a": [1, {"b": None}]}, {"a": [1, {"b": None}]})


def test_a_nested_change_counts_as_a_change_of_its_top_level_key() -> None:
    base = {"cart": ["apple"], "user": "alice"}
    mine = {"cart": ["apple", "pear"], "user": "alice"}
    assert records.diff(base, mine) == ({"cart": ["apple", "pear"]}, frozenset())


@given(DATA, st.booleans(), st.none() | st.text(max_size=8))
def test_wrap_and_unwrap_round_trip(
    data: dict[str, Any], permanent: bool, address: str | None
) -> None:
    meta = records.meta(permanent, address)
    found, found_meta = records.unwrap(records.wrap(data, meta))
    assert (found, found_meta) == (data, meta)
    assert found_meta is not None
    assert records.permanent_of(found_meta, not permanent) is permanent
    assert records.address_of(found_meta) == address


def test_markers_are_never_sessions_and_name_their_target() -> None:
    assert records.is_marker(records.ENDED)
    assert records.is_marker(records.moved("abc"))
    assert records.moved_to(records.moved("abc")) == "abc"
    assert records.moved_to(records.ENDED) is None
    for payload in (b"", b"{}", b'{"a":1}', b"\x80\x04", b"\x00"):
        assert not records.is_marker(payload)
