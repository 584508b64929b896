"""Shared fixtures. Async tests run through anyio's pytest plugin."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

# Property tests share two cores with real servers and other tests: no
# per-example deadline, and slow input generation is not a failure.
settings.register_profile("shared", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("shared")

# The shared suites live in plain modules: rewrite their asserts too, so that a
# failure there shows the values compared, not a bare AssertionError.
pytest.register_assert_rewrite(
    "tests.behaviour", "tests.concurrency", "tests.contract", "tests.race"
)


@pytest.fixture
def anyio_backend() -> str:
    """asyncio unless a module overrides it (the local stores also run on trio)."""
    return "asyncio"
