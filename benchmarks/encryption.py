"""What SESSION_ENCRYPTION_KEYS adds to a request, in µs: one open per read,
one seal per write (plus, on a conflict, one open per reload), for the
benchmark's realistic and tiny sessions as the store would hold them.

    .venv/bin/python -m benchmarks.encryption

End to end, with the store's round trip: the ``memory-encrypted`` and
``redis-encrypted`` variants of ``./scripts/bench``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from quart_session.crypto import Keyring, parse_keys

from .app import SESSIONS, stored_payload
from .variants import BENCHMARK_KEY

ROUNDS = 7
CALLS = 20_000
STORE_KEY = "session:" + "x" * 43


def per_call(work: Callable[[], object]) -> float:
    """Median over ROUNDS of the µs one call of *work* takes."""
    timings = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(CALLS):
            work()
        timings.append((time.perf_counter() - start) / CALLS * 1e6)
    return statistics.median(timings)


def main() -> None:
    keyring = Keyring(parse_keys([BENCHMARK_KEY]))
    for name, session in SESSIONS.items():
        payload = stored_payload(session)
        sealed = keyring.seal(STORE_KEY, payload)
        seal = per_call(lambda payload=payload: keyring.seal(STORE_KEY, payload))
        opened = per_call(lambda sealed=sealed: keyring.open(STORE_KEY, sealed))
        print(
            f"{name:>9} session, {len(payload)} B (+{len(sealed) - len(payload)} B sealed): "
            f"seal {seal:.1f} µs (a write), open {opened:.1f} µs (a read)"
        )


if __name__ == "__main__":
    main()
