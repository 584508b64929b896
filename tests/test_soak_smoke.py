"""The soak harness's smoke variant (benchmarks/SOAK.md): about 35 s.

Two Hypercorn workers serve the soak app on the filesystem store and on
Redis standalone (AOF, appendfsync always) under a few simulated users, one
fault each (the folder read-only for 3 s as root, SIGKILL and restart of
Redis), then on the filesystem store 4.5 s of the normal load alone and 4.5 s
with the abusive client alongside; the run must end with every invariant
held. It fails when one breaks: an acknowledged increment lost, an ended
session back, a 500 or a hang, no recovery within 5 s, a leaked connection,
the workers' memory growing, a limit the abuser got past.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: The smoke runs ~20 s of load plus start-ups; a hang must still end the test.
TIMEOUT = 110


@pytest.mark.servers
@pytest.mark.soak
@pytest.mark.timeout(TIMEOUT + 10)
def test_the_soak_smoke_holds_every_invariant() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.soak", "--smoke"],
        cwd=ROOT,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        },
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "every invariant held" in done.stdout, output
