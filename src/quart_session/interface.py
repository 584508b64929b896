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

from . import signals
from .config import Settings
from .cookies import read_cookie
from .deadlines import Deadlines
from .errors import SessionBackendError
from .ids import IdCodec
from .serializers import META_KEY, Serializer, dumps_bytes, resolve_serializer
from .session import ServerSideSession, UnavailableSession
from .stores.base import Outcome, Store

logger = logging.getLogger("quart_session")

#: How often a save retries after losing a compare-and-set to another request.
MAX_SAVE_ATTEMPTS = 64
#: Attempts to find an unused id; a collision of 256-bit ids does not happen,
#: so a second failure means the store is broken.
MAX_CREATE_ATTEMPTS = 3

_T = TypeVar("_T")


class _Cookie(enum.Enum):
    KEEP = enum.auto()
    SET = enum.auto()
    DELETE = enum.auto()


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
                self._store = self._build_store(settings)
            except Exception as error:
                raise SessionBackendError(
                    settings.store_type, "(not created)", f"could not be set up: {error!r}"
                ) from error
        return self._store

    async def start(self) -> None:
        """Build the store and prove it is reachable (run once the app serves)."""
        store = self.store
        await self._call(store.ping)

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
        return dumps_bytes(self.serializer, data)

    def _encode_data(self, data: dict[str, Any], session: ServerSideSession) -> bytes:
        """*data* plus the session's own metadata, serialized."""
        return dumps_bytes(self.serializer, {**data, META_KEY: self._meta(session)})

    @staticmethod
    def _meta(session: ServerSideSession) -> dict[str, Any]:
        meta: dict[str, Any] = {"p": session.permanent}
        if session.client_address is not None:
            meta["a"] = session.client_address
        return meta

    def _decode(self, payload: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
        """(data, meta) of a stored record; raises ValueError if it is not one."""
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
        """The address a session is pinned to.

        Behind a reverse proxy it is the last ``X-Forwarded-For`` entry, the one
        the proxy appended: entries before it were written by the client.
        """
        if self.settings.hijack_reverse_proxy:
            forwarded = request.headers.get("X-Forwarded-For", "")
            last = forwarded.rsplit(",", 1)[-1].strip()
            if last:
                return last
        return request.remote_addr or ""

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
        if record is None:
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
            client_address=meta.get("a"),
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
            if record is None:
                return session
            try:
                data, meta = self._decode(record.payload)
            except ValueError as error:
                logger.warning("Not migrating a corrupt Quart-Session 3.0 session (%s)", error)
                return session
            dict.update(session, data)
            session.permanent = bool(meta.get("p", self.settings.permanent))
            await self._create(session)
            await self._call(self.store.delete, legacy_key)
        except SessionBackendError as error:
            return UnavailableSession(error)
        session.modified = True  # the response must carry the new id
        return session

    async def _check_pin(
        self, session: ServerSideSession, request: BaseRequestWebsocket
    ) -> ServerSideSession:
        address = self.client_address(request)
        if session.client_address is None:
            # Stored before protection was switched on: pin it now.
            session.client_address = address
            session.modified = True
            return session
        if session.client_address == address:
            return session
        assert session.sid is not None
        logger.warning(
            "Session used from %s, pinned to %s: deleted", address, session.client_address
        )
        _send(
            signals.session_hijack_detected,
            self.app,
            sid=session.sid,
            expected=session.client_address,
            actual=address,
        )
        try:
            await self._call(self.store.delete, self._key(session.sid))
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
            except SessionBackendError as error:
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

    async def _answer_with_error(
        self, app: Quart, response: Response, error: SessionBackendError
    ) -> None:
        """Turn *response* into the app's answer to *error* (503 by default).

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
        except SessionBackendError:
            logger.exception("Session changes made in a websocket were not saved")
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
                await self._delete(session)
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
            if payload != session.loaded_payload and not await self._write(session, payload):
                return _Cookie.DELETE
        if file_response:
            return _Cookie.KEEP
        if session.modified or (session.permanent and self.settings.refresh_each_request):
            return _Cookie.SET
        return _Cookie.KEEP

    async def _delete(self, session: ServerSideSession) -> None:
        assert session.sid is not None
        await self._call(self.store.delete, self._key(session.sid))
        _send(signals.session_deleted, self.app, sid=session.sid)

    async def _create(self, session: ServerSideSession) -> None:
        """Store *session* under a fresh id."""
        store = self.store
        payload = self._encode(session)
        for _ in range(MAX_CREATE_ATTEMPTS):
            sid = self.ids.new()
            result = await self._call(
                store.save, self._key(sid), payload, self.settings.lifetime, None
            )
            if not isinstance(result, Outcome):
                session.sid, session.version, session.loaded_payload = sid, result, payload
                _send(signals.session_created, self.app, sid=sid)
                return
        raise SessionBackendError(
            store.name, store.address, "the store reports every new session id as taken"
        )

    async def _write(self, session: ServerSideSession, payload: bytes) -> bool:
        """Compare-and-set *payload*; on conflict merge this request's changes
        into the newer record and retry. False if the record is gone."""
        assert session.sid is not None
        store, key = self.store, self._key(session.sid)
        expected = session.version
        changes: tuple[dict[str, Any], set[str]] | None = None
        merged: dict[str, Any] | None = None
        for attempt in range(1, MAX_SAVE_ATTEMPTS + 1):
            result = await self._call(store.save, key, payload, self.settings.lifetime, expected)
            if result is Outcome.GONE:
                return False
            if not isinstance(result, Outcome):
                if merged is not None:
                    # Later saves (save_now in a websocket) diff against this.
                    dict.clear(session)
                    dict.update(session, merged)
                session.version, session.loaded_payload = result, payload
                _send(signals.session_saved, self.app, sid=session.sid)
                return True
            current = await self._call(store.load, key)
            if current is None:
                return False
            if changes is None:
                changes = self._changes(session)
            merged = self._merge(changes, current.payload)
            payload = self._encode_data(merged, session)
            expected = current.version
            _send(signals.session_conflict_merged, self.app, sid=session.sid, attempt=attempt)
            if attempt > 2:
                # Many writers at once: spread them out instead of colliding again.
                await anyio.sleep(random.uniform(0, 0.001 * attempt))
        raise SessionBackendError(
            store.name,
            store.address,
            f"gave up saving after {MAX_SAVE_ATTEMPTS} conflicting concurrent writes",
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

        The old record is deleted, so a stolen or planted id stops working.
        ``quart.session`` itself may be passed.
        """
        session = _unwrap(session, "regenerate")
        old_sid = session.sid
        if old_sid is None:
            return  # a new session gets a fresh id when first saved anyway
        session.sid = None
        await self._create(session)
        await self._call(self.store.delete, self._key(old_sid))
        session.modified = True
        _send(signals.session_regenerated, self.app, old_sid=old_sid, sid=session.sid)
