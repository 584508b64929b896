"""What every fuzz target shares: the app under test, a spy on its real store,
and the checks each answer must pass.

The spy forwards every call to the store the engine holds (a real memory,
filesystem or Redis store) and notes the method and key: a malformed id must
not reach the store at all, and no request may touch a key other than that of
a valid id it presented or of the fresh id it was sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import event
from quart import Quart, Response, request, session
from werkzeug.datastructures import Headers
from werkzeug.sansio.http import parse_cookie

from quart_session import ServerSideSessionInterface, Session
from quart_session.engine import SessionEngine
from quart_session.ids import IdCodec
from quart_session.stores.base import Record, SaveResult, Store, Version
from quart_session.stores.sealed import SealedStore

#: Answers a fuzzed request may get (409: a merge that lost every retry, a clear
#: conflict; only the merge target allows it).
OK_STATUSES = frozenset({200, 503})
#: The peer address of every request unless a target chooses one.
PEER = "127.0.0.1"
#: Seconds one racing request waits for the other at the gate before giving up.
GATE_TIMEOUT = 5.0


class SpyStore(Store):
    """The real store, every call forwarded and noted as (method, key)."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        # The engine reads the flags to choose its calls: the real store's choice.
        self.offer_what(inner)
        limit = getattr(inner, "max_payload", None)
        if limit is not None:
            self.max_payload = limit
        self.calls: list[tuple[str, str]] = []

    @property
    def address(self) -> str:
        return self.inner.address

    async def load(self, key: str, refresh_ttl: int | None = None) -> Record | None:
        self.calls.append(("load", key))
        return await self.inner.load(key, refresh_ttl)

    async def expire(self, key: str, ttl: int) -> bool:
        self.calls.append(("expire", key))
        return await self.inner.expire(key, ttl)

    async def expires_at(self, key: str) -> float | None:
        self.calls.append(("expires_at", key))
        return await self.inner.expires_at(key)

    async def save(
        self, key: str, payload: bytes, ttl: int, expected: Version | None
    ) -> SaveResult:
        self.calls.append(("save", key))
        return await self.inner.save(key, payload, ttl, expected)

    async def delete(self, key: str) -> None:
        self.calls.append(("delete", key))
        await self.inner.delete(key)

    async def take(self, key: str) -> Record | None:
        self.calls.append(("take", key))
        return await self.inner.take(key)

    async def count(self, prefix: str) -> int:
        self.calls.append(("count", prefix))
        return await self.inner.count(prefix)

    async def keys(self, prefix: str) -> AsyncIterator[str]:
        self.calls.append(("keys", prefix))
        async for key in self.inner.keys(prefix):
            yield key

    async def purge_expired(self) -> int:
        self.calls.append(("purge_expired", ""))
        return await self.inner.purge_expired()

    async def ping(self) -> None:
        self.calls.append(("ping", ""))
        await self.inner.ping()

    async def close(self) -> None:
        await self.inner.close()


def build_app(config: dict[str, Any], instance: Path) -> Quart:
    """A small app: read, write, log in (regenerate), log out, and an update
    that waits at a gate so that two requests race on one session."""
    app = Quart(__name__, instance_path=str(instance))
    app.config.update({"SECRET_KEY": "fuzz-secret", **config})
    # Exceptions reach the test client (and hypothesis) instead of becoming a 500.
    app.testing = True

    @app.get("/read")
    async def read() -> str:
        return repr(session.get("n"))

    @app.get("/write")
    async def write() -> str:
        count = session.get("n")
        session["n"] = count + 1 if type(count) is int else 1
        return "written"

    @app.get("/login")
    async def login() -> str:
        session["user"] = "alice"
        await app.session_interface.regenerate(session)  # type: ignore[attr-defined]
        return "logged in"

    @app.get("/logout")
    async def logout() -> str:
        session.clear()
        return "logged out"

    @app.post("/update")
    async def update() -> str:
        body = await request.get_json()
        for key in body["delete"]:
            session.pop(key, None)
        session.update(body["set"])
        gate: Gate | None = app.extensions.get("fuzz_gate")
        if gate is not None:
            await gate.meet()
        return "updated"

    Session(app)
    return app


class Gate:
    """Holds each racing request after it loaded and changed its session until
    the other one has too, so that both save against the same version."""

    def __init__(self, parties: int) -> None:
        self._barrier = asyncio.Barrier(parties)

    async def meet(self) -> None:
        async with asyncio.timeout(GATE_TIMEOUT):
            await self._barrier.wait()


RawHeaders = Sequence[tuple[str, bytes]]
"""Header lines as a client sends them: a name and the value's bytes."""


def as_text(headers: RawHeaders, name: str) -> list[str]:
    """The values of header *name* as Quart reads them (latin-1)."""
    return [value.decode("latin-1") for key, value in headers if key.lower() == name.lower()]


@dataclass
class Presented:
    """The id values a request carried (raw text) and those the codec accepts."""

    raw: set[str] = field(default_factory=set)
    valid: set[str] = field(default_factory=set)


class Fuzzed:
    """The app under test with a spy on its store, and the invariant checks."""

    def __init__(self, config: dict[str, Any], instance: Path) -> None:
        self.app = build_app(config, instance)
        self.client = self.app.test_client(use_cookies=False)
        interface = self.app.session_interface
        assert isinstance(interface, ServerSideSessionInterface)
        self.interface: ServerSideSessionInterface = interface
        self.engine: SessionEngine = interface.engine
        self.spy: SpyStore = SpyStore(interface.store)
        self.engine.store = self.spy
        self.codec: IdCodec = interface.ids
        self.cookie_name: str = interface.settings.cookie_name
        self.id_header: str | None = interface.settings.id_header

    @property
    def raw_store(self) -> Store:
        """The store below encryption: where records are planted as bytes."""
        inner = self.spy.inner
        return inner.inner if isinstance(inner, SealedStore) else inner

    async def close(self) -> None:
        await self.interface.close()

    # -- requests -------------------------------------------------------------------
    async def send(
        self,
        path: str,
        headers: RawHeaders = (),
        *,
        peer: str = PEER,
        json: Any = None,
    ) -> Response:
        """GET *path* with exactly these header lines as bytes (the test client
        would encode text as UTF-8, and no client could send other bytes), or
        POST *json* with them."""
        scope: dict[str, Any] = {"client": (peer, 40000)}
        if json is None:
            scope["headers"] = [(b"host", b"localhost")] + [
                (name.lower().encode(), value) for name, value in headers
            ]
        text = Headers([(name, value.decode("latin-1")) for name, value in headers])
        return await self.client.open(
            path,
            method="GET" if json is None else "POST",
            headers=text if json is not None else None,
            json=json,
            scope_base=scope,
        )

    async def new_session(self, headers: RawHeaders = (), peer: str = PEER) -> str:
        """The id value (as the client holds it) of a freshly written session."""
        response = await self.send("/write", headers, peer=peer)
        assert response.status_code == 200, response.status_code
        value = self._sent_id(response)
        assert value, "a write must send the session id"
        return value

    def cookie_headers(self, value: str) -> RawHeaders:
        return [("Cookie", f"{self.cookie_name}={value}".encode())]

    # -- what a request presented -----------------------------------------------------
    def presented_cookies(self, headers: RawHeaders) -> Presented:
        """Every value any reading of the Cookie lines could take for the session
        cookie: split by hand (quotes kept) and by Werkzeug's parser, on the
        text Quart makes of the bytes (latin-1)."""
        joined = ";".join(as_text(headers, "Cookie"))
        candidates = set(parse_cookie(joined).getlist(self.cookie_name))
        for part in joined.split(";"):
            key, _, value = part.partition("=")
            if key.strip() == self.cookie_name:
                candidates.add(value.strip())
        return self._presented(candidates)

    def presented_header(self, headers: RawHeaders) -> Presented:
        assert self.id_header is not None
        return self._presented(as_text(headers, self.id_header))

    def _presented(self, candidates: Iterable[str]) -> Presented:
        found = Presented()
        for value in candidates:
            found.raw.add(value)
            sid = self.codec.from_cookie(value)
            if sid is not None:
                found.valid.add(sid)
        return found

    # -- the invariants ---------------------------------------------------------------
    def sent_cookie(self, response: Response) -> str | None:
        """The session cookie's value in the response's Set-Cookie ("" for a
        deletion, None if not sent); fails on more than one."""
        prefix = f"{self.cookie_name}="
        sent = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(prefix)]
        assert len(sent) <= 1, f"the session cookie was set {len(sent)} times: {sent}"
        if not sent:
            return None
        value, _, attributes = sent[0][len(prefix) :].partition(";")
        if value == "":
            assert "Max-Age=0" in attributes, f"an empty cookie that is no deletion: {sent[0]!r}"
        return value

    async def check(
        self,
        response: Response,
        presented: Presented,
        *,
        statuses: frozenset[int] = OK_STATUSES,
        live: set[str] | None = None,
    ) -> str | None:
        """Every invariant of one answer; the id it sent (None: none, "": ended).

        *live*: the valid ids that name a session that may be re-sent as is (a
        read refreshing its expiry); any other id sent must be fresh.
        """
        assert response.status_code in statuses, (
            f"status {response.status_code}: {await response.get_data(as_text=True)!r}"
        )
        sent = self._sent_id(response)
        kind = "no id" if sent is None else "id ended" if sent == "" else "id sent"
        event(f"{response.status_code}, {kind}")
        allowed = {self.engine.key_for(sid) for sid in presented.valid}
        if sent:
            sid = self.codec.from_cookie(sent)
            assert sid is not None, f"sent an id the codec refuses: {sent!r}"
            assert sent == self.codec.to_cookie(sid), f"sent an id not in its own form: {sent!r}"
            if sent in presented.raw:
                assert sid in (live or set()), f"echoed an id it did not hold: {sent!r}"
            else:
                record = await self.spy.inner.load(self.engine.key_for(sid))
                assert record is not None, f"sent a fresh id with no record behind it: {sent!r}"
            allowed.add(self.engine.key_for(sid))
        stray = [(method, key) for method, key in self.spy.calls if key not in allowed]
        assert not stray, f"store calls for keys of no presented valid or fresh id: {stray}"
        return sent

    def _sent_id(self, response: Response) -> str | None:
        """The id the response gave the client, in the transport the request used."""
        cookie = self.sent_cookie(response)
        if self.id_header is None:
            return cookie
        header = response.headers.getlist(self.id_header)
        assert len(header) <= 1, f"the id header was sent {len(header)} times"
        if header:
            assert cookie is None, "answered in both the header and the cookie"
            return header[0]
        return cookie


class RealSession:
    """A live session the fuzzed requests may present (or mangle); made again,
    with *headers* from *peer*, whenever a case ended or moved it."""

    def __init__(self, fuzzed: Fuzzed, headers: RawHeaders = (), peer: str = PEER) -> None:
        self.fuzzed = fuzzed
        self.headers = headers
        self.peer = peer
        self.value = ""

    @property
    def sid(self) -> str | None:
        return self.fuzzed.codec.from_cookie(self.value) if self.value else None

    async def ensure(self) -> str:
        """The id value of the live session; the spy's notes cleared."""
        fuzzed, sid = self.fuzzed, self.sid
        if sid is None or await fuzzed.engine.load(sid) is None:
            self.value = await fuzzed.new_session(self.headers, self.peer)
        fuzzed.spy.calls.clear()
        return self.value

    async def alive(self) -> bool:
        """Whether the session still loads (read below the spy)."""
        sid = self.sid
        return (
            sid is not None
            and await self.fuzzed.spy.inner.load(self.fuzzed.engine.key_for(sid)) is not None
        )
