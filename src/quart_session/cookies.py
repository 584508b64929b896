"""Reading the session cookie from a request."""

from __future__ import annotations

from quart.wrappers import BaseRequestWebsocket


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
