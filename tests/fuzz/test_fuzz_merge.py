"""Fuzzing the merge path: two requests change one session at once (both load
it, then both save), each with arbitrary JSON updates and deletions. The
result holds both requests' changes (on a key both changed: one of them,
whole), or a request answered 409, a clear conflict; never a 500."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from .harness import Fuzzed, Gate
from .strategies import json_keys, json_values

FUZZ = settings.get_profile("quart-session-fuzz")
MERGE_STATUSES = frozenset({200, 409, 503})
ABSENT = object()
UNCHANGED = object()


@pytest.fixture(scope="module", params=["json", "msgpack"])
def fuzzed(
    request: pytest.FixtureRequest,
    runner: asyncio.Runner,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Fuzzed]:
    config = {"SESSION_TYPE": "memory", "SESSION_SERIALIZER": request.param}
    app = Fuzzed(config, tmp_path_factory.mktemp("merge"))
    yield app
    runner.run(app.close())


def same(a: object, b: object) -> bool:
    """Equal values of equal types all the way down (1, 1.0 and True differ)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        assert isinstance(b, dict)
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        assert isinstance(b, list)
        return len(a) == len(b) and all(map(same, a, b))
    return a == b or (a != a and b != b)  # NaN never reaches here; kept exact


def user_keys() -> st.SearchStrategy[str]:
    # "_qs" holds the envelope's metadata: not a key a view may set.
    return json_keys().filter(lambda key: key != "_qs")


def data_dicts() -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(user_keys(), json_values(), max_size=5)


@st.composite
def updates(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    """A request's changes: keys set (new or existing) and existing keys deleted."""
    deleted = draw(st.lists(st.sampled_from(sorted(base)), unique=True)) if base else []
    changed = draw(data_dicts())
    return {"set": {k: v for k, v in changed.items() if k not in deleted}, "delete": deleted}


def outcome(update: dict[str, Any], base: dict[str, Any], key: str) -> object:
    """What *update* changed *key* to (ABSENT: deleted; UNCHANGED: left it)."""
    if key in update["set"]:
        value = update["set"][key]
        return UNCHANGED if key in base and same(base[key], value) else value
    return ABSENT if key in update["delete"] else UNCHANGED


def check_merge(
    base: dict[str, Any], mine: dict[str, Any], theirs: dict[str, Any], result: dict[str, Any]
) -> None:
    for key in base.keys() | mine["set"].keys() | theirs["set"].keys():
        found = result.get(key, ABSENT)
        options = [
            o for o in (outcome(mine, base, key), outcome(theirs, base, key)) if o is not UNCHANGED
        ]
        if not options:
            options = [base.get(key, ABSENT)]
        assert any(o is found if o is ABSENT else same(o, found) for o in options), (
            f"key {key!r}: found {found!r}, expected one of {options!r}"
        )
    assert result.keys() <= base.keys() | mine["set"].keys() | theirs["set"].keys()


@FUZZ
@given(data=st.data(), base=data_dicts())
def test_two_racing_updates_both_land(
    fuzzed: Fuzzed, runner: asyncio.Runner, data: st.DataObject, base: dict[str, Any]
) -> None:
    base = {"seed": 0, **base}  # never empty: an empty session is not stored

    async def case() -> None:
        created = await fuzzed.send("/update", json={"set": base, "delete": []})
        assert created.status_code == 200, created.status_code
        cookie = fuzzed.sent_cookie(created)
        assert cookie
        sid = fuzzed.codec.from_cookie(cookie)
        assert sid is not None
        mine = data.draw(updates(base), label="first request")
        theirs = data.draw(updates(base), label="second request")
        headers = fuzzed.cookie_headers(cookie)
        presented = fuzzed.presented_cookies(headers)
        fuzzed.app.extensions["fuzz_gate"] = Gate(2)
        fuzzed.spy.calls.clear()
        try:
            answers = await asyncio.gather(
                fuzzed.send("/update", headers, json=mine),
                fuzzed.send("/update", headers, json=theirs),
            )
        finally:
            del fuzzed.app.extensions["fuzz_gate"]
        for answer in answers:
            await fuzzed.check(answer, presented, statuses=MERGE_STATUSES, live={sid})
        stored = await fuzzed.engine.load(sid)
        assert stored is not None, "the session was lost"
        conflicted = [answer.status_code == 409 for answer in answers]
        check_merge(
            base,
            mine if not conflicted[0] else {"set": {}, "delete": []},
            theirs if not conflicted[1] else {"set": {}, "delete": []},
            stored.data,
        )

    runner.run(case())
