"""SESSION_ABSOLUTE_LIFETIME is checked at init_app, and ``session.lifetime``
at assignment: what each accepts and refuses (no server needed)."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from quart import Quart, session

from quart_session import Session, SessionConfigError

pytestmark = pytest.mark.anyio


def make_app(tmp_path: Path, **config: Any) -> Quart:
    app = Quart(__name__, instance_path=str(tmp_path / "instance"))
    app.config.update(SECRET_KEY="s", SESSION_TYPE="memory", **config)
    return app


# -- SESSION_ABSOLUTE_LIFETIME ------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [0, 0.5, -1, -3600, timedelta(0), timedelta(seconds=0.5), timedelta(seconds=-60), math.nan],
)
def test_an_absolute_lifetime_under_a_second_fails_at_init(tmp_path: Path, value: Any) -> None:
    """Proves: 0, fractions of a second, negative values and NaN are refused at
    init_app (a session that ends before it can be used)."""
    with pytest.raises(SessionConfigError, match="SESSION_ABSOLUTE_LIFETIME"):
        Session(make_app(tmp_path, SESSION_ABSOLUTE_LIFETIME=value))


@pytest.mark.parametrize("value", [True, False, "3600", "8h", b"60", [3600], {"hours": 8}])
def test_an_absolute_lifetime_of_the_wrong_type_fails_at_init(tmp_path: Path, value: Any) -> None:
    """Proves: bools (an int subclass), strings and other types are refused,
    not read as seconds."""
    with pytest.raises(SessionConfigError, match="SESSION_ABSOLUTE_LIFETIME"):
        Session(make_app(tmp_path, SESSION_ABSOLUTE_LIFETIME=value))


def test_an_absolute_lifetime_past_what_a_cookie_date_holds_fails_at_init(
    tmp_path: Path,
) -> None:
    """Proves: the same ceiling as PERMANENT_SESSION_LIFETIME (year 9999)."""
    with pytest.raises(SessionConfigError, match="SESSION_ABSOLUTE_LIFETIME"):
        Session(make_app(tmp_path, SESSION_ABSOLUTE_LIFETIME=timedelta(days=365 * 9000)))


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, None),
        (1, 1),
        (3600, 3600),
        (7200.0, 7200),
        (timedelta(hours=8), 8 * 3600),
        (timedelta(days=1), 86400),
    ],
)
def test_absolute_lifetime_forms(tmp_path: Path, value: Any, seconds: int | None) -> None:
    """Proves: None (off), whole or fractional seconds and a timedelta are accepted."""
    app = make_app(tmp_path, SESSION_ABSOLUTE_LIFETIME=value)
    Session(app)
    assert app.session_interface.settings.absolute_lifetime == seconds  # type: ignore[attr-defined]


def test_the_absolute_lifetime_is_off_by_default(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    Session(app)
    assert app.session_interface.settings.absolute_lifetime is None  # type: ignore[attr-defined]


# -- session.lifetime ---------------------------------------------------------------------

#: What a view assigns to ``session.lifetime``, by name (a URL part).
VALUES: dict[str, Any] = {
    "thirty-days": timedelta(days=30),
    "ninety": 90,
    "two-and-a-half": 2.5,
    "a-tenth": 0.1,
    "fraction-timedelta": timedelta(seconds=1.2),
    "none": None,
    "zero": 0,
    "zero-float": 0.0,
    "zero-timedelta": timedelta(0),
    "negative": -5,
    "negative-timedelta": timedelta(seconds=-5),
    "true": True,
    "false": False,
    "text": "60",
    "bytes": b"60",
    "list": [60],
    "nan": math.nan,
}


@pytest.fixture
def app(tmp_path: Path) -> Quart:
    app = make_app(tmp_path)

    @app.get("/assign/<name>")
    async def assign(name: str) -> dict[str, Any]:
        session["user"] = "alice"
        session.lifetime = timedelta(hours=1)  # type: ignore[attr-defined]
        session.modified = False
        refused: str | None = None
        try:
            session.lifetime = VALUES[name]  # type: ignore[attr-defined]
        except ValueError as error:
            refused = str(error)
        lifetime = session.lifetime  # type: ignore[attr-defined]
        return {
            "refused": refused,
            "lifetime": None if lifetime is None else lifetime.total_seconds(),
            "is_timedelta": isinstance(lifetime, timedelta),
            "modified": session.modified,
        }

    @app.get("/fresh")
    async def fresh() -> dict[str, Any]:
        return {"lifetime": session.lifetime}  # type: ignore[attr-defined]

    Session(app)
    return app


async def assign(app: Quart, name: str) -> dict[str, Any]:
    response = await app.test_client().get(f"/assign/{name}")
    assert response.status_code == 200
    answer: dict[str, Any] = await response.get_json()
    return answer


async def test_a_session_lifetime_is_none_until_set(app: Quart) -> None:
    """Proves: None stands for the configured PERMANENT_SESSION_LIFETIME."""
    response = await app.test_client().get("/fresh")
    assert await response.get_json() == {"lifetime": None}


@pytest.mark.parametrize(
    ("name", "seconds"),
    [
        ("thirty-days", 30 * 86400),
        ("ninety", 90),
        ("two-and-a-half", 3),
        ("a-tenth", 1),
        ("fraction-timedelta", 2),
    ],
)
async def test_a_positive_lifetime_is_kept_as_a_timedelta_of_whole_seconds(
    app: Quart, name: str, seconds: int
) -> None:
    """Proves: a positive timedelta or number of seconds is accepted, read back
    as a timedelta, fractions rounded up to a whole second, and the assignment
    marks the session modified (so it is saved with its new lifetime)."""
    answer = await assign(app, name)
    assert answer == {"refused": None, "lifetime": seconds, "is_timedelta": True, "modified": True}


async def test_none_returns_to_the_configured_lifetime(app: Quart) -> None:
    """Proves: assigning None after a lifetime is accepted and marks the session modified."""
    answer = await assign(app, "none")
    assert answer == {"refused": None, "lifetime": None, "is_timedelta": False, "modified": True}


@pytest.mark.parametrize(
    "name",
    [
        "zero",
        "zero-float",
        "zero-timedelta",
        "negative",
        "negative-timedelta",
        "true",
        "false",
        "text",
        "bytes",
        "list",
        "nan",
    ],
)
async def test_a_lifetime_that_is_not_positive_seconds_raises_value_error(
    app: Quart, name: str
) -> None:
    """Proves: 0, negative values, bools, strings and other types raise
    ValueError at assignment, and leave the lifetime (one hour) as it was."""
    answer = await assign(app, name)
    assert answer["refused"] is not None and "lifetime" in answer["refused"]
    assert answer["lifetime"] == 3600
    assert answer["modified"] is False
