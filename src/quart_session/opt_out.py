"""Requests that never load their session: views marked ``no_session``,
requests no route matched, static files.

Quart opens the session before it matches the URL, so to know the view the
interface matches it first (``route_of``); ``use_of`` then says whether the
session is loaded.
"""

from __future__ import annotations

import enum
from contextvars import ContextVar
from typing import Any, TypeVar

import quart.globals
from quart import Blueprint, Quart
from quart.wrappers import BaseRequestWebsocket
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect, Rule

_Target = TypeVar("_Target")

#: The attribute ``no_session`` sets on a view function or a Blueprint.
MARK = "_quart_session_not_used"


def no_session(target: _Target) -> _Target:
    """Mark a view function, or every view of a Blueprint, as not using the
    session::

        @app.get("/health")
        @no_session
        async def health() -> str: ...

        no_session(api)  # a Blueprint: each of its views, nested ones too

    Its requests cost no store call, set no cookie and add no ``Vary: Cookie``,
    whatever session cookie they carry; touching ``session`` there raises
    :class:`~quart_session.SessionNotLoadedError` naming the view. Either
    decorator order works: the mark is on the function itself.
    """
    if not (isinstance(target, Blueprint) or callable(target)):
        raise TypeError(f"no_session marks a view function or a Blueprint, not {target!r}")
    try:
        setattr(target, MARK, True)
    except AttributeError:
        raise TypeError(
            f"no_session cannot mark {target!r}: mark the function the route calls"
        ) from None
    return target


class Use(enum.Enum):
    """What a request does with its session."""

    #: Loaded from the store as usual.
    LOAD = enum.auto()
    #: A view marked ``no_session``: the session raises when touched.
    REFUSED = enum.auto()
    #: A static file, or a URL no route (or error handler) serves: the session
    #: reads as empty, and what is written to it is not stored.
    DETACHED = enum.auto()


def _already_matched() -> None:
    """Stands in for a context's ``match_request`` once ``route_of`` matched."""


#: Where Quart keeps the context it is pushing, and the context's attribute
#: holding the request: a request and a websocket context up to Quart 0.22,
#: one app context since 0.23. Those this Quart lacks are left out.
_CONTEXTS: tuple[tuple[ContextVar[Any], str], ...] = tuple(
    (getattr(quart.globals, var), attribute)
    for var, attribute in (
        ("_cv_request", "request_websocket"),
        ("_cv_websocket", "request_websocket"),
        ("_cv_app", "_request_websocket"),
    )
    if hasattr(quart.globals, var)
)


def _pushing_context(request: BaseRequestWebsocket) -> Any:
    """The context Quart is pushing for *request*: it opens the session, then
    matches the URL (``match_request``). None outside of that."""
    for var, attribute in _CONTEXTS:
        ctx = var.get(None)
        if ctx is not None and getattr(ctx, attribute, None) is request:
            return ctx
    return None


def route_of(app: Quart, request: BaseRequestWebsocket) -> tuple[Rule | None, Exception | None]:
    """The rule *request* matches, or the routing error (404, 405, redirect)."""
    ctx = _pushing_context(request)
    if ctx is not None and ctx.url_adapter is not None:
        ctx.match_request()
        # Quart matches the URL again right after open_session returns, to the
        # same result: skip that second match (3 µs a request) on this
        # context. A copied context (copy_current_request_context) matches anew.
        ctx.match_request = _already_matched
        return request.url_rule, request.routing_exception
    adapter = app.create_url_adapter(request)
    if adapter is None:
        return None, None
    try:
        rule, _ = adapter.match(return_rule=True)
    except HTTPException as error:
        return None, error
    return rule, None


class SessionUses:
    """``use_of`` per request, remembered per endpoint (views and Blueprints
    are registered before the first request and do not change after it)."""

    def __init__(self, app: Quart, static_file: bool) -> None:
        self.app = app
        self.static_file = static_file
        self._by_endpoint: dict[str, Use] = {}

    def use_of(self, rule: Rule | None, error: Exception | None) -> Use:
        if rule is None:
            return self._use_on_error(error)
        endpoint = rule.endpoint
        use = self._by_endpoint.get(endpoint)
        if use is None:
            use = self._by_endpoint[endpoint] = self._use_of_endpoint(endpoint)
        return use

    def _use_on_error(self, error: Exception | None) -> Use:
        if error is None or isinstance(error, RequestRedirect):
            return Use.DETACHED
        # An error handler the app registered for it may show the session
        # (a 404 page saying who is logged in): load it then.
        # Quart's own lookup (private, the same since Flask 2.0).
        handler = self.app._find_error_handler(error, [])
        return Use.DETACHED if handler is None else Use.LOAD

    def _use_of_endpoint(self, endpoint: str) -> Use:
        if not self.static_file and (endpoint == "static" or endpoint.endswith(".static")):
            return Use.DETACHED
        view = self.app.view_functions.get(endpoint)
        if getattr(view, MARK, False):
            return Use.REFUSED
        # "outer.inner.view": the Blueprints "outer" and "outer.inner".
        names = endpoint.split(".")[:-1]
        for depth in range(1, len(names) + 1):
            blueprint = self.app.blueprints.get(".".join(names[:depth]))
            if getattr(blueprint, MARK, False):
                return Use.REFUSED
        return Use.LOAD
