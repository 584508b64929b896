"""The session cookie: read from a request, set and deleted on a response."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from quart.wrappers import BaseRequestWebsocket
from quart.wrappers import Response as QuartResponse
from werkzeug.http import dump_cookie
from werkzeug.sansio.response import Response

if TYPE_CHECKING:
    from .config import Settings


def read_cookie(request: BaseRequestWebsocket, name: str) -> str | None:
    """``request.cookies.get(name)`` without parsing every cookie into a
    MultiDict (4.5 µs a request).

    Plain ASCII headers without quotes or tabs are read here by Werkzeug's
    rules: ``key[ ]=[ ]value`` between semicolons, a part with a space inside
    its key or value is skipped, the first match wins. Anything else goes to
    Werkzeug's parser.
    """
    header = ";".join(request.headers.getlist("Cookie"))
    if name not in header:
        return None
    if not header.isascii() or '"' in header or "\t" in header:
        return request.cookies.get(name)
    for part in header.split(";"):
        key, _, value = part.partition("=")
        key, value = key.strip(" "), value.strip(" ")
        if key == name and " " not in value:
            return value
    return None


def sends_a_file(response: Response) -> bool:
    """Whether *response* sends a file (``send_file``, static files)."""
    # An HTTPException answers with a plain Werkzeug response, which has no
    # file body classes.
    return isinstance(response, QuartResponse) and isinstance(
        response.response, (response.file_body_class, response.io_body_class)
    )


class SessionCookie:
    """The session cookie: one set of attributes for reading, setting and
    deleting it, fixed once from the settings."""

    def __init__(self, settings: Settings) -> None:
        self.name = settings.cookie_name
        self._attributes: dict[str, Any] = {
            "domain": settings.cookie_domain,
            "path": settings.cookie_path,
            "secure": settings.cookie_secure,
            "httponly": settings.cookie_httponly,
            "samesite": settings.cookie_samesite,
            "partitioned": settings.cookie_partitioned,
        }
        #: (Expires second or None, "name=", attributes) of the last header.
        self._cached: tuple[int | None, str, str] | None = None

    def read(self, request: BaseRequestWebsocket) -> str | None:
        return read_cookie(request, self.name)

    def header(self, value: str, permanent: bool, expires: int) -> str:
        """The Set-Cookie header value for *value*, of a session that ends at
        *expires* (seconds since the epoch; a permanent one's Expires).

        What Werkzeug's ``dump_cookie`` makes, but only when the Expires
        second changes: the attributes after the value depend on nothing else.
        Session ids never need quoting (base64url, plus ``.`` when signed).
        """
        when = expires if permanent else None
        cached = self._cached
        if cached is None or cached[0] != when:
            header = dump_cookie(self.name, "", expires=when, **self._attributes)
            name, _, attributes = header.partition("=")
            cached = self._cached = (when, f"{name}=", attributes)
        return cached[1] + value + cached[2]

    def delete(self, response: Response) -> None:
        """Delete the cookie, with the attributes it was set with."""
        response.delete_cookie(self.name, **self._attributes)
