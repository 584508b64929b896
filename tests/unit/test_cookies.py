"""The hand-written cookie pieces equal the Werkzeug code they replace: the
cookie reader its parser, the cached Set-Cookie header its ``dump_cookie``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from quart import Quart
from werkzeug.http import dump_cookie

from quart_session.config import Settings
from quart_session.cookies import SessionCookie, read_cookie

NAME = "session"
TEXT = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E) | st.sampled_from("\t;=é"),
    max_size=20,
)
PARTS = st.lists(
    st.tuples(st.sampled_from([NAME, "other", " session", "session ", "sess"]), TEXT), max_size=4
)


@pytest.fixture(scope="module")
def app() -> Quart:
    return Quart(__name__)


@settings(max_examples=300)
@given(PARTS, st.sampled_from(["; ", ";", " ; "]))
def test_the_cookie_reader_equals_werkzeugs_parser(
    app: Quart, parts: list[tuple[str, str]], separator: str
) -> None:
    header = separator.join(f"{key}={value}" for key, value in parts)
    request = app.test_request_context("/", headers={"Cookie": header}).request
    assert read_cookie(request, NAME) == request.cookies.get(NAME)


def settings_for(**config: Any) -> Settings:
    app = Quart(__name__)
    app.config.update(SECRET_KEY="s", SESSION_TYPE="memory", **config)
    return Settings.from_app(app)


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"SESSION_COOKIE_DOMAIN": "example.test", "SESSION_COOKIE_PATH": "/app"},
        {"SESSION_COOKIE_SECURE": True, "SESSION_COOKIE_SAMESITE": "Strict"},
        {"SESSION_COOKIE_HTTPONLY": False, "PERMANENT_SESSION_LIFETIME": timedelta(hours=2)},
        {"SESSION_COOKIE_NAME": "__Host-s", "SESSION_COOKIE_SECURE": True},
    ],
)
@pytest.mark.parametrize("permanent", [True, False])
def test_the_cached_header_equals_dump_cookie(config: dict[str, Any], permanent: bool) -> None:
    session_settings = settings_for(**config)
    cookie = SessionCookie(session_settings)
    # The second value of each second comes from the cache; a new second renews
    # it, and so does another lifetime in the same second (session.lifetime).
    lifetime = session_settings.lifetime
    for now, value, ttl in (
        (1_800_000_000.25, "a" * 43, lifetime),
        (1_800_000_000.75, "b" * 43 + ".sig-nature_", lifetime),
        (1_800_000_000.8, "d" * 43, 30 * 86400),
        (1_800_000_007.5, "c" * 43, lifetime),
    ):
        expires = int(now) + ttl if permanent else None
        expected = dump_cookie(
            session_settings.cookie_name,
            value,
            expires=expires,
            domain=session_settings.cookie_domain,
            path=session_settings.cookie_path,
            secure=session_settings.cookie_secure,
            httponly=session_settings.cookie_httponly,
            samesite=session_settings.cookie_samesite,
            partitioned=session_settings.cookie_partitioned,
        )
        assert cookie.header(value, permanent, int(now) + ttl) == expected
