"""The fuzz profile and the fixtures every fuzz module shares.

Examples per target come from ``QS_FUZZ_EXAMPLES``: the default keeps all of
tests/fuzz under a minute on two cores; ``./scripts/soak --fuzz`` runs 100 000.
The profile is applied per test (``@settings(FUZZ)`` in the modules), not loaded
globally, so the rest of the suite keeps the shared profile of tests/conftest.py.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

#: Examples per fuzz target when QS_FUZZ_EXAMPLES is unset.
DEFAULT_EXAMPLES = 100
EXAMPLES = int(os.environ.get("QS_FUZZ_EXAMPLES", DEFAULT_EXAMPLES))
#: Seconds one example may take on average before pytest-timeout stops a
#: target (a merge case takes ~50 ms on a busy two-core machine).
SECONDS_PER_EXAMPLE = 0.2

settings.register_profile(
    "quart-session-fuzz",
    max_examples=EXAMPLES,
    # Requests share two cores with real servers: their time is not a failure.
    deadline=None,
    derandomize=False,
    # No example database in the checkout: a failure prints a blob that
    # @reproduce_failure replays.
    database=None,
    print_blob=True,
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The suite's 120 s per test fits the default run, not 10^5 examples: a
    target's limit grows with its examples, so that a hang still fails it."""
    limit = max(120.0, EXAMPLES * SECONDS_PER_EXAMPLE)
    for item in items:
        if item.path.parent == Path(__file__).parent:
            item.add_marker(pytest.mark.timeout(limit))


@pytest.fixture(scope="module")
def runner() -> Iterator[asyncio.Runner]:
    """One event loop per module: the app, its store client and every example
    share it (a store client is bound to the loop it was made on)."""
    with asyncio.Runner() as loop_runner:
        yield loop_runner


@pytest.fixture(scope="module", autouse=True)
def quiet_session_logs() -> Iterator[None]:
    """Corrupt records and hijack attempts log a warning each, by design: 10^5 of
    them would fill pytest's log capture. Errors (a 503) are still logged."""
    logger = logging.getLogger("quart_session")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)
