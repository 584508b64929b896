"""SESSION_ID_HEADER is checked at init_app: a name no HTTP message can carry,
or one the cookie machinery owns, fails at start-up with a clear message; and
the Vary it adds keeps what a view named. (What header ids do over HTTP is in
the behaviour suite, on every store.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from quart import Quart, Response

from quart_session import Session, SessionConfigError
from quart_session.config import Settings
from quart_session.transport import add_vary


def make_app(tmp_path: Path, **config: Any) -> Quart:
    app = Quart(__name__, instance_path=str(tmp_path / "instance"))
    app.config.update(SECRET_KEY="s", SESSION_TYPE="memory", **config)
    return app


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "must be None or an HTTP header name"),
        ("X Session", "must be None or an HTTP header name"),
        ("X-Session-Id:", "must be None or an HTTP header name"),
        ("X-Session-Id\r\nSet-Cookie", "must be None or an HTTP header name"),
        ("X-Séssion", "must be None or an HTTP header name"),
        (b"X-Session-Id", "must be None or an HTTP header name"),
        (True, "must be None or an HTTP header name"),
        ("Cookie", "cookies and Vary use that header"),
        ("set-cookie", "cookies and Vary use that header"),
        ("Set-Cookie2", "cookies and Vary use that header"),
        ("VARY", "cookies and Vary use that header"),
    ],
)
def test_a_bad_id_header_fails_at_init(tmp_path: Path, name: object, message: str) -> None:
    app = make_app(tmp_path, SESSION_ID_HEADER=name)
    with pytest.raises(SessionConfigError, match=message):
        Session(app)


@pytest.mark.parametrize("name", [None, "X-Session-Id", "session-token", "X_Api~Session.1"])
def test_good_id_headers_are_kept_as_given(tmp_path: Path, name: str | None) -> None:
    assert Settings.from_app(make_app(tmp_path, SESSION_ID_HEADER=name)).id_header == name


def test_the_default_is_cookies_only(tmp_path: Path) -> None:
    assert Settings.from_app(make_app(tmp_path)).id_header is None


@pytest.mark.parametrize("existing", [None, "Accept-Encoding", "Accept-Encoding, Cookie"])
def test_vary_keeps_what_the_view_named(existing: str | None) -> None:
    response = Response("")
    if existing is not None:
        response.headers["Vary"] = existing
    add_vary(response, "Cookie, X-Session-Id")
    expected = {"Cookie", "X-Session-Id"} | set((existing or "").split(", ")) - {""}
    assert set(response.vary) == expected
