"""The Quart adapter: requests and responses in, the engine does the rest.

Request: cookie or id header (``transport.py``) -> id (parse, verify) ->
engine.load -> session (pinning checked). Response: what the view changed ->
engine (create, save, end) -> Vary and Set-Cookie or the id header, or the
error handler's answer.
"""

from __future__ import annotations

import logging
import time

from quart import (
    Quart,
    Response,
    has_request_context,
    has_websocket_context,
    request,
    websocket,
)
from quart import session as current_session
from quart.sessions import SessionInterface, SessionMixin
from quart.wrappers import BaseRequestWebsocket, Websocket

from .addresses import client_address, same_client
from .answers import ANSWERED, answer_with_error
from .budgets import current_budget, own_budget, start_budget
from .calls import uncancellable
from .compat import migrate
from .config import Settings
from .cookies import sends_a_file
from .engine import SessionEngine
from .errors import SessionBackendError, SessionConfigError
from .opt_out import SessionUses, Use, route_of
from .serializers import Serializer, resolve_serializer
from .session import (
    DetachedSession,
    Persisted,
    RefusedSession,
    ServerSideSession,
    UnavailableSession,
    unwrap,
)
from .signals import hijack_detected
from .stores.base import Store
from .transport import IdAction, IdTransport, IdTransports
from .user_index import UserSessions
from .users import SessionInfo, user_text

logger = logging.getLogger("quart_session")


def _resent(session: ServerSideSession, on_refresh: bool = True) -> IdAction:
    """The id of a session this request did not change: re-sent when it was
    signed with an old key, or (*on_refresh*: the cookie) when its Expires
    must follow the store's refreshed expiry (every read on Redis; once
    SESSION_REFRESH_AFTER has passed elsewhere)."""
    if session.resend_cookie or (on_refresh and session.permanent and session.refreshed):
        return IdAction.SET
    return IdAction.KEEP


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
        self.transports = IdTransports(settings)
        self.uses = SessionUses(self.app, settings.static_file)
        if self.engine.users is not None:
            self.engine.users.client_info = self._client_info
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
        # All of this request's store work, from here to its answer, shares
        # SESSION_BACKEND_TIMEOUT; a websocket's only until it is open.
        budget = start_budget(self.settings.backend_timeout)
        try:
            return await self._open_session(app, request)
        finally:
            if isinstance(request, Websocket):
                budget.open = False

    async def _open_session(self, app: Quart, request: BaseRequestWebsocket) -> ServerSideSession:
        settings = self.settings
        # In header mode ``cookie`` is the header's value: validated alike.
        cookie = self.transports.read(request)
        if (
            not settings.static_file
            and self._static_prefix is not None
            and request.path.startswith(self._static_prefix)
        ):
            return DetachedSession() if cookie else self._new_session(request)
        rule, routing_error = route_of(app, request)
        use = self.uses.use_of(rule, routing_error)
        if use is Use.REFUSED:
            assert rule is not None
            return RefusedSession(rule.endpoint)
        if not cookie:
            return self._new_session(request)
        if use is Use.DETACHED:
            return DetachedSession()
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
            session = ServerSideSession.from_stored(stored, settings.permanent)
            if self.ids.needs_resigning(cookie, sid):
                session.resend_cookie = True
            if settings.hijack_protection:
                return await self._check_pin(session, request)
        except SessionBackendError as error:
            return UnavailableSession(error)
        return session

    async def _adopt_legacy(self, cookie: str, request: BaseRequestWebsocket) -> ServerSideSession:
        """A Quart-Session 3.0 cookie: its session moved to a new id, once."""
        legacy_sid = self.ids.from_legacy_cookie(cookie)
        session = self._new_session(request)
        if legacy_sid is None:
            return session
        self.store  # noqa: B018 - built on the first request
        settings = self.settings
        try:
            moved = await migrate(
                self.engine,
                legacy_sid,
                session,
                pinned=settings.hijack_protection,
                trusted_proxies=settings.trusted_proxies if settings.hijack_reverse_proxy else None,
            )
        except SessionBackendError as error:
            return UnavailableSession(error)
        return session if moved else self._new_session(request)

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
        hijack_detected(self.app, session.sid, session.client_address, address)
        await self.engine.end(session.sid, session.version, owner=session.owner)
        return self._new_session(request)

    # -- saving -------------------------------------------------------------------------
    async def save_session(  # type: ignore[override]
        self, app: Quart, session: ServerSideSession, response: Response | None
    ) -> None:
        try:
            await self._save_session(app, session, response)
        finally:
            # Answered: a task the view started and that runs on is no longer
            # held to this request's time.
            budget = current_budget()
            if budget is not None:
                budget.open = False

    async def _save_session(
        self, app: Quart, session: ServerSideSession, response: Response | None
    ) -> None:
        if session.saved or isinstance(session, UnavailableSession):
            return
        if isinstance(session, DetachedSession):
            if session.modified:
                # repr: the path is the client's text (no line breaks in logs).
                served = websocket if has_websocket_context() else request
                logger.warning(
                    "Session changes made while serving %r were not stored: requests for "
                    "static files and URLs no route serves do not load the session",
                    served.path,
                )
            return
        session.saved = True
        if response is None or has_websocket_context():
            # The client may disconnect while we save, cancelling the handler:
            # the save must finish anyway.
            await uncancellable(self._save_from_websocket(session))
            return
        transport = self.transports.of(request)
        if session.sid is None and not (session.modified or session.cleared):
            action = IdAction.KEEP  # a new session nobody wrote to: nothing to do
        elif not (session.modified or session.cleared or session.may_have_mutated):
            # A loaded session nobody changed (the common read): nothing to
            # store, only the cookie may be due.
            action = _resent(session, transport.resends_on_refresh)
            if action is IdAction.SET and not self.settings.static_file and sends_a_file(response):
                action = IdAction.KEEP
        else:
            # Changes made before returning a file are saved; the cookie is
            # not re-sent.
            file_response = not self.settings.static_file and sends_a_file(response)
            try:
                action = await self._store_changes(session, file_response, transport)
            except ANSWERED as error:
                await answer_with_error(app, response, error)
                return
        if session.accessed or action is not IdAction.KEEP:
            transport.vary(response)
        if action is IdAction.SET:
            assert session.sid is not None
            value = self.ids.to_cookie(session.sid)
            expires_at = session.expires_at
            if expires_at is None:
                expires_at = time.time() + self.settings.lifetime
            transport.send(request, response, value, session.permanent, int(expires_at))
        elif action is IdAction.DELETE:
            transport.delete(response)

    async def _save_from_websocket(self, session: ServerSideSession) -> None:
        try:
            with own_budget(self.settings.backend_timeout):
                action = await self._store_changes(session, file_response=False, can_create=False)
        except ANSWERED as error:
            logger.error("Session changes made in a websocket were not saved: %s", error)
            return
        if action is IdAction.SET and session.new and not self._websocket_warned:
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
        target = unwrap(session, "save_now")
        if not has_websocket_context():  # part of the request being served
            await self._store_changes(target, False, can_create=False)
            return
        # A websocket may live for hours: each save has the whole time.
        with own_budget(self.settings.backend_timeout):
            await self._store_changes(target, False, can_create=False)

    async def _store_changes(
        self,
        session: ServerSideSession,
        file_response: bool,
        transport: IdTransport | None = None,
        can_create: bool = True,
    ) -> IdAction:
        """Store what the request changed; say what the id's *transport* must
        do (None: a websocket, which can send nothing)."""
        settings = self.settings
        done = await session.persist(self.engine, explicit=settings.explicit, can_create=can_create)
        if done in (Persisted.CREATED, Persisted.NOT_CREATED):
            return IdAction.SET  # not created: the websocket caller warns
        if done in (Persisted.ENDED, Persisted.GONE):
            return IdAction.DELETE
        # Moved: regenerated meanwhile; the browser holds the new id by now,
        # and this request's client never gets it from us (no id after a
        # move: the moved marker names the new record, not the new id).
        if done in (Persisted.NOTHING, Persisted.MOVED) or file_response or session.sid is None:
            return IdAction.KEEP
        if session.modified:
            return IdAction.SET
        return _resent(session, transport is None or transport.resends_on_refresh)

    # -- sessions per user (SESSION_USER_KEY) ----------------------------------------------
    def _users(self) -> UserSessions:
        self.store  # noqa: B018 - built on first use
        users = self.engine.users
        if users is None:
            raise SessionConfigError("sessions are indexed by user only with SESSION_USER_KEY set")
        return users

    def _client_info(self) -> tuple[str | None, str | None]:
        """Where the request being served comes from: kept with a login."""
        if not (has_request_context() or has_websocket_context()):
            return None, None
        served = websocket if has_websocket_context() else request
        return self.client_address(served), served.headers.get("User-Agent")

    @staticmethod
    def _current_name() -> str | None:
        """The record name of the session of the request being served, if any."""
        if not (has_request_context() or has_websocket_context()):
            return None
        found = getattr(current_session, "_get_current_object", lambda: None)()
        return found.name if isinstance(found, ServerSideSession) else None

    async def user_sessions(self, user: str | int | float | bool) -> list[SessionInfo]:
        """The live sessions of *user* (the value ``session[SESSION_USER_KEY]``
        holds, compared as text), most recently used first; ``current`` marks
        the caller's own when called while serving a request."""
        return await self._users().sessions(user_text(user), self._current_name())

    async def revoke(self, handle: str, user: str | int | float | bool | None = None) -> bool:
        """End the session :attr:`SessionInfo.handle` names; True if a live
        session was ended. Its next request gets a fresh, empty session, and a
        request in flight cannot bring it back.

        A handle comes back from the client (a "log out this device" form):
        pass the *user* asking, and a handle of another user's session ends
        nothing (False, no store call)."""
        return await self._users().revoke(handle, only_of=None if user is None else user_text(user))

    async def revoke_user(self, user: str | int | float | bool, keep_current: bool = False) -> int:
        """End every session of *user* ("log out everywhere"; with
        *keep_current*, everywhere else); how many were ended."""
        keep = self._current_name() if keep_current else None
        return await self._users().revoke_user(user_text(user), keep)

    # -- ids ----------------------------------------------------------------------------
    async def regenerate(self, session: SessionMixin) -> None:
        """Move *session* to a new id, keeping its data: call it at login.

        The old id stops working at once, so a stolen or planted id is useless.
        If another request ended the session meanwhile (logout), it stays ended:
        the session continues empty, and data set afterwards starts a new one.
        ``quart.session`` itself may be passed.
        """
        await unwrap(session, "regenerate").regenerate(self.engine)
