"""The per-user API's own guards (the shared suite ``suites/users.py`` runs
the behaviour on every store)."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from quart_session import ServerSideSessionInterface

from .suites.behaviour import Browser
from .test_users_upgrade import make_app

pytestmark = pytest.mark.anyio


async def test_revoke_with_a_user_ends_only_that_user_s_sessions(tmp_path: Path) -> None:
    """A handle sent back by a client ("log out this device") cannot end
    another user's session when the asking user is passed."""
    app = make_app(tmp_path, SESSION_USER_KEY="user_id")
    interface = app.session_interface
    assert isinstance(interface, ServerSideSessionInterface)
    alice, bob = Browser(app), Browser(app)
    await alice.text("/login/alice")
    await bob.text("/login/bob")
    async with app.app_context():
        (bobs,) = await interface.user_sessions("bob")
        assert not await interface.revoke(bobs.handle, user="alice")
        assert await bob.text("/who") == "'bob'"
        assert await interface.revoke(bobs.handle, user="bob")
        assert not await interface.revoke(bobs.handle, user="bob")
    assert await bob.text("/who") == "None"
    assert await alice.text("/who") == "'alice'"
    await interface.close()


async def test_an_index_no_key_opens_is_started_anew(tmp_path: Path) -> None:
    """A user's index sealed by a key since dropped (without running
    ``quart session rotate``) does not block that user's next login."""
    old, new = secrets.token_bytes(32), secrets.token_bytes(32)
    before = make_app(tmp_path, SESSION_USER_KEY="user_id", SESSION_ENCRYPTION_KEYS=[old])
    await Browser(before).text("/login/alice")
    await before.session_interface.close()  # type: ignore[attr-defined]
    after = make_app(tmp_path, SESSION_USER_KEY="user_id", SESSION_ENCRYPTION_KEYS=[new])
    browser = Browser(after)
    await browser.text("/login/alice")
    interface = after.session_interface
    assert isinstance(interface, ServerSideSessionInterface)
    async with after.app_context():
        (listed,) = await interface.user_sessions("alice")
    assert listed.current is False
    await interface.close()
