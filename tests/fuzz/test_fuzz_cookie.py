"""Fuzzing the Cookie header on the memory store, with and without a signer:
random text and bytes, id-like values with wrong signatures, wrong lengths or
odd characters, mutations of a real cookie, many cookies of the same name."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from .harness import Fuzzed, RealSession
from .strategies import header_bytes, id_values

FUZZ = settings.get_profile("quart-session-fuzz")
PATHS = st.sampled_from(["/read", "/write", "/login", "/logout"])


@pytest.fixture(scope="module", params=[False, True], ids=["unsigned", "signed"])
def fuzzed(
    request: pytest.FixtureRequest,
    runner: asyncio.Runner,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Fuzzed]:
    config = {"SESSION_TYPE": "memory", "SESSION_USE_SIGNER": request.param}
    app = Fuzzed(config, tmp_path_factory.mktemp("cookie"))
    yield app
    runner.run(app.close())


@pytest.fixture(scope="module")
def real(fuzzed: Fuzzed) -> RealSession:
    return RealSession(fuzzed)


@st.composite
def cookie_lines(draw: st.DrawFn, valid: str, name: str) -> list[bytes]:
    """Cookie header lines: the session cookie zero to many times, among other
    cookies and junk, spread over one or two lines."""
    names = st.sampled_from([name, f" {name}", f"{name} ", name.upper(), "other"])
    parts = draw(
        st.lists(
            st.one_of(
                id_values(valid).map(lambda value: name.encode() + b"=" + value),
                st.tuples(names.map(str.encode), header_bytes(60)).map(b"=".join),
                header_bytes(60),
            ),
            min_size=1,
            max_size=20,
        )
    )
    separator = draw(st.sampled_from([b"; ", b";", b" ; "]))
    cut = draw(st.integers(1, len(parts)))
    lines = [separator.join(parts[:cut]), separator.join(parts[cut:])]
    return [line for line in lines if line]


@FUZZ
@given(data=st.data(), path=PATHS)
def test_any_cookie_header_gets_a_clean_answer(
    fuzzed: Fuzzed, real: RealSession, runner: asyncio.Runner, data: st.DataObject, path: str
) -> None:
    async def case() -> None:
        valid = await real.ensure()
        lines = data.draw(cookie_lines(valid, fuzzed.cookie_name), label="Cookie lines")
        headers = [("Cookie", line) for line in lines]
        presented = fuzzed.presented_cookies(headers)
        live = presented.valid & {real.sid}
        response = await fuzzed.send(path, headers)
        await fuzzed.check(response, presented, live=live)

    runner.run(case())
