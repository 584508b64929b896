"""SESSION_USER_KEY and SESSION_MAX_PER_USER are checked at init_app, and the
per-user API refuses to run without SESSION_USER_KEY (no server needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from quart import Quart

from quart_session import Session, SessionConfigError
from quart_session.interface import ServerSideSessionInterface

pytestmark = pytest.mark.anyio


def make_app(tmp_path: Path, **config: Any) -> Quart:
    app = Quart(__name__, instance_path=str(tmp_path / "instance"))
    app.config.update({"SECRET_KEY": "s", "SESSION_TYPE": "memory", **config})
    return app


def interface_of(app: Quart) -> ServerSideSessionInterface:
    interface = app.session_interface
    assert isinstance(interface, ServerSideSessionInterface)
    return interface


@pytest.mark.parametrize("value", ["", 42, b"user_id", ["user_id"], True])
def test_a_user_key_that_is_not_text_fails_at_init(tmp_path: Path, value: Any) -> None:
    """Proves: SESSION_USER_KEY must be a non-empty session key (text)."""
    with pytest.raises(SessionConfigError, match="SESSION_USER_KEY"):
        Session(make_app(tmp_path, SESSION_USER_KEY=value))


@pytest.mark.parametrize("value", [0, -1, True, False, 1.5, 2.0, "2", [2]])
def test_a_cap_below_one_or_not_a_whole_number_fails_at_init(tmp_path: Path, value: Any) -> None:
    """Proves: SESSION_MAX_PER_USER is a whole number of at least 1 (bools,
    an int subclass, and floats are refused, not read as numbers)."""
    with pytest.raises(SessionConfigError, match="SESSION_MAX_PER_USER"):
        Session(make_app(tmp_path, SESSION_USER_KEY="user_id", SESSION_MAX_PER_USER=value))


def test_a_cap_without_a_user_key_fails_at_init(tmp_path: Path) -> None:
    """Proves: a cap on sessions per user is meaningless without knowing the user."""
    with pytest.raises(SessionConfigError, match="SESSION_MAX_PER_USER needs SESSION_USER_KEY"):
        Session(make_app(tmp_path, SESSION_MAX_PER_USER=2))


@pytest.mark.parametrize("cap", [None, 1, 5])
def test_a_user_key_and_a_cap_are_accepted(tmp_path: Path, cap: int | None) -> None:
    """Proves: valid settings reach the engine's settings as given."""
    app = make_app(tmp_path, SESSION_USER_KEY="user_id", SESSION_MAX_PER_USER=cap)
    Session(app)
    settings = interface_of(app).settings
    assert (settings.user_key, settings.max_per_user) == ("user_id", cap)


def test_memcached_refuses_a_user_key_at_init_naming_the_reason(tmp_path: Path) -> None:
    """Proves: memcached may evict a user's index like any item, so
    SESSION_USER_KEY fails at init_app with a SessionConfigError that says so
    (before any server is reached: none runs here)."""
    app = make_app(
        tmp_path,
        SESSION_TYPE="memcached",
        SESSION_USER_KEY="user_id",
    )
    with pytest.raises(SessionConfigError, match=r"SESSION_USER_KEY.*memcached.*evict"):
        Session(app)


async def test_the_per_user_api_needs_a_user_key(tmp_path: Path) -> None:
    """Proves: user_sessions, revoke and revoke_user without SESSION_USER_KEY
    raise SessionConfigError naming it, rather than answering "no sessions"."""
    app = make_app(tmp_path)
    Session(app)
    interface = interface_of(app)
    with pytest.raises(SessionConfigError, match="SESSION_USER_KEY"):
        await interface.user_sessions("alice")
    with pytest.raises(SessionConfigError, match="SESSION_USER_KEY"):
        await interface.revoke("A" * 43 + "." + "A" * 43)
    with pytest.raises(SessionConfigError, match="SESSION_USER_KEY"):
        await interface.revoke_user("alice")
