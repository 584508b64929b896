"""Encryption at rest (SESSION_ENCRYPTION_KEYS) on every store.

Mixed into each store's behaviour class (beside ``SessionBehaviour``, whose
``make_app``, ``store_config`` and ``read_raw`` fixtures it uses). Several apps
of one test stand for deployments with different keys over one store; a memory
store lives in its app, so the later apps are given the first one's.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import anyio
import click
import pytest
from quart import Quart

from quart_session import records, session_conflict_merged
from quart_session.cli import rotate_sessions
from quart_session.crypto import FORMAT, key_id
from quart_session.interface import ServerSideSessionInterface
from quart_session.stores.base import Outcome, Store
from quart_session.stores.memory import MemoryStore
from quart_session.stores.sealed import SealedStore

from .behaviour import Browser, ReadRaw

MARKER = "plaintext-marker-7f3e"
OLD, NEW, OTHER = (secrets.token_bytes(32) for _ in range(3))
WRITERS = 12


def interface_of(app: Quart) -> ServerSideSessionInterface:
    interface = app.session_interface
    assert isinstance(interface, ServerSideSessionInterface)
    return interface


def unsealed(store: Store) -> Store:
    return store.inner if isinstance(store, SealedStore) else store


def sealed_by(raw: bytes | None, key: bytes) -> bool:
    """Whether a raw record (a store's own header may come first) was sealed by *key*."""
    return raw is not None and FORMAT + key_id(key) in raw


@pytest.mark.anyio
class EncryptionBehaviour:
    @pytest.fixture
    def deploy(self, make_app: Callable[..., Quart], read_raw: ReadRaw) -> Callable[..., Quart]:
        """An app on the test's store with *keys* (None: encryption off). Asks
        for ``read_raw`` because its fixtures start each test on an empty
        store (Redis and memcached are flushed there), which rotation counts."""
        apps: list[Quart] = []

        def make(keys: list[bytes] | None, **config: Any) -> Quart:
            app = make_app(SESSION_ENCRYPTION_KEYS=keys, **config)
            if apps:
                shared = unsealed(interface_of(apps[0]).store)
                if isinstance(shared, MemoryStore):
                    engine = interface_of(app).engine
                    engine.store = SealedStore(shared, keys) if keys else shared
            apps.append(app)
            return app

        return make

    @staticmethod
    def key_of(app: Quart, sid: str) -> str:
        return interface_of(app).engine.key_for(sid)

    @staticmethod
    def carry(browser: Browser, app: Quart) -> Browser:
        """The same browser (its cookie) talking to another deployment."""
        moved = Browser(app)
        moved.cookie = browser.cookie
        return moved

    async def test_no_plaintext_reaches_the_store(
        self, deploy: Callable[..., Quart], read_raw: ReadRaw
    ) -> None:
        app = deploy([NEW])
        browser = Browser(app)
        await browser.text(f"/set/secret/{MARKER}")
        first = browser.sid
        raw = await read_raw(self.key_of(app, first))
        assert raw is not None
        assert sealed_by(raw, NEW)
        assert MARKER.encode() not in raw
        # The moved marker regenerate() leaves names the new record: sealed too.
        await browser.text("/regenerate")
        assert browser.sid != first
        moved = await read_raw(self.key_of(app, first))
        if moved is not None:  # a store that takes the old record leaves none
            assert records.PREFIX not in moved
            assert browser.sid.encode() not in moved
        assert MARKER.encode() not in (await read_raw(self.key_of(app, browser.sid)) or b"")
        assert await browser.text("/get/secret") == repr(MARKER)

    async def test_a_read_of_an_encrypted_session_writes_nothing(
        self, deploy: Callable[..., Quart], read_raw: ReadRaw
    ) -> None:
        app = deploy([NEW])
        browser = Browser(app)
        await browser.text("/set/user/alice")
        before = await read_raw(self.key_of(app, browser.sid))
        for _ in range(3):
            assert await browser.text("/get/user") == "'alice'"
        # A fresh nonce per write: any rewrite would change the stored bytes.
        assert await read_raw(self.key_of(app, browser.sid)) == before

    async def test_rotation_reads_old_records_and_rotate_rewrites_them(
        self, deploy: Callable[..., Quart], read_raw: ReadRaw
    ) -> None:
        before = Browser(deploy([OLD]))
        await before.text("/set/user/alice")
        rotated = deploy([NEW, OLD])
        browser = self.carry(before, rotated)
        assert await browser.text("/get/user") == "'alice'"
        key = self.key_of(rotated, browser.sid)
        assert sealed_by(await read_raw(key), OLD)  # a read rewrites nothing
        store = interface_of(rotated).store
        if not store.can_list:
            with pytest.raises(click.ClickException, match="cannot list its sessions"):
                await rotate_sessions(interface_of(rotated))
            return
        report = await rotate_sessions(interface_of(rotated))
        assert "1 rewritten under the first key" in report, report
        assert sealed_by(await read_raw(key), NEW)
        assert await self.carry(before, deploy([NEW])).text("/get/user") == "'alice'"
        assert "already under the first key" in await rotate_sessions(interface_of(rotated))

    async def test_rotate_encrypts_unencrypted_records_so_nobody_is_logged_out(
        self, deploy: Callable[..., Quart], read_raw: ReadRaw
    ) -> None:
        before = Browser(deploy(None))
        await before.text(f"/set/secret/{MARKER}")
        encrypted = deploy([NEW])
        key = self.key_of(encrypted, before.sid)
        if not interface_of(encrypted).store.can_list:
            pytest.skip("the store cannot list its records: nothing to rotate")
        report = await rotate_sessions(interface_of(encrypted))
        assert "1 encrypted (stored unencrypted before)" in report, report
        raw = await read_raw(key)
        assert sealed_by(raw, NEW)
        assert raw is not None and MARKER.encode() not in raw
        assert await self.carry(before, encrypted).text("/get/secret") == repr(MARKER)

    async def test_unknown_keys_or_no_encryption_give_a_fresh_session_never_a_500(
        self, deploy: Callable[..., Quart]
    ) -> None:
        before = Browser(deploy([OLD]))
        await before.text("/set/user/alice")
        plain = Browser(deploy(None))
        await plain.text("/set/user/bob")
        other = deploy([OTHER])
        for browser in (self.carry(before, other), self.carry(plain, other)):
            assert await browser.text("/get/user") == "None"
            sid = browser.sid
            await browser.text("/set/user/eve")  # a save after it works too
            assert browser.sid != sid
            assert await browser.text("/get/user") == "'eve'"
        if interface_of(other).store.can_list:
            report = await rotate_sessions(interface_of(other))
            assert "1 opened by no configured key (left as is)" in report, report

    async def test_a_record_copied_under_another_key_does_not_open(
        self, deploy: Callable[..., Quart]
    ) -> None:
        app = deploy([NEW])
        alice, bob = Browser(app), Browser(app)
        await alice.text("/set/user/alice")
        await bob.text("/set/user/bob")
        store = unsealed(interface_of(app).store)
        copied = await store.load(self.key_of(app, alice.sid))
        assert copied is not None
        await store.delete(self.key_of(app, bob.sid))
        saved = await store.save(self.key_of(app, bob.sid), copied.payload, 60, None)
        assert not isinstance(saved, Outcome)
        assert await bob.text("/get/user") == "None"
        assert await alice.text("/get/user") == "'alice'"

    async def test_concurrent_writers_keep_every_key_through_encryption(
        self, deploy: Callable[..., Quart]
    ) -> None:
        # Two deployments: saves of one process take turns, two collide in the store.
        apps = [deploy([NEW, OLD]), deploy([NEW])]
        merges: list[int] = []
        for app in apps:
            session_conflict_merged.connect(
                lambda sender, sid, attempt: merges.append(attempt), app, weak=False
            )
        seed = Browser(apps[0])
        await seed.text("/set/seed/planted")

        async def write(n: int) -> None:
            await self.carry(seed, apps[n % 2]).text(f"/set/k{n}/v{n}")

        async with anyio.create_task_group() as group:
            for n in range(WRITERS):
                group.start_soon(write, n)
        stored = await interface_of(apps[1]).engine.load(seed.sid)
        assert stored is not None
        assert stored.data == {"seed": "planted", **{f"k{n}": f"v{n}" for n in range(WRITERS)}}
        print(f"{len(merges)} merges through encryption")
