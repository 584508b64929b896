"""The per-user API's own guards (the shared suite ``suites/users.py`` runs
the behaviour on every store)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest
from quart import session

from quart_session import ServerSideSessionInterface
from quart_session.stores.base import Store, Version

from .suites.behaviour import Browser, CountingStore
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


class OrderedStore(CountingStore):
    """The real store, noting the key of every write in order."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.writes: list[str] = []

    async def save(self, key: str, payload: bytes, ttl: int, expected: Version | None) -> Any:
        self.writes.append(key)
        return await super().save(key, payload, ttl, expected)

    async def delete(self, key: str) -> None:
        self.writes.append(key)
        await super().delete(key)


async def test_a_login_is_listed_before_its_session_is_stored_and_unlisted_after_logout(
    tmp_path: Path,
) -> None:
    """The order that makes a crash between the two writes harmless: an index
    entry without its session is pruned, a session without its entry would
    escape revoke_user."""
    app = make_app(tmp_path, SESSION_USER_KEY="user_id")

    @app.get("/logout")
    async def logout() -> str:
        session.clear()
        return "ok"

    interface = app.session_interface
    assert isinstance(interface, ServerSideSessionInterface)
    store = OrderedStore(interface.store)
    interface.engine.store = store
    browser = Browser(app)
    await browser.text("/login/alice")
    index = [n for n, key in enumerate(store.writes) if key.startswith("users:")]
    sessions = [n for n, key in enumerate(store.writes) if not key.startswith("users:")]
    assert index and sessions and index[0] < sessions[0], store.writes
    store.writes.clear()
    await browser.text("/logout")
    index = [n for n, key in enumerate(store.writes) if key.startswith("users:")]
    sessions = [n for n, key in enumerate(store.writes) if not key.startswith("users:")]
    assert index and sessions and sessions[-1] < index[0], store.writes
    await interface.close()
