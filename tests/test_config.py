"""Configuration is validated once, with errors that say what to fix."""

from __future__ import annotations

import logging
import pprint
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from quart import Quart, session

from quart_session import ServerSideSessionInterface, Session, SessionConfigError
from quart_session.config import redact_url


def make_app(tmp_path: Path, **config: Any) -> Quart:
    app = Quart(__name__, instance_path=str(tmp_path / "instance"))
    app.config.update(SECRET_KEY="s", **config)
    return app


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"SESSION_TYPE": "rediss"}, "SESSION_TYPE 'rediss' is unknown"),
        ({"SESSION_TYPE": 3}, "SESSION_TYPE must be a store name, a Store instance or "),
        ({"SESSION_PERMANENT": "yes"}, "SESSION_PERMANENT must be bool"),
        ({"SESSION_ID_LENGTH": 8}, "SESSION_ID_LENGTH must be between 16 and 128"),
        ({"SESSION_ID_LENGTH": True}, "SESSION_ID_LENGTH must be int"),
        ({"SESSION_BACKEND_TIMEOUT": 0}, "SESSION_BACKEND_TIMEOUT must be > 0"),
        ({"SESSION_BACKEND_TIMEOUT": "2"}, "SESSION_BACKEND_TIMEOUT must be int or float"),
        ({"SESSION_SERIALIZER": "yaml"}, "SESSION_SERIALIZER must be"),
        ({"SESSION_KEY_PREFIX": None}, "SESSION_KEY_PREFIX must be str"),
        ({"SESSION_FILE_DIR": 5}, "SESSION_FILE_DIR must be a path"),
        ({"SESSION_COOKIE_SAMESITE": "sometimes"}, "SESSION_COOKIE_SAMESITE must be"),
        ({"PERMANENT_SESSION_LIFETIME": timedelta(0)}, "PERMANENT_SESSION_LIFETIME"),
        # Past what a cookie date (year 9999) holds: every write answered 500.
        (
            {"PERMANENT_SESSION_LIFETIME": timedelta(days=365 * 9000)},
            "the latest expiry the filesystem store and session cookies can hold",
        ),
        # memcached keeps 32-bit unix times: every session was lost after 2038.
        (
            {"SESSION_TYPE": "memcached", "PERMANENT_SESSION_LIFETIME": timedelta(days=365 * 20)},
            "ends past 2038-01-19",
        ),
        ({"SESSION_MAX_SIZE": 100}, "SESSION_MAX_SIZE must be between 1024 and"),
        ({"SESSION_MAX_SIZE": "1MB"}, "SESSION_MAX_SIZE must be int"),
        (
            {"SESSION_TYPE": "dynamodb", "SESSION_MAX_SIZE": 512 * 1024},
            "for the dynamodb store",
        ),
        ({"SESSION_HIJACK_TRUSTED_PROXIES": 0}, "SESSION_HIJACK_TRUSTED_PROXIES must be at least"),
        ({"SESSION_HIJACK_TRUSTED_PROXIES": "1"}, "SESSION_HIJACK_TRUSTED_PROXIES must be int"),
        # Browsers drop such cookies: every request would start a new session.
        ({"SESSION_COOKIE_NAME": "__Host-session"}, "needs SESSION_COOKIE_SECURE = True"),
        (
            {
                "SESSION_COOKIE_NAME": "__Host-session",
                "SESSION_COOKIE_SECURE": True,
                "SESSION_COOKIE_DOMAIN": "example.test",
            },
            "needs no SESSION_COOKIE_DOMAIN",
        ),
        (
            {
                "SESSION_COOKIE_NAME": "__Host-session",
                "SESSION_COOKIE_SECURE": True,
                "APPLICATION_ROOT": "/app",
            },
            'SESSION_COOKIE_PATH = "/"',
        ),
        ({"SESSION_COOKIE_NAME": "__Secure-session"}, "browsers drop __Secure- cookies"),
        ({"SESSION_REFRESH_AFTER": "60"}, "SESSION_REFRESH_AFTER must be seconds"),
        ({"SESSION_REFRESH_AFTER": True}, "SESSION_REFRESH_AFTER must be seconds"),
        ({"SESSION_REFRESH_AFTER": -1}, "SESSION_REFRESH_AFTER must be at least 0"),
        # A record that expires before it may be refreshed logs active users out.
        (
            {"SESSION_REFRESH_AFTER": timedelta(hours=1), "PERMANENT_SESSION_LIFETIME": 3600},
            r"less than PERMANENT_SESSION_LIFETIME \(3600 s\), not 3600 s",
        ),
    ],
)
def test_bad_configuration_fails_at_init_with_a_clear_message(
    tmp_path: Path, config: dict[str, Any], message: str
) -> None:
    with pytest.raises(SessionConfigError, match=message):
        Session(make_app(tmp_path, **config))


def test_signing_without_a_secret_key_fails_at_init(tmp_path: Path) -> None:
    app = make_app(tmp_path, SESSION_USE_SIGNER=True)
    app.config["SECRET_KEY"] = None
    with pytest.raises(SessionConfigError, match="SESSION_USE_SIGNER needs SECRET_KEY"):
        Session(app)


def test_init_app_registers_the_extension_and_interface(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    extension = Session()
    extension.init_app(app)
    assert app.extensions["session"] is extension
    assert isinstance(app.session_interface, ServerSideSessionInterface)


def test_defaults_and_old_aliases(tmp_path: Path) -> None:
    app = make_app(tmp_path, SESSION_PROTECTION=True, SESSION_REVERSE_PROXY=True)
    Session(app)
    settings = app.session_interface.settings  # type: ignore[attr-defined]
    assert settings.store_type == "filesystem"
    assert settings.key_prefix == "session:"
    assert settings.id_length == 32
    assert settings.hijack_protection and settings.hijack_reverse_proxy
    assert settings.file_dir == str(tmp_path / "instance" / "sessions")
    trio_alias = make_app(tmp_path, SESSION_TYPE="redis+trio")
    Session(trio_alias)
    assert trio_alias.session_interface.settings.store_type == "redis"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("config", "seconds"),
    [
        ({}, 60),  # Quart's 31-day lifetime
        ({"PERMANENT_SESSION_LIFETIME": 300}, 30),  # a tenth of a shorter lifetime
        ({"PERMANENT_SESSION_LIFETIME": 5}, 0),
        ({"SESSION_REFRESH_AFTER": 0}, 0),
        ({"SESSION_REFRESH_AFTER": 90.5}, 90),
        ({"SESSION_REFRESH_AFTER": timedelta(minutes=5)}, 300),
    ],
)
def test_refresh_after_defaults_and_forms(
    tmp_path: Path, config: dict[str, Any], seconds: int
) -> None:
    app = make_app(tmp_path, **config)
    Session(app)
    assert app.session_interface.settings.refresh_after == seconds  # type: ignore[attr-defined]


@pytest.mark.anyio
async def test_store_settings_from_a_before_serving_hook_are_honoured(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    Session(app)
    late_dir = tmp_path / "set-at-startup"

    @app.before_serving
    async def configure() -> None:
        app.config["SESSION_FILE_DIR"] = str(late_dir)

    @app.get("/")
    async def index() -> str:
        session["user"] = "alice"
        return "ok"

    async with app.test_app() as test_app:
        response = await test_app.test_client().get("/")
        assert response.status_code == 200
    assert len([p for p in late_dir.iterdir() if p.is_file()]) == 1
    assert not (tmp_path / "instance" / "sessions").exists()


def test_a_long_lifetime_within_every_limit_is_accepted(tmp_path: Path) -> None:
    app = make_app(tmp_path, PERMANENT_SESSION_LIFETIME=timedelta(days=365 * 100))
    Session(app)
    memcached = make_app(
        tmp_path, SESSION_TYPE="memcached", PERMANENT_SESSION_LIFETIME=timedelta(days=365)
    )
    Session(memcached)


class LeakyClient:
    """A client whose repr shows its password, as some database clients' do."""

    def __repr__(self) -> str:
        return "LeakyClient(url='redis://:client-pw@db.internal:6379')"


SECRETS = (
    "current-key",
    "old-key",
    "uri-pw",
    "sa-pw",
    "mongo-pw",
    "query-pw",
    "query-token",
    "endpoint-pw",
    "client-pw",
    "redis-pw",
)


def settings_with_every_secret(tmp_path: Path) -> Any:
    import redis.asyncio as redis  # a real client, built without connecting

    app = make_app(
        tmp_path,
        SESSION_USE_SIGNER=True,
        SESSION_URI="redis://:uri-pw@cache.internal:6379/0?password=query-pw",
        SESSION_SQLALCHEMY_URI="postgresql+asyncpg://app:sa-pw@db.internal/app?token=query-token",
        SESSION_MONGODB_URI="mongodb://app:mongo-pw@m1,m2:27017/?authSource=admin",
        SESSION_DYNAMODB_ENDPOINT_URL="https://admin:endpoint-pw@dynamo.internal",
        SESSION_REDIS=redis.Redis.from_url("redis://app:redis-pw@cache.internal:6379"),
        SESSION_MEMCACHED=LeakyClient(),
    )
    app.config["SECRET_KEY"] = "current-key"
    if "SECRET_KEY_FALLBACKS" in app.default_config:  # Quart 0.21 and newer
        app.config["SECRET_KEY_FALLBACKS"] = ["old-key"]
    Session(app)
    return app.session_interface.settings  # type: ignore[attr-defined]


def test_settings_never_show_a_secret(tmp_path: Path) -> None:
    settings = settings_with_every_secret(tmp_path)
    for shown in (repr(settings), str(settings), f"{settings}", pprint.pformat(settings)):
        leaked = [secret for secret in SECRETS if secret in shown]
        assert not leaked, f"{leaked} in {shown}"
    # What is not secret still helps whoever reads it.
    shown = repr(settings)
    assert "redis://:***@cache.internal:6379/0?password=***" in shown
    assert "postgresql+asyncpg://app:***@db.internal/app?token=***" in shown
    assert "mongodb://app:***@m1,m2:27017/?authSource=admin" in shown
    assert "store_type='filesystem'" in shown


def test_a_log_line_with_the_settings_holds_no_secret(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_with_every_secret(tmp_path)
    with caplog.at_level(logging.INFO):
        logging.getLogger("quart_session.test").info("settings: %s / %r", settings, settings)
    assert "settings: Settings(" in caplog.text
    assert not [secret for secret in SECRETS if secret in caplog.text]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:pw@host:6379/0", "redis://:***@host:6379/0"),
        ("redis://user:pw@host", "redis://user:***@host"),
        # A user name alone may be the credential (a token).
        ("redis://tok@host", "redis://***@host"),
        ("postgresql+asyncpg://u:p%40ss@h/db", "postgresql+asyncpg://u:***@h/db"),
        ("mongodb://u:p@h1,h2/?authSource=x", "mongodb://u:***@h1,h2/?authSource=x"),
        # A password that is not escaped as it should be is still hidden whole.
        ("redis://:pa/ss@host", "redis://:***@host"),
        (
            "rediss://h/?ssl_keyfile=k&Password=p&api_token=t&sslPassword=s",
            "rediss://h/?ssl_keyfile=k&Password=***&api_token=***&sslPassword=***",
        ),
        ("unix:///tmp/redis.sock?password=pw&db=1", "unix:///tmp/redis.sock?password=***&db=1"),
        ("127.0.0.1:11211", "127.0.0.1:11211"),
        ("sessions", "sessions"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown
