"""All settings in one place: defaults, old-key aliases and validation.

``Settings.from_app`` reads ``app.config`` once and fails with a clear
:class:`~quart_session.errors.SessionConfigError` on anything wrong, so a typo
shows up at start-up rather than on the first request.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

from quart import Quart

from .compat import CONFIG_KEY_ALIASES
from .crypto import parse_keys, require_cryptography
from .errors import SessionConfigError
from .lifetimes import duration
from .serializers import Serializer, resolve_serializer
from .stores import resolve_store_type

DEFAULTS: dict[str, Any] = {
    "SESSION_TYPE": "filesystem",
    "SESSION_KEY_PREFIX": "session:",
    "SESSION_PERMANENT": True,
    "SESSION_USE_SIGNER": False,
    "SESSION_ID_LENGTH": 32,
    "SESSION_HASH_IDS": True,
    "SESSION_EXPLICIT": False,
    "SESSION_STATIC_FILE": False,
    "SESSION_HIJACK_PROTECTION": False,
    "SESSION_HIJACK_REVERSE_PROXY": False,
    "SESSION_HIJACK_TRUSTED_PROXIES": 1,
    "SESSION_MAX_SIZE": 256 * 1024,
    # None: DEFAULT_REFRESH_AFTER, or a tenth of a shorter lifetime.
    "SESSION_REFRESH_AFTER": None,
    # None: a session lives as long as it is used (the idle timeout only).
    "SESSION_ABSOLUTE_LIFETIME": None,
    # None: sessions are not indexed by user.
    "SESSION_USER_KEY": None,
    # None: no cap on a user's sessions.
    "SESSION_MAX_PER_USER": None,
    "SESSION_SERIALIZER": "json",
    "SESSION_BACKEND_TIMEOUT": 2.0,
    "SESSION_LEGACY_IDS": False,
    # None: records are stored unencrypted.
    "SESSION_ENCRYPTION_KEYS": None,
    # None: ids travel in the session cookie only.
    "SESSION_ID_HEADER": None,
    "SESSION_URI": None,
    "SESSION_REDIS": None,
    "SESSION_MEMCACHED": None,
    "SESSION_MEMCACHED_HOST": "127.0.0.1",
    "SESSION_MEMCACHED_PORT": 11211,
    "SESSION_SQLALCHEMY": None,
    "SESSION_SQLALCHEMY_URI": None,
    "SESSION_SQLALCHEMY_TABLE": "sessions",
    "SESSION_MONGODB": None,
    "SESSION_MONGODB_URI": None,
    "SESSION_MONGODB_DB": "quart_session",
    "SESSION_MONGODB_COLLECTION": "sessions",
    "SESSION_DYNAMODB": None,
    "SESSION_DYNAMODB_TABLE": "sessions",
    "SESSION_DYNAMODB_ENDPOINT_URL": None,
    "SESSION_DYNAMODB_REGION": None,
    "SESSION_FILE_DIR": None,
}

#: The latest deadline a cookie's Expires can hold (9999-12-31 23:59:59 UTC);
#: every store but memcached holds as much.
LATEST_COOKIE_DEADLINE = 253_402_300_799
#: memcached keeps expiry times as 32-bit unix times (2038-01-19).
LATEST_DEADLINE = {"memcached": 2**31 - 1}
#: The largest SESSION_MAX_SIZE accepted at all, and per store where the store
#: has a fixed item limit (DynamoDB: 400 KiB per item, names and key included).
#: memcached's limit is a server setting: its store reports it.
MAX_SIZE_LIMIT = 64 * 1024 * 1024
STORE_MAX_SIZE = {"dynamodb": 400 * 1024 - 4096}
#: Seconds after its last refresh before a read refreshes a session's expiry
#: again, where a refresh is a write (SQL, MongoDB, DynamoDB, files): an idle
#: session then ends between lifetime - 60 s and lifetime after its last request.
DEFAULT_REFRESH_AFTER = 60


def _refresh_after(value: Any, lifetime: int) -> int:
    """SESSION_REFRESH_AFTER in whole seconds: unset, a tenth of the lifetime
    up to DEFAULT_REFRESH_AFTER; set, at least 0 and below the lifetime (a
    record that expires before it may be refreshed would log active users out)."""
    if value is None:
        return min(DEFAULT_REFRESH_AFTER, lifetime // 10)
    seconds = duration(value)
    if seconds is None:
        raise SessionConfigError(
            f"SESSION_REFRESH_AFTER must be seconds (int or float) or a timedelta, not {value!r}"
        )
    if not 0 <= seconds < lifetime:
        raise SessionConfigError(
            f"SESSION_REFRESH_AFTER must be at least 0 and less than "
            f"PERMANENT_SESSION_LIFETIME ({lifetime} s), not {seconds:g} s"
        )
    return int(seconds)


def _absolute_lifetime(value: Any, store_type: str) -> int | None:
    """SESSION_ABSOLUTE_LIFETIME in whole seconds (None: off); at least one second."""
    if value is None:
        return None
    seconds = duration(value)
    if seconds is None:
        raise SessionConfigError(
            f"SESSION_ABSOLUTE_LIFETIME must be None, seconds (int or float) or a timedelta, "
            f"not {value!r}"
        )
    if not seconds >= 1:  # also refuses NaN
        raise SessionConfigError(
            f"SESSION_ABSOLUTE_LIFETIME must be at least one second, not {value!r}"
        )
    _check_lifetime("SESSION_ABSOLUTE_LIFETIME", seconds, store_type)
    return int(seconds)


#: Stores that cannot keep a user's index: memcached may evict any item, the
#: index included, and "log out everywhere" would then miss sessions.
STORES_WITHOUT_USER_INDEX = ("memcached",)


def _user_settings(values: Mapping[str, Any], store_type: str) -> tuple[str | None, int | None]:
    """SESSION_USER_KEY and SESSION_MAX_PER_USER, checked together."""
    user_key = values["SESSION_USER_KEY"]
    cap = values["SESSION_MAX_PER_USER"]
    if user_key is not None and (not isinstance(user_key, str) or not user_key):
        raise SessionConfigError(
            f"SESSION_USER_KEY must be the session key holding the user (text), not {user_key!r}"
        )
    if cap is not None:
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
            raise SessionConfigError(
                f"SESSION_MAX_PER_USER must be a whole number of at least 1, not {cap!r}"
            )
        if user_key is None:
            raise SessionConfigError("SESSION_MAX_PER_USER needs SESSION_USER_KEY")
    if user_key is not None and store_type in STORES_WITHOUT_USER_INDEX:
        raise SessionConfigError(
            f"SESSION_USER_KEY is not available with the {store_type} store: it may evict a "
            "user's index like any item, and revoking a user's sessions would then miss some"
        )
    return user_key, cap


def latest_deadline(store_type: str) -> int:
    """The latest expiry (seconds since the epoch) both the store and a cookie
    date can hold."""
    return min(LATEST_COOKIE_DEADLINE, LATEST_DEADLINE.get(store_type, LATEST_COOKIE_DEADLINE))


def _check_lifetime(key: str, seconds: float, store_type: str) -> None:
    """Refuse a lifetime whose deadline, counted from now, a cookie date or the
    store's expiry field cannot hold: the session would be lost, or every save fail."""
    latest = latest_deadline(store_type)
    if time.time() + seconds > latest:
        until = datetime.fromtimestamp(latest, UTC).date().isoformat()
        raise SessionConfigError(
            f"{key} of {timedelta(seconds=seconds)} ends past {until}, the latest expiry "
            f"the {store_type} store and session cookies can hold; choose a shorter lifetime"
        )


def effective_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """``app.config``'s SESSION_* keys over the defaults, aliases resolved."""
    values = dict(DEFAULTS)
    for old, new in CONFIG_KEY_ALIASES.items():
        if old in config and new not in config:
            values[new] = config[old]
    values.update((key, config[key]) for key in DEFAULTS if key in config)
    return values


# Quart 0.21 added SESSION_COOKIE_PARTITIONED and SECRET_KEY_FALLBACKS; on older
# Quart (0.20 is what Debian ships) they are unavailable, and asking for them must
# fail loudly rather than be ignored. Detected by what this Quart has, not its version.
def _cookie_partitioned(app: Quart) -> bool:
    getter = getattr(app.session_interface, "get_cookie_partitioned", None)
    if getter is not None:
        return bool(getter(app))
    if app.config.get("SESSION_COOKIE_PARTITIONED"):
        raise SessionConfigError(
            "SESSION_COOKIE_PARTITIONED needs Quart 0.21 or newer; this Quart has no "
            "partitioned session cookies"
        )
    return False


def _secret_key_fallbacks(app: Quart) -> tuple[str | bytes, ...]:
    fallbacks = app.config.get("SECRET_KEY_FALLBACKS") or ()
    if fallbacks and "SECRET_KEY_FALLBACKS" not in app.default_config:
        raise SessionConfigError(
            "SECRET_KEY_FALLBACKS needs Quart 0.21 or newer; this Quart has no key fallbacks"
        )
    return tuple(fallbacks)


def _check_cookie_prefix(name: str, secure: bool, domain: str | None, path: str) -> None:
    """Browsers silently drop a ``__Host-``/``__Secure-`` cookie whose attributes
    break the prefix's rules: every request would start a new session."""
    problems = []
    if name.startswith(("__Host-", "__Secure-")) and not secure:
        problems.append("SESSION_COOKIE_SECURE = True")
    if name.startswith("__Host-"):
        if domain:
            problems.append("no SESSION_COOKIE_DOMAIN")
        if path != "/":
            problems.append('SESSION_COOKIE_PATH = "/" (it falls back to APPLICATION_ROOT)')
    if problems:
        prefix = name.split("-", 1)[0] + "-"
        raise SessionConfigError(
            f"a cookie named {name!r} needs "
            + " and ".join(problems)
            + f": browsers drop {prefix} cookies without it"
        )


#: An HTTP field name (RFC 9110 token).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: Names the cookie machinery (or our Vary) writes: an id header there would clash.
_RESERVED_HEADERS = frozenset({"cookie", "set-cookie", "cookie2", "set-cookie2", "vary"})


def _id_header(value: Any) -> str | None:
    """SESSION_ID_HEADER: None, or a header name the id can travel in."""
    if value is None:
        return None
    if not isinstance(value, str) or not _TOKEN.fullmatch(value):
        raise SessionConfigError(
            f"SESSION_ID_HEADER must be None or an HTTP header name "
            f"(letters, digits and !#$%&'*+-.^_`|~), not {value!r}"
        )
    if value.lower() in _RESERVED_HEADERS:
        raise SessionConfigError(
            f"SESSION_ID_HEADER cannot be {value!r}: cookies and Vary use that header; "
            "choose a name of your own, such as 'X-Session-Id'"
        )
    return value


def _check(values: Mapping[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = values[key]
    # bool is an int subclass: True is never a valid length or timeout.
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise SessionConfigError(f"{key} must be {names}, not {value!r}")
    return value


#: Words that make a query parameter's value, or a SESSION_* key's text, a credential.
SECRET_PARAMETER_WORDS = ("pass", "secret", "token", "credential")
SECRET_CONFIG_WORDS = ("SECRET", "PASSWORD", "TOKEN", "CREDENTIAL", "ENCRYPTION")
HIDDEN = "***"


def redact_url(text: str) -> str:
    """*text* with a URL's password (or a lone user name, which may be a token) and
    the values of query parameters named like credentials replaced by ``***``.

    Text without ``scheme://`` is returned unchanged. Everything up to the last
    ``@`` is taken as user info, so a password that holds an unescaped ``/``,
    ``?`` or ``@`` is hidden whole rather than cut and half shown.
    """
    scheme, separator, rest = text.partition("://")
    if not separator:
        return text
    userinfo, at, rest = rest.rpartition("@")
    if at:
        user, colon, _ = userinfo.partition(":")
        userinfo = f"{user}:{HIDDEN}@" if colon else f"{HIDDEN}@"
    location, question, query = rest.partition("?")
    if question:
        query = "&".join(_redact_parameter(parameter) for parameter in query.split("&"))
    return f"{scheme}://{userinfo}{location}{question}{query}"


def _redact_parameter(parameter: str) -> str:
    name, equals, _ = parameter.partition("=")
    if equals and any(word in unquote(name).lower() for word in SECRET_PARAMETER_WORDS):
        return f"{name}={HIDDEN}"
    return parameter


def _safe_repr(value: Any, name: str = "") -> str:
    """A repr that cannot show a secret: plain values as they are, text with URL
    credentials hidden, anything else (clients, keys as bytes) by its type only,
    since a client's own repr may hold its password."""
    if isinstance(value, str):
        if any(word in name for word in SECRET_CONFIG_WORDS):
            return repr(HIDDEN)
        return repr(redact_url(value))
    if value is None or isinstance(value, bool | int | float | timedelta):
        return repr(value)
    if isinstance(value, Mapping):
        items = (f"{key!r}: {_safe_repr(item, str(key))}" for key, item in value.items())
        return "{" + ", ".join(items) + "}"
    if isinstance(value, tuple | list):
        opening, closing = "()" if isinstance(value, tuple) else "[]"
        return opening + ", ".join(_safe_repr(item, name) for item in value) + closing
    kind = type(value)
    return f"<{kind.__module__}.{kind.__qualname__}>"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the library reads from ``app.config``, validated once.

    Its repr (also what ``str``, f-strings and logs show) hides SECRET_KEY and its
    fallbacks, passwords inside URLs and clients' own reprs: settings get printed
    while debugging and logged, and must not take credentials with them.
    """

    store_type: str
    key_prefix: str
    permanent: bool
    id_length: int
    #: Records are stored under a hash of the id (SESSION_HASH_IDS).
    hash_ids: bool
    explicit: bool
    static_file: bool
    hijack_protection: bool
    hijack_reverse_proxy: bool
    trusted_proxies: int
    max_size: int
    serializer: Serializer
    backend_timeout: float
    legacy_ids: bool
    #: The request/response header ids may travel in (SESSION_ID_HEADER), or None.
    id_header: str | None
    file_dir: str
    # Quart's own keys, read once.
    secret_keys: tuple[str | bytes, ...] = field(repr=False)
    #: SESSION_ENCRYPTION_KEYS as 32-byte keys (the first seals); () when off.
    encryption_keys: tuple[bytes, ...] = field(repr=False)
    lifetime: int
    refresh_each_request: bool
    #: Seconds before a read refreshes the expiry again (SESSION_REFRESH_AFTER).
    refresh_after: int
    #: Seconds a session lives after its creation or last regenerate(),
    #: however active (SESSION_ABSOLUTE_LIFETIME), or None.
    absolute_lifetime: int | None
    #: The session key naming its user (SESSION_USER_KEY), or None.
    user_key: str | None
    #: The most live sessions a user keeps (SESSION_MAX_PER_USER), or None.
    max_per_user: int | None
    cookie_name: str
    cookie_domain: str | None
    cookie_path: str
    cookie_httponly: bool
    cookie_secure: bool
    cookie_samesite: str | None
    cookie_partitioned: bool
    static_url_path: str | None
    #: Every SESSION_* value (aliases resolved) for the store builders.
    raw: Mapping[str, Any]

    def __repr__(self) -> str:
        shown = (
            f"{item.name}={_safe_repr(getattr(self, item.name), item.name.upper())}"
            if item.repr
            else f"{item.name}=<hidden>"
            for item in fields(self)
        )
        return f"{type(self).__name__}({', '.join(shown)})"

    @classmethod
    def from_app(cls, app: Quart) -> Settings:
        values = effective_config(app.config)
        store_type = resolve_store_type(values["SESSION_TYPE"])
        use_signer = _check(values, "SESSION_USE_SIGNER", bool)
        secret_keys: tuple[str | bytes, ...] = ()
        if use_signer:
            if not app.secret_key:
                raise SessionConfigError("SESSION_USE_SIGNER needs SECRET_KEY to be set")
            secret_keys = (app.secret_key, *_secret_key_fallbacks(app))
        id_length = _check(values, "SESSION_ID_LENGTH", int)
        if not 16 <= id_length <= 128:
            raise SessionConfigError(
                f"SESSION_ID_LENGTH must be between 16 and 128 bytes, not {id_length}"
            )
        timeout = float(_check(values, "SESSION_BACKEND_TIMEOUT", (int, float)))
        if timeout <= 0:
            raise SessionConfigError(f"SESSION_BACKEND_TIMEOUT must be > 0, not {timeout}")
        lifetime = app.permanent_session_lifetime
        if not isinstance(lifetime, timedelta) or lifetime.total_seconds() < 1:
            raise SessionConfigError(
                f"PERMANENT_SESSION_LIFETIME must be at least one second, not {lifetime!r}"
            )
        _check_lifetime("PERMANENT_SESSION_LIFETIME", lifetime.total_seconds(), store_type)
        trusted_proxies = _check(values, "SESSION_HIJACK_TRUSTED_PROXIES", int)
        if trusted_proxies < 1:
            raise SessionConfigError(
                f"SESSION_HIJACK_TRUSTED_PROXIES must be at least 1, not {trusted_proxies}"
            )
        max_size = _check(values, "SESSION_MAX_SIZE", int)
        size_limit = STORE_MAX_SIZE.get(store_type, MAX_SIZE_LIMIT)
        if not 1024 <= max_size <= size_limit:
            raise SessionConfigError(
                f"SESSION_MAX_SIZE must be between 1024 and {size_limit} bytes for the "
                f"{store_type} store, not {max_size}"
            )
        try:
            serializer = resolve_serializer(values["SESSION_SERIALIZER"])
        except TypeError as error:
            raise SessionConfigError(str(error)) from None
        file_dir = values["SESSION_FILE_DIR"]
        if file_dir is None:
            file_dir = os.path.join(app.instance_path, "sessions")
        elif not isinstance(file_dir, str | os.PathLike):
            raise SessionConfigError(f"SESSION_FILE_DIR must be a path, not {file_dir!r}")
        interface = app.session_interface
        _check_cookie_prefix(
            interface.get_cookie_name(app),
            interface.get_cookie_secure(app),
            interface.get_cookie_domain(app),
            interface.get_cookie_path(app),
        )
        user_key, max_per_user = _user_settings(values, store_type)
        encryption_keys = parse_keys(values["SESSION_ENCRYPTION_KEYS"])
        if encryption_keys:
            require_cryptography()
        samesite = app.config["SESSION_COOKIE_SAMESITE"]
        if samesite is not None and str(samesite).lower() not in ("lax", "strict", "none"):
            raise SessionConfigError(
                f"SESSION_COOKIE_SAMESITE must be 'Lax', 'Strict', 'None' or None, not {samesite!r}"
            )
        return cls(
            store_type=store_type,
            key_prefix=_check(values, "SESSION_KEY_PREFIX", str),
            permanent=_check(values, "SESSION_PERMANENT", bool),
            id_length=id_length,
            hash_ids=_check(values, "SESSION_HASH_IDS", bool),
            explicit=_check(values, "SESSION_EXPLICIT", bool),
            static_file=_check(values, "SESSION_STATIC_FILE", bool),
            hijack_protection=_check(values, "SESSION_HIJACK_PROTECTION", bool),
            hijack_reverse_proxy=_check(values, "SESSION_HIJACK_REVERSE_PROXY", bool),
            trusted_proxies=trusted_proxies,
            max_size=max_size,
            serializer=serializer,
            backend_timeout=timeout,
            legacy_ids=_check(values, "SESSION_LEGACY_IDS", bool),
            id_header=_id_header(values["SESSION_ID_HEADER"]),
            file_dir=os.fspath(file_dir),
            secret_keys=secret_keys,
            encryption_keys=encryption_keys,
            lifetime=int(lifetime.total_seconds()),
            refresh_each_request=bool(app.config["SESSION_REFRESH_EACH_REQUEST"]),
            refresh_after=_refresh_after(
                values["SESSION_REFRESH_AFTER"], int(lifetime.total_seconds())
            ),
            absolute_lifetime=_absolute_lifetime(values["SESSION_ABSOLUTE_LIFETIME"], store_type),
            user_key=user_key,
            max_per_user=max_per_user,
            cookie_name=interface.get_cookie_name(app),
            cookie_domain=interface.get_cookie_domain(app),
            cookie_path=interface.get_cookie_path(app),
            cookie_httponly=interface.get_cookie_httponly(app),
            cookie_secure=interface.get_cookie_secure(app),
            cookie_samesite=samesite,
            cookie_partitioned=_cookie_partitioned(app),
            static_url_path=app.static_url_path if app.has_static_folder else None,
            raw=values,
        )
