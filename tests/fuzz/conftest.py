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

import pytest
from hypothesis import settings

#: Examples per fuzz target when QS_FUZZ_EXAMPLES is unset.
DEFAULT_EXAMPLES = 100

settings.register_profile(
    "quart-session-fuzz",
    max_examples=int(os.environ.get("QS_FUZZ_EXAMPLES", DEFAULT_EXAMPLES)),
    # Requests share two cores with real servers: their time is not a failure.
    deadline=None,
    derandomize=False,
    # No example database in the checkout: a failure prints a blob that
    # @reproduce_failure replays.
    database=None,
    print_blob=True,
)


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
