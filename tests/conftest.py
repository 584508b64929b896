"""Shared fixtures. Async tests run through anyio's pytest plugin."""

from __future__ import annotations

import pytest

# The shared suites live in plain modules: rewrite their asserts too, so that a
# failure there shows the values compared, not a bare AssertionError.
pytest.register_assert_rewrite(
    "tests.behaviour", "tests.concurrency", "tests.contract", "tests.race"
)


@pytest.fixture
def anyio_backend() -> str:
    """asyncio unless a module overrides it (the local stores also run on trio)."""
    return "asyncio"
