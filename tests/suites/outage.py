"""A store whose server is away: every store with a server runs these.

* ``OutageBehaviour`` (the concurrency suite, through a real ASGI server, plus
  an outage): a store that stops answering gives a quick 503, then recovers.
* ``CutShortOperations``: an operation cut short while the server is frozen
  leaves the store working; the late reply is never taken for the next one.
* ``UnreachableStore``: a store aimed at a closed port fails ``ping`` quickly,
  and an app's start-up names the store and its address, without its secrets.

``OutageBehaviour`` and ``CutShortOperations`` need ``store_control``: async
``stop()`` and ``start()`` of the store's server (frozen, so that connections
hang as they would on a dead host). ``CutShortOperations`` also needs ``store``;
where the store pools connections it should hold one, so that the next command
reuses the connection the cut-short one left. ``UnreachableStore`` needs
``unreachable``: an ``Unreachable`` aimed at a free port.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
import pytest
from quart import Quart

from quart_session import Session, SessionBackendError
from quart_session.config import Settings
from quart_session.stores import Store, build_store

from .concurrency import ConcurrencyBehaviour, Served
from .contract import create


class StoreControl(Protocol):
    async def stop(self) -> None: ...

    async def start(self) -> None: ...


@pytest.mark.anyio
class OutageBehaviour(ConcurrencyBehaviour):
    """For stores with a server: a store outage is a quick 503, then recovery."""

    TIMEOUT = 1.0

    @property
    def extra_config(self) -> dict[str, Any]:
        return {"SESSION_BACKEND_TIMEOUT": self.TIMEOUT}

    async def test_store_down_gives_503_within_the_timeout_then_recovers(
        self, served: Served, store_control: StoreControl
    ) -> None:
        async with served.client() as client:
            sid = await self.start_session(served, client)
            cookies = served.cookie_header(sid)
            await store_control.stop()
            try:
                for path in ("/keys", "/set/a/b"):
                    started = time.monotonic()
                    response = await client.get(path, headers=cookies)
                    elapsed = time.monotonic() - started
                    assert response.status_code == 503, path
                    assert response.headers["Retry-After"]
                    assert elapsed < self.TIMEOUT + 1, (path, elapsed)
            finally:
                await store_control.start()
            deadline = time.monotonic() + 10
            response = await client.get("/set/after/outage", headers=cookies)
            while response.status_code != 200 and time.monotonic() < deadline:
                await anyio.sleep(0.2)
                response = await client.get("/set/after/outage", headers=cookies)
            assert response.status_code == 200


@pytest.mark.anyio
class CutShortOperations:
    async def test_an_operation_cut_short_leaves_the_store_working(
        self, store: Store, store_control: StoreControl
    ) -> None:
        await create(store, key="session:a", payload=b"a")
        await create(store, key="session:b", payload=b"b")
        await store_control.stop()  # the request is sent, the reply held back
        try:
            with anyio.move_on_after(0.5) as waited:
                await store.load("session:a")
            assert waited.cancelled_caught
        finally:
            await store_control.start()
        # The late reply to the cancelled read must not be taken for this one.
        record = await store.load("session:b")
        assert record is not None and record.payload == b"b"


@dataclass(frozen=True)
class Unreachable:
    """A store aimed at a port nothing listens on."""

    #: The ``app.config`` keys of the store (SESSION_TYPE included).
    config: dict[str, Any]
    #: What the store calls itself: ``store.address``, named in errors.
    address: str
    #: What ``ping`` raises, and the text its message must contain.
    error: type[BaseException]
    match: str | None = None
    #: Never in the start-up error: passwords, the driver's own noise.
    hidden: tuple[str, ...] = ()


def app_for(config: dict[str, Any]) -> Quart:
    app = Quart(__name__)
    app.config.update(config)
    return app


@pytest.mark.anyio
class UnreachableStore:
    async def test_ping_fails_quickly_on_a_closed_port(self, unreachable: Unreachable) -> None:
        store = build_store(Settings.from_app(app_for(unreachable.config)))
        try:
            assert store.address == unreachable.address
            with anyio.fail_after(5), pytest.raises(unreachable.error, match=unreachable.match):
                await store.ping()
        finally:
            await store.close()

    async def test_unreachable_at_startup_names_the_store_and_address(
        self, unreachable: Unreachable
    ) -> None:
        app = app_for(unreachable.config)
        Session(app)
        try:
            with anyio.fail_after(5), pytest.raises(SessionBackendError) as failure:
                await app.startup()
        finally:
            await app.session_interface.close()  # type: ignore[attr-defined]
        message = str(failure.value)
        assert f"'{unreachable.config['SESSION_TYPE']}' at {unreachable.address}" in message
        for hidden in unreachable.hidden:
            assert hidden not in message
