"""Every Quart that pyproject.toml allows (0.20 and newer) gets sessions; what
only newer Quart offers fails loudly on older Quart instead of being ignored.

Quart 0.21 added SESSION_COOKIE_PARTITIONED and SECRET_KEY_FALLBACKS. Each
test runs on any Quart; the ones about a feature this Quart lacks (or has)
skip with the reason. ``./scripts/test`` runs this file on Quart 0.20 and 0.22.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from quart import Quart, session
from quart.typing import ResponseReturnValue

from quart_session import Session, SessionConfigError

from .suites.behaviour import QUART_HAS_KEY_FALLBACKS, QUART_HAS_PARTITIONED

pytestmark = pytest.mark.anyio


def make_app(folder: Path, **config: Any) -> Quart:
    app = Quart(__name__)
    app.config.update(SECRET_KEY="new", SESSION_TYPE="filesystem", SESSION_FILE_DIR=str(folder))
    app.config.update(config)
    Session(app)

    @app.post("/login")
    async def login() -> ResponseReturnValue:
        session["user"] = "alice"
        return ""

    @app.get("/whoami")
    async def whoami() -> ResponseReturnValue:
        return str(session.get("user", "anonymous"))

    return app


async def login(app: Quart) -> str:
    """The Set-Cookie header of a fresh login."""
    response = await app.test_client().post("/login", scheme="https")
    header: str = response.headers["Set-Cookie"]
    return header


async def whoami(app: Quart, set_cookie: str) -> str:
    """Who *app* says the browser holding the cookie of *set_cookie* is."""
    cookie = set_cookie.split(";", 1)[0]
    response = await app.test_client().get("/whoami", headers={"Cookie": cookie}, scheme="https")
    return await response.get_data(as_text=True)


@pytest.mark.parametrize(
    "config",
    [
        {},
        # Set, but asking for nothing: fine on every Quart.
        {"SESSION_COOKIE_PARTITIONED": False},
        {"SESSION_USE_SIGNER": True, "SECRET_KEY_FALLBACKS": []},
    ],
)
async def test_sessions_work_on_this_quart(tmp_path: Path, config: dict[str, Any]) -> None:
    app = make_app(tmp_path, **config)
    set_cookie = await login(app)
    assert "Partitioned" not in set_cookie
    assert await whoami(app, set_cookie) == "alice"


@pytest.mark.skipif(
    QUART_HAS_PARTITIONED, reason="this Quart (0.21+) has partitioned cookies: they are honoured"
)
def test_partitioned_cookies_on_a_quart_without_them_fail_at_init(tmp_path: Path) -> None:
    with pytest.raises(SessionConfigError, match=r"SESSION_COOKIE_PARTITIONED needs Quart 0\.21"):
        make_app(tmp_path, SESSION_COOKIE_PARTITIONED=True)


@pytest.mark.skipif(
    QUART_HAS_KEY_FALLBACKS, reason="this Quart (0.21+) has SECRET_KEY_FALLBACKS: they are honoured"
)
def test_key_fallbacks_on_a_quart_without_them_fail_at_init(tmp_path: Path) -> None:
    with pytest.raises(SessionConfigError, match=r"SECRET_KEY_FALLBACKS needs Quart 0\.21"):
        make_app(tmp_path, SESSION_USE_SIGNER=True, SECRET_KEY_FALLBACKS=["old"])


@pytest.mark.skipif(
    not QUART_HAS_PARTITIONED,
    reason="partitioned cookies need Quart 0.21+; this Quart refuses them",
)
async def test_partitioned_cookies_are_honoured(tmp_path: Path) -> None:
    app = make_app(
        tmp_path,
        SESSION_COOKIE_PARTITIONED=True,
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_SAMESITE="None",
    )
    set_cookie = await login(app)
    assert "Partitioned" in set_cookie
    assert await whoami(app, set_cookie) == "alice"


@pytest.mark.skipif(
    not QUART_HAS_KEY_FALLBACKS,
    reason="SECRET_KEY_FALLBACKS needs Quart 0.21+; this Quart refuses it",
)
async def test_key_fallbacks_are_honoured(tmp_path: Path) -> None:
    signed_with_old = await login(make_app(tmp_path, SESSION_USE_SIGNER=True, SECRET_KEY="old"))
    rotated = make_app(tmp_path, SESSION_USE_SIGNER=True, SECRET_KEY_FALLBACKS=["old"])
    assert await whoami(rotated, signed_with_old) == "alice"
    old_key_dropped = make_app(tmp_path, SESSION_USE_SIGNER=True)
    assert await whoami(old_key_dropped, signed_with_old) == "anonymous"
