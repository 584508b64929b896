"""How a session id travels: read from a request, written on a response.

Two transports share one shape: the session cookie, and the request header
``SESSION_ID_HEADER`` names, for clients that cannot keep cookies (API and
mobile clients). Which one a request uses is decided per request: a request
carrying the header is in header mode (any session cookie is ignored, and an
empty value asks for a session in header mode), every other request uses the
cookie. The response answers in the same transport.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Protocol

from werkzeug.sansio.response import Response

from .cookies import SessionCookie

if TYPE_CHECKING:
    from quart.wrappers import BaseRequestWebsocket

    from .config import Settings


class IdAction(enum.Enum):
    """What a response does with the client's session id."""

    #: Nothing: the client's id is still right.
    KEEP = enum.auto()
    #: Send the id: new, moved by regenerate(), re-signed, or (cookie) a new Expires.
    SET = enum.auto()
    #: Tell the client its session ended.
    DELETE = enum.auto()


def add_vary(response: Response, names: str) -> None:
    """Add *names* (``"Cookie"``, or several joined by ``", "``) to ``Vary``."""
    # getlist, not `in`: Werkzeug answers `in` by raising and catching a
    # KeyError (1 µs on every request that reads its session).
    if response.headers.getlist("Vary"):
        for name in names.split(", "):
            response.vary.add(name)
    else:  # the common case, without parsing and rewriting a header set
        response.headers.add("Vary", names)


class IdTransport(Protocol):
    """One way for the id to travel."""

    #: Whether a read that moved the session's expiry forward re-sends the id.
    resends_on_refresh: bool

    def read(self, request: BaseRequestWebsocket) -> str | None:
        """The id text the request carries (unverified), or None."""

    def vary(self, response: Response) -> None:
        """Name what the response depended on in ``Vary``."""

    def send(
        self,
        request: BaseRequestWebsocket,
        response: Response,
        value: str,
        permanent: bool,
        expires: int,
    ) -> None:
        """Give the client of *request* *value*, the id as it must present it,
        of a session that ends at *expires* (seconds since the epoch)."""

    def delete(self, response: Response) -> None:
        """Tell the client its session ended."""


class CookieTransport:
    """The session cookie."""

    #: A permanent cookie's Expires follows the store's refreshed expiry.
    resends_on_refresh = True

    def __init__(self, cookie: SessionCookie, vary_names: str) -> None:
        self.cookie = cookie
        self._vary_names = vary_names

    def read(self, request: BaseRequestWebsocket) -> str | None:
        return self.cookie.read(request)

    def vary(self, response: Response) -> None:
        add_vary(response, self._vary_names)

    def send(
        self,
        request: BaseRequestWebsocket,
        response: Response,
        value: str,
        permanent: bool,
        expires: int,
    ) -> None:
        # Also when unchanged: the cookie's Expires moves with every write.
        response.headers.add("Set-Cookie", self.cookie.header(value, permanent, expires))

    def delete(self, response: Response) -> None:
        self.cookie.delete(response)


class HeaderTransport:
    """The id in a request header, answered in the same response header."""

    #: A header value has no expiry to move: after a refreshing read the
    #: client's id is unchanged, so nothing is sent.
    resends_on_refresh = False

    def __init__(self, name: str) -> None:
        self.name = name

    def read(self, request: BaseRequestWebsocket) -> str | None:
        # getlist, not get: Werkzeug's get answers a missing header by raising
        # and catching a KeyError (1.6 µs; 0.4 µs this way), and most requests
        # do not carry the header. The first line wins, as with cookies.
        values = request.headers.getlist(self.name)
        return values[0] if values else None

    def vary(self, response: Response) -> None:
        # The cookie played no part: only the header.
        add_vary(response, self.name)

    def send(
        self,
        request: BaseRequestWebsocket,
        response: Response,
        value: str,
        permanent: bool,
        expires: int,
    ) -> None:
        # Only a new or changed id (created, regenerated, re-signed): the
        # client already holds the one it sent.
        if request.headers.get(self.name) != value:
            response.headers[self.name] = value

    def delete(self, response: Response) -> None:
        response.headers[self.name] = ""


class IdTransports:
    """The transports a configuration allows, chosen per request."""

    def __init__(self, settings: Settings) -> None:
        name = settings.id_header
        self.header = None if name is None else HeaderTransport(name)
        # With the header allowed, a cookie-mode response depends on the header
        # too: the same request with the header would have had another session.
        vary_names = "Cookie" if name is None else f"Cookie, {name}"
        self.cookie = CookieTransport(SessionCookie(settings), vary_names)

    def read(self, request: BaseRequestWebsocket) -> str | None:
        """The id text *request* carries in the transport it uses (unverified)."""
        header = self.header
        if header is not None:
            value = header.read(request)
            if value is not None:
                return value
        return self.cookie.read(request)

    def of(self, request: BaseRequestWebsocket) -> IdTransport:
        """The transport *request* uses."""
        header = self.header
        if header is not None and header.read(request) is not None:
            return header
        return self.cookie
