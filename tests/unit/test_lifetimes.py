"""The lifetime arithmetic: session.lifetime values, a session's time to live
under idle, own and absolute lifetimes, and when a paid refresh is due."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quart_session.lifetimes import (
    CREATED,
    LIFETIME,
    Lifetimes,
    lifetime_seconds,
    refresh_due,
)

NOW = 1_800_000_000.0
LATEST = 253_402_300_799


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, None),
        (timedelta(days=30), 30 * 86400),
        (60, 60),
        (1.2, 2),  # fractions round up: a lifetime is never shorter than asked
        (0.001, 1),
        (timedelta(milliseconds=1500), 2),
    ],
)
def test_lifetime_values_in_whole_seconds(value: Any, seconds: int | None) -> None:
    assert lifetime_seconds(value) == seconds


@pytest.mark.parametrize(
    "value",
    [
        0,
        -1,
        -0.5,
        timedelta(0),
        timedelta(seconds=-5),
        True,
        False,
        "60",
        b"60",
        [60],
        math.nan,
        math.inf,
    ],
)
def test_a_lifetime_that_is_not_positive_or_not_a_number_is_refused(value: Any) -> None:
    with pytest.raises(ValueError, match=r"session\.lifetime"):
        lifetime_seconds(value)


def test_the_configured_lifetime_without_own_or_absolute() -> None:
    assert Lifetimes(3600, None, LATEST).ttl({}, NOW) == 3600


def test_a_session_s_own_lifetime_wins_over_the_configured_one() -> None:
    lifetimes = Lifetimes(3600, None, LATEST)
    assert lifetimes.ttl({LIFETIME: 30 * 86400}, NOW) == 30 * 86400
    assert lifetimes.ttl({LIFETIME: 5}, NOW) == 5


def test_an_absolute_lifetime_cuts_the_ttl_short_and_then_ends_the_session() -> None:
    lifetimes = Lifetimes(3600, 100, LATEST)
    created = int(NOW)
    assert lifetimes.ttl({CREATED: created}, NOW) == 100
    assert lifetimes.ttl({CREATED: created}, NOW + 30.5) == 69  # whole seconds, rounded down
    assert lifetimes.ttl({CREATED: created, LIFETIME: 30 * 86400}, NOW + 98.2) == 1
    assert lifetimes.ttl({CREATED: created}, NOW + 99.2) is None  # under a second left
    assert lifetimes.ttl({CREATED: created}, NOW + 500) is None


def test_without_a_creation_stamp_the_absolute_lifetime_cannot_apply() -> None:
    # The engine stamps such a session when it loads it.
    assert Lifetimes(3600, 100, LATEST).ttl({}, NOW) == 3600


def test_a_ttl_never_reaches_past_what_the_store_can_hold() -> None:
    latest = int(NOW) + 1000
    assert Lifetimes(60, None, latest).ttl({LIFETIME: 10**9}, NOW) == 1000


def test_metadata_not_written_by_us_falls_back_to_the_configured_lifetime() -> None:
    lifetimes = Lifetimes(3600, None, LATEST)
    for junk in ("30", True, None, -5, 0, [1]):
        assert lifetimes.ttl({LIFETIME: junk}, NOW) == 3600


@given(
    idle=st.integers(1, 10**8),
    own=st.none() | st.integers(1, 10**8),
    absolute=st.none() | st.integers(1, 10**8),
    age=st.floats(0, 2 * 10**8, allow_nan=False),
)
def test_the_ttl_never_reaches_past_the_absolute_end_nor_the_lifetime(
    idle: int, own: int | None, absolute: int | None, age: float
) -> None:
    created = int(NOW)
    meta: dict[str, Any] = {CREATED: created}
    if own is not None:
        meta[LIFETIME] = own
    now = created + age
    ttl = Lifetimes(idle, absolute, LATEST).ttl(meta, now)
    if ttl is None:
        assert absolute is not None and created + absolute - now < 1
        return
    assert 1 <= ttl <= (own if own is not None else idle)
    if absolute is not None:
        assert now + ttl <= created + absolute


@pytest.mark.parametrize(
    ("remaining", "ttl", "after", "due"),
    [
        (3600, 3600, 60, False),  # just refreshed
        (3541, 3600, 60, False),  # refreshed 59 s ago
        (3540, 3600, 60, True),  # refreshed 60 s ago: due
        (10, 3600, 60, True),
        (3601, 3600, 60, False),  # a second of slack for rounding
        (86400, 3600, 60, True),  # saved under a longer lifetime: shortened
        (100, 100, 0, True),  # SESSION_REFRESH_AFTER 0: every read
    ],
)
def test_when_a_paid_refresh_is_due(remaining: float, ttl: int, after: int, due: bool) -> None:
    assert refresh_due(remaining, ttl, after) is due


def test_a_session_with_a_shorter_ttl_than_configured_refreshes_sooner() -> None:
    lifetimes = Lifetimes(86400, None, LATEST)
    assert lifetimes.refresh_after(86400, 60) == 60  # the configured lifetime: as configured
    assert lifetimes.refresh_after(30 * 86400, 60) == 60  # a longer one of its own
    assert lifetimes.refresh_after(300, 60) == 30  # a tenth of a shorter one
    assert lifetimes.refresh_after(3, 60) == 0  # every read
    assert Lifetimes(60, None, LATEST).refresh_after(60, 30) == 30  # explicit, kept


@given(
    absolute=st.integers(2, 10**6),
    set_at=st.floats(0, 10**6, allow_nan=False),
    later=st.floats(0, 10**6, allow_nan=False),
    after=st.integers(1, 3600),
)
def test_a_ttl_cut_short_by_the_absolute_end_is_not_rewritten_on_every_read(
    absolute: int, set_at: float, later: float, after: int
) -> None:
    """Near its absolute end a session's expiry tracks that end: a read soon
    after it was set finds nothing due (no write per read)."""
    lifetimes = Lifetimes(10**7, absolute, LATEST)
    meta = {CREATED: int(NOW)}
    first = lifetimes.ttl(meta, NOW + set_at)
    now = NOW + set_at + min(later, after - 1)
    second = lifetimes.ttl(meta, now)
    if first is None or second is None:
        return
    remaining = NOW + set_at + first - now
    assert not remaining > second + 1
