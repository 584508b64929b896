"""Shared fixtures. Async tests run through anyio's pytest plugin."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

# Property tests share two cores with real servers and other tests: no
# per-example deadline, and slow input generation is not a failure.
settings.register_profile("shared", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("shared")

# The fixtures that start real servers, each session-scoped: registered once
# here, so every module shares one server per kind, and a module only names the
# fixture it needs.
pytest_plugins = [
    "tests.servers.dynamodb",
    "tests.servers.memcached",
    "tests.servers.mongodb",
    "tests.servers.postgres",
    "tests.servers.redis",
]

# The shared suites live in plain modules: rewrite their asserts too, so that a
# failure there shows the values compared, not a bare AssertionError.
pytest.register_assert_rewrite("tests.suites")


@pytest.fixture
def anyio_backend() -> str:
    """asyncio unless a module overrides it (the local stores also run on trio)."""
    return "asyncio"
