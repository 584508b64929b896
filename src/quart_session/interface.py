"""The Quart adapter: requests and responses in, the engine does the rest.

Request: cookie -> id (parse, verify) -> engine.load -> session (pinning
checked). Response: what the view changed -> engine (create, save, end) ->
Vary and Set-Cookie, or the error handler's answer.
"""

from __future__ import annotations

import enum
import logging
from typing import Any

from quart import Quart, Response, has_websocket_context, request
from quart.sessions import SessionInterface, SessionMixin
from quart.wrappers import BaseRequestWebsocket

from . import records, signals
from .addresses import client_address, same_client
from .calls import send, uncancellable
from .compat import LEGACY_PIN_KEY, legacy_pin_holds
from .config import Settings
from .cookies import SessionCookie
from .engine import Basis, SessionEngine, StoredSession, Written
from .errors import SessionBackendError, SessionConflictError, SessionDataError
from .serializers import Serializer, resolve_serializer
from .session import ServerSideSession, UnavailableSession
from .stores.base import Store

logger = logging.getLogger("quart_session")

#: What a save can fail with that the app answers (503, 400, 409 by default).
ANSWERED = (SessionBackendError, SessionDataError, SessionConflictError)


class _Cookie(enum.Enum):
    KEEP = enum.auto()
    SET = enum.auto()
    DELETE = enum.auto()


def _unwrap(session: SessionMixin, caller: str) -> ServerSideSession:
    """The session object behind ``quart.session`` (or *session* itself)."""
    unwrap = getattr(session, "_get_current_object", None)
    target = unwrap() if unwrap is not None else session
    if not isinstance(target, ServerSideSession):
        raise TypeError(f"{caller}() needs a quart_session session, not {target!r}")
    return target


class ServerSideSessionInterface(SessionInterface):
    session_class = ServerSideSession

    def __init__(self, app: Quart, settings: Settings, engine: SessionEngine) -> None:
        self.app = app
        #: Sessions without HTTP: load, save, end, regenerate (public).
        self.engine = engine
        self._websocket_warned = False
        self._configure(settings)

    def _configure(self, settings: Settings) -> None:
        self.settings = settings
        self.engine.configure(settings)
        self.ids = self.engine.ids
        self.cookie = SessionCookie(settings)
        path = settings.static_url_path
        self._static_prefix = None if path is None else path + "/"

    # -- set-up and tear-down ---------------------------------------------------------
    @property
    def store(self) -> Store:
        """The store, built on first use from the configuration at that time
        (so clients placed in ``app.config`` by a ``before_serving`` hook count)."""
        if not self.engine.has_store:
            self._configure(Settings.from_app(self.app))
        return self.engine.store

    async def start(self) -> None:
        """Build the store and prove it is reachable (run once the app serves)."""
        self.store  # noqa: B018 - built from the configuration as it is now
        await self.engine.start()

    async def close(self) -> None:
        await self.engine.close()

    @property
    def serializer(self) -> Serializer:
        return self.engine.serializer

    @serializer.setter
    def serializer(self, value: object) -> None:
        self.engine.serializer = resolve_serializer(value)

    # Quart-Session 3.0's README spells it ``serialize``.
    serialize = serializer

    # -- opening ------------------------------------------------------------------------
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

    async def open_session(self, app: Quart, request: BaseRequestWebsocket) -> ServerSideSession:
        settings = self.settings
        cookie = self.cookie.read(request)
        if not cookie or (
            not settings.static_file
            and self._static_prefix is not None
            and request.path.startswith(self._static_prefix)
        ):
            return self._new_session(request)
        sid = self.ids.from_cookie(cookie)
        if sid is None:
            if settings.legacy_ids:
                return await self._adopt_legacy(cookie, request)
            return self._new_session(request)
        self.store  # noqa: B018 - built on the first request
        try:
            stored = await self.engine.load(sid, refresh=settings.refresh_each_request)
            if stored is None:
                return self._new_session(request)
            session = self._session(stored)
            if settings.hijack_protection:
                return await self._check_pin(session, request)
        except SessionBackendError as error:
            return UnavailableSession(error)
        return session

    def _session(self, stored: StoredSession) -> ServerSideSession:
        return ServerSideSession(
            stored.data,
            sid=stored.sid,
            version=stored.version,
            payload=stored.payload,
            permanent=records.permanent_of(stored.meta, self.settings.permanent),
            client_address=stored.address,
        )

    async def _adopt_legacy(self, cookie: str, request: BaseRequestWebsocket) -> ServerSideSession:
        """Move a Quart-Session 3.0 session (UUID4 id) to a new id, once, so that
        upgrading does not log everybody out."""
        legacy_sid = self.ids.from_legacy_cookie(cookie)
        if legacy_sid is None:
            return self._new_session(request)
        self.store  # noqa: B018 - built on the first request
        try:
            stored = await self.engine.load(legacy_sid)
            if stored is None:
                return self._new_session(request)
            session = self._new_session(request)
            # 3.0 kept its pin among the data, as the address it saw (behind a
            # proxy: the raw X-Forwarded-For value).
            pin = stored.data.pop(LEGACY_PIN_KEY, None)
            settings = self.settings
            proxies = settings.trusted_proxies if settings.hijack_reverse_proxy else None
            if (
                settings.hijack_protection
                and pin is not None
                and not legacy_pin_holds(str(pin), session.client_address, proxies)
            ):
                self._report_hijack(legacy_sid, str(pin), session.client_address)
                await self.engine.end(legacy_sid, stored.version)
                return session
            dict.update(session, stored.data)
            session.permanent = records.permanent_of(stored.meta, self.settings.permanent)
            # Every request with the old cookie migrates (or fails to) while
            # opening, so none can act on the old record later: no marker.
            moved = await self.engine.regenerate(
                stored, stored.data, self._meta(session), leave_marker=False
            )
        except SessionBackendError as error:
            return UnavailableSession(error)
        if moved is None:
            return self._new_session(request)  # migrated or logged out meanwhile
        self._adopt(session, moved, stored.data)
        session.modified = True  # the response must carry the new id
        return session

    def _report_hijack(self, sid: str, expected: str, actual: str | None) -> None:
        logger.warning("Session used from %s, pinned to %s: deleted", actual, expected)
        send(signals.session_hijack_detected, self.app, sid=sid, expected=expected, actual=actual)

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
        await self.engine.end(session.sid, session.version)
        return self._new_session(request)

    # -- saving -------------------------------------------------------------------------
    async def save_session(  # type: ignore[override]
        self, app: Quart, session: ServerSideSession, response: Response | None
    ) -> None:
        if session.saved or isinstance(session, UnavailableSession):
            return
        session.saved = True
        if response is None or has_websocket_context():
            # The client may disconnect while we save, cancelling the handler:
            # the save must finish anyway.
            await uncancellable(self._save_from_websocket(session))
            return
        if session.sid is None and not (session.modified or session.cleared):
            action = _Cookie.KEEP  # a new session nobody wrote to: nothing to do
        else:
            # Changes made before returning a file are saved; the cookie is
            # not re-sent. An HTTPException answers with a plain Werkzeug
            # response, which has no file body classes.
            file_response = (
                not self.settings.static_file
                and isinstance(response, Response)
                and isinstance(
                    response.response, (response.file_body_class, response.io_body_class)
                )
            )
            try:
                action = await self._store_changes(session, file_response)
            except ANSWERED as error:
                await self._answer_with_error(app, response, error)
                return
        if session.accessed or action is not _Cookie.KEEP:
            # getlist, not `in`: Werkzeug answers `in` by raising and catching
            # a KeyError (1 µs on every request that reads its session).
            if response.headers.getlist("Vary"):
                response.vary.add("Cookie")
            else:  # the common case, without parsing and rewriting a header set
                response.headers.add("Vary", "Cookie")
        if action is _Cookie.SET:
            assert session.sid is not None
            value = self.ids.to_cookie(session.sid)
            response.headers.add("Set-Cookie", self.cookie.header(value, session.permanent))
        elif action is _Cookie.DELETE:
            self.cookie.delete(response)

    async def _answer_with_error(self, app: Quart, response: Response, error: Exception) -> None:
        """Turn *response* into the app's answer to *error*.

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
        except ANSWERED as error:
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
        await self._store_changes(_unwrap(session, "save_now"), False, can_create=False)

    @staticmethod
    def _meta(session: ServerSideSession) -> dict[str, Any]:
        return records.meta(session.permanent, session.client_address)

    @staticmethod
    def _basis(session: ServerSideSession) -> Basis:
        assert session.sid is not None
        assert session.version is not None
        assert session.loaded_payload is not None
        return Basis(session.sid, session.version, session.loaded_payload)

    @staticmethod
    def _adopt(
        session: ServerSideSession, stored: StoredSession, sent: dict[str, Any] | None = None
    ) -> None:
        """*session* now stands for *stored*; its data too, unless it is what
        was *sent* (a merge gives other data: later saves diff against it)."""
        if stored.data is not sent:
            dict.clear(session)
            dict.update(session, stored.data)
        session.sid, session.version, session.loaded_payload = (
            stored.sid,
            stored.version,
            stored.payload,
        )

    async def _store_changes(
        self, session: ServerSideSession, file_response: bool, can_create: bool = True
    ) -> _Cookie:
        """Write what the request changed; say what the cookie must do."""
        if session.cleared:
            if session.sid is not None:
                await self.engine.end(session.sid, session.version)
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
            data = session.snapshot()
            self._adopt(session, await self.engine.create(data, self._meta(session)), data)
            return _Cookie.SET
        if session.modified or session.may_have_mutated:
            data, meta = session.snapshot(), self._meta(session)
            written, stored = await self.engine.save(self._basis(session), data, meta)
            if written is Written.GONE:
                return _Cookie.DELETE
            if stored is not None:
                self._adopt(session, stored, data)
            if written is Written.MOVED:
                # Regenerated meanwhile: the browser holds the new id by now,
                # and this request's client never gets it from us.
                return _Cookie.KEEP
        if file_response:
            return _Cookie.KEEP
        if session.modified or (session.permanent and self.settings.refresh_each_request):
            return _Cookie.SET
        return _Cookie.KEEP

    # -- ids ----------------------------------------------------------------------------
    async def regenerate(self, session: SessionMixin) -> None:
        """Move *session* to a new id, keeping its data: call it at login.

        The old id stops working at once, so a stolen or planted id is useless.
        If another request ended the session meanwhile (logout), it stays ended:
        the session continues empty, and data set afterwards starts a new one.
        ``quart.session`` itself may be passed.
        """
        session = _unwrap(session, "regenerate")
        if session.sid is None:
            return  # a new session gets a fresh id when first saved anyway
        data = session.snapshot()
        moved = await self.engine.regenerate(self._basis(session), data, self._meta(session))
        if moved is None:
            logger.info("regenerate(): the session was ended meanwhile; starting a fresh one")
            dict.clear(session)
            session.sid = session.version = session.loaded_payload = None
            session.new = True
            return
        self._adopt(session, moved, data)
        session.modified = True
