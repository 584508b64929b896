"""Hijack protection as a client sees it: the address a session is pinned to,
read behind every kind of proxy and in every spelling of an address."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from quart import Quart
from werkzeug.datastructures import Headers

from .suites.behaviour import Browser, build_app

pytestmark = pytest.mark.anyio

PROXY = "10.0.0.254"


def pinned_app(tmp_path: Path, **config: Any) -> Quart:
    static = tmp_path / "static"
    static.mkdir(exist_ok=True)
    return build_app(
        {
            "SESSION_TYPE": "memory",
            "SESSION_HIJACK_PROTECTION": True,
            "SESSION_HIJACK_REVERSE_PROXY": True,
            **config,
        },
        static,
    )


async def get_user(app: Quart, cookie: str, forwarded: list[str], peer: str = PROXY) -> str:
    """GET /get/user from *peer* with one X-Forwarded-For header line per entry
    of *forwarded*, as a proxy that adds its own line (HAProxy) sends them."""
    headers = Headers([("Cookie", f"session={cookie}")])
    for line in forwarded:
        headers.add("X-Forwarded-For", line)
    client = app.test_client(use_cookies=False)
    response = await client.get("/get/user", headers=headers, scope_base={"client": (peer, 1)})
    return await response.get_data(as_text=True)


async def logged_in(app: Quart, forwarded: str) -> str:
    owner = Browser(app, address=PROXY)
    await owner.get("/set/user/alice", {"X-Forwarded-For": forwarded})
    assert owner.cookie is not None
    return owner.cookie


async def test_a_forged_first_line_does_not_keep_a_stolen_session(tmp_path: Path) -> None:
    app = pinned_app(tmp_path)
    cookie = await logged_in(app, "203.0.113.7")
    # The thief writes the victim's address; the proxy adds the real one on its own line.
    assert await get_user(app, cookie, ["203.0.113.7", "198.51.100.9"]) == "None"


async def test_the_owner_behind_a_line_adding_proxy_keeps_the_session(tmp_path: Path) -> None:
    app = pinned_app(tmp_path)
    cookie = await logged_in(app, "203.0.113.7")
    assert await get_user(app, cookie, ["1.2.3.4", "203.0.113.7"]) == "'alice'"


async def test_two_trusted_proxies_take_the_second_entry_from_the_right(tmp_path: Path) -> None:
    app = pinned_app(tmp_path, SESSION_HIJACK_TRUSTED_PROXIES=2)
    cookie = await logged_in(app, "203.0.113.7, 10.1.1.1")
    assert await get_user(app, cookie, ["6.6.6.6, 203.0.113.7", "10.1.1.2"]) == "'alice'"
    assert await get_user(app, cookie, ["203.0.113.7, 6.6.6.6", "10.1.1.1"]) == "None"


@pytest.mark.parametrize(
    ("pinned", "later"),
    [
        ("2001:db8::1", "2001:DB8::1"),
        ("2001:db8::1", "2001:db8:0:0:0:0:0:1"),
        ("192.0.2.1", "::ffff:192.0.2.1"),
        ("192.0.2.1", "192.0.2.1:54321"),
        ("2001:db8::1", "[2001:db8::1]:443"),
    ],
)
async def test_the_same_address_written_otherwise_is_the_same_client(
    tmp_path: Path, pinned: str, later: str
) -> None:
    app = pinned_app(tmp_path)
    cookie = await logged_in(app, pinned)
    assert await get_user(app, cookie, [later]) == "'alice'"


@pytest.mark.parametrize("garbage", ["unknown", "", "not an address", "\x00\x1b[2J"])
async def test_an_unparsable_address_is_a_mismatch_and_never_an_error(
    tmp_path: Path, garbage: str
) -> None:
    app = pinned_app(tmp_path)
    cookie = await logged_in(app, "203.0.113.7")
    assert await get_user(app, cookie, [garbage]) == "None"


async def test_without_a_proxy_the_peer_address_is_normalised_too(tmp_path: Path) -> None:
    app = pinned_app(tmp_path, SESSION_HIJACK_REVERSE_PROXY=False)
    owner = Browser(app, address="::ffff:192.0.2.1")
    await owner.text("/set/user/alice")
    assert owner.cookie is not None
    assert await get_user(app, owner.cookie, [], peer="192.0.2.1") == "'alice'"
    assert await get_user(app, owner.cookie, [], peer="192.0.2.2") == "None"
