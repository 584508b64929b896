"""The session interface: the only code that touches requests, responses and cookies.

Request: cookie -> id (parse, verify) -> store.load -> serializer -> session.
Response: session changes -> serializer -> store.save (compare-and-set, merged
on conflict) -> cookie.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import anyio
import sniffio
from blinker import Signal
from quart import Quart, Response, has_websocket_context, request
from quart.sessions import SessionInterface, SessionMixin
from quart.wrappers import BaseRequestWebsocket
from werkzeug.http import dump_cookie

from . import records, signals
from .addresses import client_address, forwarded_client, same_client
from .config import Settings
from .cookies import read_cookie
from .deadlines import Deadlines
from .errors import SessionBackendError, SessionConfigError, SessionConflictError, SessionDataError
from .ids import IdCodec
from .locks import SessionTurns
from .serializers import META_KEY, Serializer, dumps_bytes, resolve_serializer
from .session import ServerSideSession, UnavailableSession
from .stores.base import Outcome, Record, Store, Version

logger = logging.getLogger("quart_session")

#: How often a save retries after losing a compare-and-set to another request
#: (the backoff below usually ends it sooner, at SESSION_BACKEND_TIMEOUT).
MAX_SAVE_ATTEMPTS = 64
#: Seconds of the first retry pause across processes, and the longest pause.
BASE_BACKOFF = 0.002
MAX_BACKOFF = 0.1
#: Where Quart-Session 3.0 kept the pinned client address: among the data.
LEGACY_PIN_KEY = "_addr"
#: How many moved markers a save or logout follows (regenerate() twice while
#: one request runs); past that the session counts as gone.
MAX_MOVES = 3
#: Attempts to find an unused id; a collision of 256-bit ids does not happen,
#: so a second failure means the store is broken.
MAX_CREATE_ATTEMPTS = 3

_T = TypeVar("_T")


class _Cookie(enum.Enum):
    KEEP = enum.auto()
    SET = enum.auto()
    DELETE = enum.auto()


class _Written(enum.Enum):
    SAVED = enum.auto()
    #: Saved under the id regenerate() moved the session to meanwhile.
    MOVED = enum.auto()
    #: The session was ended (logout, expiry) meanwhile: nothing written.
    GONE = enum.auto()


def _send(signal: Signal, app: Quart, **kwargs: Any) -> None:
    if signal.receivers:
        signal.send(app, **kwargs)


def _unwrap(session: SessionMixin, caller: str) -> ServerSideSession:
    """The session object behind ``quart.session`` (or *session* itself)."""
    unwrap = getattr(session, "_get_current_object", None)
    target = unwrap() if unwrap is not None else session
    if not isinstance(target, ServerSideSession):
        raise TypeError(f"{caller}() needs a quart_session session, not {target!r}")
    return target


def _text_or_none(value: Any) -> str | None:
    """A stored pin, if it is text (anything else was not written by us)."""
    return value if isinstance(value, str) else None


async def _uncancellable(work: Coroutine[Any, Any, None]) -> None:
    """Run *work* to its end even if the calling task is cancelled meanwhile;
    the cancellation is re-raised afterwards."""
    if sniffio.current_async_library() != "asyncio":
        with anyio.CancelScope(shield=True):  # Trio's shields stop every cancellation
            await work
        return
    # anyio's shield does not stop a plain Task.cancel(), which is how Quart
    # stops a websocket handler: run the work as its own task and outwait it.
    task = asyncio.ensure_future(work)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            cancelled = True
    task.result()
    if cancelled:
        raise asyncio.CancelledError


class ServerSideSessionInterface(SessionInterface):
    session_class = ServerSideSession

    def __init__(
        self, app: Quart, settings: Settings, build_store: Callable[[Settings], Store]
    ) -> None:
        self.app = app
        self.settings = settings
        self._build_store = build_store
        self._store: Store | None = None
        self._serializer: Serializer | None = None
        self._websocket_warned = False
        self._save_turns = SessionTurns()
        self._apply(settings)

    def _apply(self, settings: Settings) -> None:
        self.settings = settings
        self._deadlines: Deadlines | None = None
        path = settings.static_url_path
        self._static_prefix = None if path is None else path + "/"
        #: (Expires second or None, "name=", attributes) of the last Set-Cookie.
        self._cookie_attributes: tuple[int | None, str, str] | None = None
        self.ids = IdCodec(settings.id_length, settings.secret_keys or None)
        self._serializer = self._serializer or settings.serializer

    # -- set-up and tear-down ---------------------------------------------
    @property
    def store(self) -> Store:
        """The store, built on first use from the configuration at that time
        (so clients placed in ``app.config`` by a ``before_serving`` hook count)."""
        if self._store is None:
            settings = Settings.from_app(self.app)
            self._apply(settings)
            try:
                store = self._build_store(settings)
            except SessionConfigError:
                raise
            except Exception as error:
                raise SessionBackendError(
                    settings.store_type, "(not created)", f"could not be set up: {error!r}"
                ) from error
            limit = getattr(store, "max_payload", None)
            if limit is not None and settings.max_size > limit:
                raise SessionConfigError(
                    f"SESSION_MAX_SIZE ({settings.max_size} bytes) is over what the "
                    f"{store.name} store can hold ({limit} bytes); lower it"
                )
            self._store = store
        return self._store

    async def start(self) -> None:
        """Build the store and prove it is reachable (run once the app serves)."""
        store = self.store
        try:
            await self._call(store.ping)
        except SessionBackendError as error:
            # A store that refuses its configuration (a filesystem folder others
            # can write to) is a configuration error, not an outage.
            if isinstance(error.__cause__, SessionConfigError):
                raise error.__cause__ from None
            raise

    async def close(self) -> None:
        if self._store is not None:
            store, self._store = self._store, None
            await store.close()

    @property
    def serializer(self) -> Serializer:
        assert self._serializer is not None
        return self._serializer

    @serializer.setter
    def serializer(self, value: object) -> None:
        self._serializer = resolve_serializer(value)

    # Quart-Session 3.0's README spells it ``serialize``.
    serialize = serializer

    # -- store calls --------------------------------------------------------
    async def _call(self, func: Callable[..., Awaitable[_T]], *args: Any) -> _T:
        """Run one store operation within the timeout; any failure becomes a
        SessionBackendError chained to the driver's exception."""
        store = self.store
        timeout = self.settings.backend_timeout
        try:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # Trio
                with anyio.fail_after(timeout):
                    return await func(*args)
            deadlines = self._deadlines
            if deadlines is None or deadlines.loop is not loop:
                deadlines = self._deadlines = Deadlines(loop, timeout)
            token = deadlines.arm()
            try:
                return await func(*args)
            except asyncio.CancelledError:
                if deadlines.timed_out(token):
                    raise TimeoutError from None
                raise
            finally:
                deadlines.disarm(token)
        except TimeoutError as error:
            failure = SessionBackendError(
                store.name, store.address, f"{func.__name__} timed out after {timeout:g}s"
            )
            cause: BaseException = error
        except Exception as error:  # noqa: BLE001 - any driver failure
            failure = SessionBackendError(
                store.name, store.address, f"{func.__name__} failed: {error!r}"
            )
            cause = error
        _send(signals.session_store_error, self.app, error=failure)
        raise failure from cause

    def _key(self, sid: str) -> str:
        return self.settings.key_prefix + sid

    # -- encoding -------------------------------------------------------------
    def _encode(self, session: ServerSideSession) -> bytes:
        data = session.snapshot()  # a fresh dict: no second copy for the metadata
        data[META_KEY] = self._meta(session)
        return self._checked(dumps_bytes(self.serializer, data))

    def _encode_data(self, data: dict[str, Any], session: ServerSideSession) -> bytes:
        """*data* plus the session's own metadata, serialized."""
        return self._checked(dumps_bytes(self.serializer, {**data, META_KEY: self._meta(session)}))

    def _checked(self, payload: bytes) -> bytes:
        """*payload*, if it is within SESSION_MAX_SIZE: no store ever decides
        (memcached would drop the old record on a value too large for it)."""
        limit = self.settings.max_size
        if len(payload) > limit:
            raise SessionDataError(
                f"the session is {len(payload)} bytes once encoded, over "
                f"SESSION_MAX_SIZE ({limit} bytes): not saved"
            )
        return payload

    @staticmethod
    def _meta(session: ServerSideSession) -> dict[str, Any]:
        meta: dict[str, Any] = {"p": session.permanent}
        if session.client_address is not None:
            meta["a"] = session.client_address
        return meta

    def _decode(self, payload: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
        """(data, meta) of a stored record; raises ValueError if it is not one."""
        if records.is_marker(payload):
            raise ValueError("the session has ended or moved to a new id")
        try:
            data = self.serializer.loads(payload)
        except Exception as error:
            raise ValueError(f"undecodable session data: {error!r}") from error
        if not isinstance(data, dict):
            raise ValueError(f"session data is a {type(data).__name__}, not a dict")
        meta = data.pop(META_KEY, None)
        if not isinstance(meta, dict):
            # Quart-Session 3.0 kept the permanent flag among the data.
            meta = {"p": data.pop("_permanent", self.settings.permanent)}
        return data, meta

    # -- opening ----------------------------------------------------------------
    def client_address(self, request: BaseRequestWebsocket) -> str:
        """The address a session is pinned to, in canonical form.

        Behind reverse proxies it is the ``X-Forwarded-For`` entry
        ``SESSION_HIJACK_TRUSTED_PROXIES`` from the right, across every header
        line: entries left of it were written by the client.
        """
        settings = self.settings
        proxies = settings.trusted_proxies if settings.hijack_reverse_proxy else 0
        return client_address(
            request.remote_addr, request.headers.getlist("X-Forwarded-For"), proxies
        )

    def _new_session(self, request: BaseRequestWebsocket) -> ServerSideSession:
        address = self.client_address(request) if self.settings.hijack_protection else None
        return ServerSideSession(permanent=self.settings.permanent, client_address=address)

    def _is_static(self, request: BaseRequestWebsocket) -> bool:
        prefix = self._static_prefix
        return prefix is not None and request.path.startswith(prefix)

    async def open_session(self, app: Quart, request: BaseRequestWebsocket) -> ServerSideSession:
        settings = self.settings
        cookie = read_cookie(request, settings.cookie_name)
        if not cookie or (not settings.static_file and self._is_static(request)):
            return self._new_session(request)
        sid = self.ids.from_cookie(cookie)
        if sid is None:
            if settings.legacy_ids:
                return await self._adopt_legacy(cookie, request)
            return self._new_session(request)
        store = self.store
        refresh = settings.lifetime if settings.refresh_each_request else None
        try:
            record = await self._call(store.load, self._key(sid), refresh)
        except SessionBackendError as error:
            return UnavailableSession(error)
        if record is None or records.is_marker(record.payload):  # ended or moved
            return self._new_session(request)
        try:
            data, meta = self._decode(record.payload)
        except ValueError as error:
            logger.warning("Starting a fresh session: stored session is corrupt (%s)", error)
            return self._new_session(request)
        session = ServerSideSession(
            data,
            sid=sid,
            version=record.version,
            payload=record.payload,
            permanent=bool(meta.get("p", settings.permanent)),
            client_address=_text_or_none(meta.get("a")),
        )
        if settings.hijack_protection:
            return await self._check_pin(session, request)
        return session

    async def _adopt_legacy(self, cookie: str, request: BaseRequestWebsocket) -> ServerSideSession:
        """Move a Quart-Session 3.0 session (UUID4 id) to a new id, once, so that
        upgrading does not log everybody out."""
        session = self._new_session(request)
        legacy_sid = self.ids.from_legacy_cookie(cookie)
        if legacy_sid is None:
            return session
        legacy_key = self._key(legacy_sid)
        try:
            record = await self._call(self.store.load, legacy_key)
            if record is None or records.is_marker(record.payload):
                return session
            try:
                data, meta = self._decode(record.payload)
            except ValueError as error:
                logger.warning("Not migrating a corrupt Quart-Session 3.0 session (%s)", error)
                return session
            # 3.0 kept its pin among the data, as the address it saw (behind a
            # proxy: the raw X-Forwarded-For value).
            pin = data.pop(LEGACY_PIN_KEY, None)
            if (
                self.settings.hijack_protection
                and pin is not None
                and not self._legacy_pin_holds(str(pin), session.client_address)
            ):
                self._report_hijack(legacy_sid, str(pin), session.client_address)
                await self._end(legacy_sid, record.version)
                return session
            dict.update(session, data)
            session.permanent = bool(meta.get("p", self.settings.permanent))
            session.version, session.loaded_payload = record.version, record.payload
            if not await self._move(session, legacy_key):
                return self._new_session(request)  # migrated or logged out meanwhile
            # Every request with the old cookie migrates (or fails to) while
            # opening, so none can act on the old record later: no marker needed.
            await self._call(self.store.delete, legacy_key)
            _send(signals.session_created, self.app, sid=session.sid)
        except SessionBackendError as error:
            return UnavailableSession(error)
        session.modified = True  # the response must carry the new id
        return session

    def _legacy_pin_holds(self, pin: str, address: str | None) -> bool:
        """Whether the client at *address* is the one a 3.0 session was pinned to.

        Only the entry our proxies appended counts: the entries before it in a
        raw X-Forwarded-For value were written by the client.
        """
        if self.settings.hijack_reverse_proxy:
            pin = forwarded_client([pin], self.settings.trusted_proxies) or ""
        return address is not None and same_client(pin, address)

    def _report_hijack(self, sid: str, expected: str, actual: str | None) -> None:
        logger.warning("Session used from %s, pinned to %s: deleted", actual, expected)
        _send(
            signals.session_hijack_detected, self.app, sid=sid, expected=expected, actual=actual
        )

    async def _check_pin(
        self, session: ServerSideSession, request: BaseRequestWebsocket
    ) -> ServerSideSession:
        address = self.client_address(request)
        if session.client_address is None:
            # Stored before protection was switched on: pin it now.
            session.client_address = address
            session.modified = True
            return session
        if same_client(session.client_address, address):
            return session
        assert session.sid is not None
        self._report_hijack(session.sid, session.client_address, address)
        try:
            await self._end(session.sid, session.version)
        except SessionBackendError as error:
            return UnavailableSession(error)
        return self._new_session(request)

    # -- saving -------------------------------------------------------------------
    async def save_session(  # type: ignore[override]
        self, app: Quart, session: ServerSideSession, response: Response | None
    ) -> None:
        if session.saved or isinstance(session, UnavailableSession):
            return
        session.saved = True
        if response is None or has_websocket_context():
            # The client may disconnect while we save, cancelling the handler:
            # the save must finish anyway.
            await _uncancellable(self._save_from_websocket(session))
            return
        if session.sid is None and not (session.modified or session.cleared):
            action = _Cookie.KEEP  # a new session nobody wrote to: nothing to do
        else:
            # An HTTPException (a 404) answers with a plain Werkzeug response,
            # which has no file body classes.
            file_response = (
                not self.settings.static_file
                and isinstance(response, Response)
                and isinstance(
                    response.response, (response.file_body_class, response.io_body_class)
                )
            )
            try:
                action = await self._store_changes(session, file_response)
            except (SessionBackendError, SessionDataError, SessionConflictError) as error:
                await self._answer_with_error(app, response, error)
                return
        if session.accessed or action is not _Cookie.KEEP:
            # getlist, not `in`: Werkzeug answers `in` by raising and catching
            # a KeyError (1 µs on every request that reads its session).
            if response.headers.getlist("Vary"):
                response.vary.add("Cookie")
            else:  # the common case, without parsing and rewriting a header set
                response.headers.add("Vary", "Cookie")
        settings = self.settings
        if action is _Cookie.SET:
            assert session.sid is not None
            response.headers.add("Set-Cookie", self._set_cookie(session))
        elif action is _Cookie.DELETE:
            response.delete_cookie(
                settings.cookie_name,
                domain=settings.cookie_domain,
                path=settings.cookie_path,
                secure=settings.cookie_secure,
                httponly=settings.cookie_httponly,
                samesite=settings.cookie_samesite,
                partitioned=settings.cookie_partitioned,
            )

    def _set_cookie(self, session: ServerSideSession) -> str:
        """The Set-Cookie header value for *session*.

        What Werkzeug's ``dump_cookie`` makes, but only once a second: the
        attributes after the value change only when the Expires second does.
        Ids never need quoting (base64url, plus ``.`` when signed).
        """
        assert session.sid is not None
        expires = int(time.time()) + self.settings.lifetime if session.permanent else None
        cached = self._cookie_attributes
        if cached is None or cached[0] != expires:
            settings = self.settings
            header = dump_cookie(
                settings.cookie_name,
                "",
                expires=expires,
                domain=settings.cookie_domain,
                path=settings.cookie_path,
                secure=settings.cookie_secure,
                httponly=settings.cookie_httponly,
                samesite=settings.cookie_samesite,
                partitioned=settings.cookie_partitioned,
            )
            name, _, attributes = header.partition("=")
            cached = self._cookie_attributes = (expires, f"{name}=", attributes)
        return cached[1] + self.ids.to_cookie(session.sid) + cached[2]

    async def _answer_with_error(self, app: Quart, response: Response, error: Exception) -> None:
        """Turn *response* into the app's answer to *error* (503 for a store
        failure, 400 for unstorable data, 409 for a lost conflict by default).

        Saving happens after the view, inside response processing where Quart
        would turn an exception into a 500, so the handler is called here and
        its response replaces the view's in place.
        """
        # Looked up the way Quart does (its handle_user_exception changed
        # signature in 0.23).
        handler = app._find_error_handler(error, request.blueprints)
        if handler is None:
            raise error
        result = await app.ensure_async(handler)(error)
        answer = await app.make_response(result)  # type: ignore[arg-type]
        response.status_code = answer.status_code
        response.headers = answer.headers
        response.response = answer.response  # type: ignore[assignment]

    async def _save_from_websocket(self, session: ServerSideSession) -> None:
        try:
            action = await self._store_changes(session, file_response=False, can_create=False)
        except (SessionBackendError, SessionDataError, SessionConflictError) as error:
            logger.error("Session changes made in a websocket were not saved: %s", error)
            return
        if action is _Cookie.SET and session.new and not self._websocket_warned:
            self._websocket_warned = True
            logger.warning(
                "A session created inside a websocket is not stored: a websocket "
                "cannot set a cookie. Create the session in an HTTP request first."
            )

    async def save_now(self, session: SessionMixin) -> None:
        """Persist *session* now, e.g. in the middle of a websocket connection.

        ``quart.session`` itself may be passed: the proxy is unwrapped, since a
        merged save replaces the contents of the session object underneath.
        """
        target = _unwrap(session, "save_now")
        await self._store_changes(target, file_response=False, can_create=False)

    async def _store_changes(
        self,
        session: ServerSideSession,
        file_response: bool,
        can_create: bool = True,
    ) -> _Cookie:
        """Write what the request changed; say what the cookie must do."""
        if session.cleared:
            if session.sid is not None:
                await self._end(session.sid, session.version)
                _send(signals.session_deleted, self.app, sid=session.sid)
            if not session.snapshot():
                return _Cookie.DELETE if not session.new else _Cookie.KEEP
            # Data set after clear() starts a new session under a new id.
            session.sid = session.version = session.loaded_payload = None
            session.new = True
            session.cleared = False
        if session.sid is None:
            if not (session.modified and session.snapshot()):
                return _Cookie.KEEP
            if self.settings.explicit and not session.marked_dirty:
                return _Cookie.KEEP
            if not can_create:
                return _Cookie.SET  # the caller warns: nowhere to put a cookie
            await self._create(session)
            return _Cookie.SET
        if session.modified or session.may_have_mutated:
            payload = self._encode(session)
            if payload != session.loaded_payload:
                written = await self._write(session, payload)
                if written is _Written.GONE:
                    return _Cookie.DELETE
                if written is _Written.MOVED:
                    # Regenerated meanwhile: the browser holds the new id by now,
                    # and this request's client never gets it from us.
                    return _Cookie.KEEP
        if file_response:
            return _Cookie.KEEP
        if session.modified or (session.permanent and self.settings.refresh_each_request):
            return _Cookie.SET
        return _Cookie.KEEP

    async def _create(self, session: ServerSideSession) -> None:
        """Store *session* under a fresh id."""
        payload = self._encode(session)
        sid, version = await self._create_record(payload)
        session.sid, session.version, session.loaded_payload = sid, version, payload
        _send(signals.session_created, self.app, sid=sid)

    async def _create_record(self, payload: bytes) -> tuple[str, Version]:
        """Store *payload* under a fresh id: (id, version)."""
        store = self.store
        for _ in range(MAX_CREATE_ATTEMPTS):
            sid = self.ids.new()
            result = await self._call(
                store.save, self._key(sid), payload, self.settings.lifetime, None
            )
            if not isinstance(result, Outcome):
                return sid, result
        raise SessionBackendError(
            store.name, store.address, "the store reports every new session id as taken"
        )

    # -- ending and moving ----------------------------------------------------------
    async def _current(self, sid: str) -> Record | None:
        return await self._call(self.store.load, self._key(sid))

    async def _end(self, sid: str, version: Version | None, hops: int = 0) -> None:
        """End session *sid* for good: logout, hijack protection.

        A ``regenerate()`` racing this must not move the data away unseen: if
        it already did, the marker it left names the new id, which is ended
        too. Stores that can take a record (read and remove it atomically) do
        it in one round trip; others first replace the record by an *ended*
        marker with compare-and-set, then delete the key. *version* is the one
        this request loaded (None: unknown, read it first).
        """
        store, key = self.store, self._key(sid)
        if store.can_take:
            # One atomic step instead: whatever the key held is gone, and if
            # it was a moved marker, the session it names is ended too.
            taken = await self._call(store.take, key)
            target = None if taken is None else records.moved_to(taken.payload)
            if target is not None and hops < MAX_MOVES:
                await self._end(target, None, hops + 1)
            return
        for _ in range(MAX_SAVE_ATTEMPTS):
            if version is None:
                current = await self._current(sid)
                if current is None:
                    return
                version = current.version
                if current.payload == records.ENDED:
                    break
            result = await self._call(
                store.save, key, records.ENDED, self.settings.lifetime, version
            )
            if result is Outcome.GONE:
                return
            if not isinstance(result, Outcome):
                break
            current = await self._current(sid)  # written since we loaded: by whom?
            if current is None:
                return
            target = records.moved_to(current.payload)
            if target is not None and hops < MAX_MOVES:
                await self._end(target, None, hops + 1)
            if current.payload == records.ENDED:
                break
            version = current.version
        await self._call(store.delete, key)

    async def _move(self, session: ServerSideSession, from_key: str) -> bool:
        """Store *session* under a fresh id and leave a *moved* marker at
        *from_key* (compare-and-set against the version the session was loaded
        with). False, with nothing left behind, if the record at *from_key* was
        ended or moved meanwhile: logout wins."""
        store, lifetime = self.store, self.settings.lifetime
        payload = self._encode(session)
        sid, version = await self._create_record(payload)
        expected = session.version
        changes: tuple[dict[str, Any], set[str]] | None = None
        for _ in range(MAX_SAVE_ATTEMPTS):
            assert expected is not None
            result = await self._call(store.save, from_key, records.moved(sid), lifetime, expected)
            if not isinstance(result, Outcome):
                session.sid, session.version, session.loaded_payload = sid, version, payload
                return True
            current = None
            if result is Outcome.CONFLICT:
                current = await self._call(store.load, from_key)
            if current is None or records.is_marker(current.payload):
                await self._call(store.delete, self._key(sid))
                return False
            # Another request saved the old record meanwhile: carry its changes over.
            if changes is None:
                changes = self._changes(session)
            merged = self._merge(changes, current.payload)
            payload = self._encode_data(merged, session)
            rewritten = await self._call(store.save, self._key(sid), payload, lifetime, version)
            if isinstance(rewritten, Outcome):  # nobody else knows the new id yet
                raise SessionBackendError(
                    store.name, store.address, "a session under a fresh id changed unexpectedly"
                )
            version, expected = rewritten, current.version
            dict.clear(session)
            dict.update(session, merged)
        await self._call(store.delete, self._key(sid))
        raise SessionConflictError(
            f"gave up regenerating after {MAX_SAVE_ATTEMPTS} conflicting concurrent writes"
        )

    # -- compare-and-set ------------------------------------------------------------
    async def _write(self, session: ServerSideSession, payload: bytes) -> _Written:
        """Compare-and-set *payload*; on conflict merge this request's changes
        into the newer record and retry.

        Concurrent saves of one session in this process wait for each other
        instead of colliding in the store; across processes, retries back off
        exponentially within ``SESSION_BACKEND_TIMEOUT``.
        """
        assert session.sid is not None
        async with self._save_turns.take(session.sid) as turn:
            written = await self._write_in_turn(session, payload, turn.latest)
            turn.latest = None
            if written is _Written.SAVED and turn.released is not None:
                # Another save of this session waits: hand it what we stored.
                assert session.loaded_payload is not None
                assert session.version is not None
                turn.latest = Record(session.loaded_payload, session.version)
            return written

    async def _write_in_turn(
        self, session: ServerSideSession, payload: bytes, latest: Record | None
    ) -> _Written:
        """_write's work; *latest* is what this process last stored for the
        session, if a save of it just finished."""
        assert session.sid is not None
        store, lifetime = self.store, self.settings.lifetime
        sid, expected = session.sid, session.version
        # Saved by this process since this request loaded it: merge onto that
        # now rather than lose a compare-and-set against it first.
        current = latest if latest is not None and latest.version != expected else None
        changes: tuple[dict[str, Any], set[str]] | None = None
        merged: dict[str, Any] | None = None
        give_up_at = 0.0
        moves = 0
        for attempt in range(1, MAX_SAVE_ATTEMPTS + 1):
            if current is not None:
                if changes is None:
                    changes = self._changes(session)
                merged = self._merge(changes, current.payload)
                payload = self._encode_data(merged, session)
                expected = current.version
                _send(signals.session_conflict_merged, self.app, sid=sid, attempt=attempt)
            result = await self._call(store.save, self._key(sid), payload, lifetime, expected)
            if result is Outcome.GONE:
                return _Written.GONE
            if not isinstance(result, Outcome):
                if merged is not None:
                    # Later saves (save_now in a websocket) diff against this.
                    dict.clear(session)
                    dict.update(session, merged)
                moved = sid != session.sid
                session.sid, session.version, session.loaded_payload = sid, result, payload
                _send(signals.session_saved, self.app, sid=sid)
                return _Written.MOVED if moved else _Written.SAVED
            current = await self._current(sid)
            target = None if current is None else records.moved_to(current.payload)
            if target is not None and moves < MAX_MOVES:
                # regenerate() moved the session while this request ran: the
                # change still belongs to it, under its new id.
                moves += 1
                sid, current = target, await self._current(target)
            if current is None or records.is_marker(current.payload):
                return _Written.GONE
            if attempt == 1:
                give_up_at = time.monotonic() + self.settings.backend_timeout
            else:
                # Other processes write this session too: back off exponentially
                # (full jitter), but never past the time a store call may take.
                pause = random.uniform(0, min(MAX_BACKOFF, BASE_BACKOFF * 2 ** (attempt - 2)))
                if time.monotonic() + pause > give_up_at:
                    break
                await anyio.sleep(pause)
        raise SessionConflictError(
            f"session changes not saved: {attempt} compare-and-set attempts within "
            f"{self.settings.backend_timeout:g}s all lost to concurrent writes of the same session"
        )

    def _changes(self, session: ServerSideSession) -> tuple[dict[str, Any], set[str]]:
        """The top-level keys this request set (or changed in place) and deleted,
        against what it loaded."""
        assert session.loaded_payload is not None
        base, _ = self._decode(session.loaded_payload)
        mine = session.snapshot()
        updated = {k: v for k, v in mine.items() if k not in base or base[k] != v}
        return updated, base.keys() - mine.keys()

    def _merge(
        self, changes: tuple[dict[str, Any], set[str]], theirs_payload: bytes
    ) -> dict[str, Any]:
        """This request's changes on top of the newer record: on the same key
        this request, the later writer, wins."""
        updated, deleted = changes
        try:
            merged, _ = self._decode(theirs_payload)
        except ValueError:
            merged = {}
        merged.update(updated)
        for key in deleted:
            merged.pop(key, None)
        return merged

    # -- ids ----------------------------------------------------------------------
    async def regenerate(self, session: SessionMixin) -> None:
        """Move *session* to a new id, keeping its data: call it at login.

        The old id stops working at once, so a stolen or planted id is useless.
        If another request ended the session meanwhile (logout), it stays ended:
        the session continues empty, and data set afterwards starts a new one.
        ``quart.session`` itself may be passed.
        """
        session = _unwrap(session, "regenerate")
        old_sid = session.sid
        if old_sid is None:
            return  # a new session gets a fresh id when first saved anyway
        if not await self._move(session, self._key(old_sid)):
            logger.info("regenerate(): the session was ended meanwhile; starting a fresh one")
            dict.clear(session)
            session.sid = session.version = session.loaded_payload = None
            session.new = True
            return
        session.modified = True
        _send(signals.session_created, self.app, sid=session.sid)
        _send(signals.session_regenerated, self.app, old_sid=old_sid, sid=session.sid)
