"""The ``__Host-`` cookie prefix that docs/security.rst recommends works end to end.

A browser stores a ``__Host-`` cookie only if it comes with ``Secure``,
``Path=/`` and no ``Domain``, over HTTPS; then no subdomain and no http://
page can set or overwrite it. Every Set-Cookie quart-session sends for it (at
login and at logout) must meet those rules, or the browser drops it silently.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from quart import Quart, session
from quart.typing import ResponseReturnValue
from quart.typing import TestClientProtocol as QuartClient

from quart_session import Session

from .suites.behaviour import parse_set_cookie

pytestmark = pytest.mark.anyio
NAME = "__Host-session"


@pytest.fixture
def app(tmp_path: Path) -> Quart:
    app = Quart(__name__)
    app.config.update(
        SECRET_KEY="prefix-test",
        SESSION_TYPE="filesystem",
        SESSION_FILE_DIR=str(tmp_path),
        SESSION_COOKIE_NAME=NAME,
        SESSION_COOKIE_SECURE=True,
        # Left at their defaults on purpose: no SESSION_COOKIE_DOMAIN, and the
        # path falls back to APPLICATION_ROOT ("/").
    )
    Session(app)

    @app.post("/login")
    async def login() -> ResponseReturnValue:
        session["user"] = "alice"
        return ""

    @app.post("/logout")
    async def logout() -> ResponseReturnValue:
        session.clear()
        return ""

    @app.get("/whoami")
    async def whoami() -> ResponseReturnValue:
        return str(session.get("user", "anonymous"))

    return app


def assert_host_prefix_rules(header: str) -> str:
    """Check *header* against the rules browsers apply to ``__Host-``; its value."""
    name, value, attributes = parse_set_cookie(header)
    assert name == NAME
    assert "secure" in attributes, header
    assert attributes.get("path") == "/", header
    assert "domain" not in attributes, header
    return value


async def whoami(client: QuartClient) -> str:
    response = await client.get("/whoami", scheme="https")
    return await response.get_data(as_text=True)


async def test_a_host_prefixed_cookie_is_set_by_the_rules_and_read_back(app: Quart) -> None:
    client = app.test_client()  # with its cookie jar, as a browser
    response = await client.post("/login", scheme="https")
    assert assert_host_prefix_rules(response.headers["Set-Cookie"])
    assert await whoami(client) == "alice"


async def test_logout_deletes_it_with_a_set_cookie_the_browser_accepts(app: Quart) -> None:
    client = app.test_client()
    await client.post("/login", scheme="https")
    response = await client.post("/logout", scheme="https")
    deletion = response.headers["Set-Cookie"]
    assert assert_host_prefix_rules(deletion) == ""
    assert await whoami(client) == "anonymous"
