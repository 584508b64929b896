"""Fuzzing X-Forwarded-For under hijack protection behind one or two trusted
proxies, and the id header (SESSION_ID_HEADER), on the memory store."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from .harness import Fuzzed, RawHeaders, RealSession
from .strategies import addresses, header_bytes, id_values

FUZZ = settings.get_profile("quart-session-fuzz")
PROXY = "10.0.0.254"
#: The session owner's X-Forwarded-For as the trusted proxies wrote it, per count.
OWNER = {1: "203.0.113.7", 2: "203.0.113.7, 10.1.1.1"}
THIEF = {1: "198.51.100.9", 2: "198.51.100.9, 10.1.1.1"}


@pytest.fixture(scope="module", params=[1, 2], ids=["one-proxy", "two-proxies"])
def pinned(
    request: pytest.FixtureRequest,
    runner: asyncio.Runner,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Fuzzed, RealSession, int]]:
    proxies: int = request.param
    config = {
        "SESSION_TYPE": "memory",
        "SESSION_HIJACK_PROTECTION": True,
        "SESSION_HIJACK_REVERSE_PROXY": True,
        "SESSION_HIJACK_TRUSTED_PROXIES": proxies,
    }
    fuzzed = Fuzzed(config, tmp_path_factory.mktemp("forwarded"))
    owner = RealSession(fuzzed, [("X-Forwarded-For", OWNER[proxies].encode())], PROXY)
    yield fuzzed, owner, proxies
    runner.run(fuzzed.close())


def forwarded_lines(tail: str) -> st.SearchStrategy[list[bytes]]:
    """Lines a client wrote (anything), then the line the trusted proxies wrote."""
    left = st.lists(
        st.one_of(
            header_bytes(80), st.lists(addresses(), max_size=6).map(", ".join).map(str.encode)
        ),
        max_size=4,
    )
    return left.map(lambda lines: [*lines, tail.encode()])


@FUZZ
@given(
    data=st.data(),
    path=st.sampled_from(["/read", "/write"]),
    tail=st.sampled_from(["owner", "thief", "any"]),
)
def test_forwarded_entries_a_client_wrote_never_decide(
    pinned: tuple[Fuzzed, RealSession, int],
    runner: asyncio.Runner,
    data: st.DataObject,
    path: str,
    tail: str,
) -> None:
    """Whatever a client writes left of the proxies' entries, the owner keeps the
    session, another address ends it, and every answer is clean."""
    fuzzed, owner, proxies = pinned

    async def case() -> None:
        cookie = await owner.ensure()
        last = {"owner": OWNER[proxies], "thief": THIEF[proxies]}.get(tail)
        if last is None:
            last = ", ".join(data.draw(st.lists(addresses(), min_size=1, max_size=3), label="tail"))
        lines = data.draw(forwarded_lines(last), label="X-Forwarded-For lines")
        peer = data.draw(st.sampled_from([PROXY, "::1", "unknown", ""]), label="peer")
        headers: RawHeaders = [
            *fuzzed.cookie_headers(cookie),
            *(("X-Forwarded-For", line) for line in lines),
        ]
        presented = fuzzed.presented_cookies(headers)
        response = await fuzzed.send(path, headers, peer=peer)
        await fuzzed.check(response, presented, live=presented.valid)
        if tail == "owner":
            assert await owner.alive(), "the owner lost the session to entries a client wrote"
        if tail == "thief":
            assert not await owner.alive(), "another address kept the owner's session"

    runner.run(case())


@pytest.fixture(scope="module", params=[False, True], ids=["unsigned", "signed"])
def header_app(
    request: pytest.FixtureRequest,
    runner: asyncio.Runner,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Fuzzed, RealSession]]:
    config = {
        "SESSION_TYPE": "memory",
        "SESSION_ID_HEADER": "X-Session-Id",
        "SESSION_USE_SIGNER": request.param,
    }
    fuzzed = Fuzzed(config, tmp_path_factory.mktemp("id-header"))
    # An empty id header asks for a session in header mode.
    yield fuzzed, RealSession(fuzzed, [("X-Session-Id", b"")])
    runner.run(fuzzed.close())


@FUZZ
@given(data=st.data(), path=st.sampled_from(["/read", "/write", "/login", "/logout"]))
def test_any_id_header_gets_a_clean_answer(
    header_app: tuple[Fuzzed, RealSession],
    runner: asyncio.Runner,
    data: st.DataObject,
    path: str,
) -> None:
    """One to three id header lines of anything (the real id among them or
    mangled), with or without the session cookie beside them: the cookie is
    ignored, and the answer comes in the header only."""
    fuzzed, real = header_app

    async def case() -> None:
        valid = await real.ensure()
        values = data.draw(st.lists(id_values(valid), min_size=1, max_size=3), label="X-Session-Id")
        headers: RawHeaders = [("X-Session-Id", value) for value in values]
        if data.draw(st.booleans(), label="with the cookie too"):
            headers = [*fuzzed.cookie_headers(valid), *headers]
        presented = fuzzed.presented_header(headers)
        response = await fuzzed.send(path, headers)
        await fuzzed.check(response, presented, live=presented.valid & {real.sid})
        assert fuzzed.sent_cookie(response) is None, "a header-mode request got a cookie"

    runner.run(case())
