"""Shared fixtures. Async tests run through anyio's pytest plugin."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    """asyncio unless a module overrides it (the local stores also run on trio)."""
    return "asyncio"
