"""Harness (a): every variant's app driven through ASGI in its own process,
the variants interleaved so that machine noise hits them alike."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

from .variants import ROOT, Variant

SCENARIOS = (
    *("read", "write", "read-tiny", "write-tiny"),
    *("plain", "no_session", "nocookie", "badcookie", "static", "login"),
)
#: Seconds a worker may take for one command before the run is abandoned.
COMMAND_TIMEOUT = 600


class WorkerProcess:
    """A ``benchmarks.worker`` process for one variant, spoken to in JSON lines."""

    def __init__(self, variant: Variant) -> None:
        self.variant = variant
        self.proc = subprocess.Popen(
            [str(variant.python), "-m", "benchmarks.worker", json.dumps(variant.spec)],
            cwd=ROOT,
            env={**os.environ, **variant.env},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.info = self._answer()

    def _answer(self) -> Any:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait(COMMAND_TIMEOUT)
            raise RuntimeError(f"{self.variant.name} worker exited ({code})")
        answer = json.loads(line)
        if isinstance(answer, dict) and "error" in answer:
            raise RuntimeError(f"{self.variant.name}: {answer['error']}")
        return answer

    def ask(self, op: str, **args: Any) -> Any:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self.proc.stdin.flush()
        return self._answer()

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.write('{"op": "quit"}\n')
            self.proc.stdin.flush()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextmanager
def workers(variants: list[Variant]) -> Iterator[dict[str, WorkerProcess]]:
    """One started worker per variant, started one after another."""
    with ExitStack() as stack:
        started = {}
        for variant in variants:
            worker = WorkerProcess(variant)
            stack.callback(worker.close)
            started[variant.name] = worker
        yield started


@dataclass
class Timings:
    """Per (variant, scenario): every round's request times in nanoseconds."""

    rounds: dict[tuple[str, str], list[list[int]]] = field(default_factory=dict)


def time_all(
    running: dict[str, WorkerProcess],
    *,
    requests: int,
    warmup: int,
    rounds: int,
    progress: Callable[[str], None],
) -> Timings:
    """Each round runs every scenario on every variant that runs it, variants
    in a new random order each time; only one worker works at a time."""
    timings = Timings()
    order = list(running)
    for number in range(1, rounds + 1):
        for scenario in SCENARIOS:
            random.shuffle(order)
            for name in (n for n in order if running[n].variant.runs(scenario)):
                answer = running[name].ask("run", scenario=scenario, n=requests, warmup=warmup)
                timings.rounds.setdefault((name, scenario), []).append(answer["ns"])
        progress(f"in-process round {number}/{rounds} done")
    return timings


def log(message: str) -> None:
    print(f"== {message}", file=sys.stderr, flush=True)
