"""Harness (b): each variant served by Hypercorn on 127.0.0.1, loaded by ``wrk``."""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import tempfile
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path

from tests.servers.processes import free_port, running

from .variants import ROOT, Variant

#: scenario: (path, the view that stores its sessions, or None: no cookie).
HTTP_SCENARIOS = {
    "read": ("/read", "/fill"),
    "read-tiny": ("/read-tiny", "/fill-tiny"),
    "write": ("/write", "/fill"),
    "nocookie": ("/read", None),
}
#: The variants that read the tiny session over HTTP too: those its goals and
#: its floor compare. On all of them it would add 3 minutes to a full run.
TINY_OVER_HTTP = {"none", "none-again", "qs3-redis", "redis", "floor"}
#: Sessions each scenario spreads its requests over: many users, as in real
#: traffic, rather than every connection writing one session at once.
POOL = 64
_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0}

# Each wrk thread walks the pool from its own offset; its connections take
# consecutive cookies, so two requests in flight rarely share a session.
_ROTATE = """
local cookies = {%s}
local n = 0
function setup(thread)
    thread:set("offset", n * %d)
    n = n + 1
end
function request()
    offset = offset + 1
    local cookie = cookies[offset %% #cookies + 1]
    if cookie == "" then
        return wrk.format("GET", "%s")
    end
    return wrk.format("GET", "%s", {["Cookie"] = "session=" .. cookie})
end
"""


@dataclass(frozen=True)
class WrkResult:
    requests_per_second: float
    p99_ms: float
    errors: int


@dataclass(frozen=True)
class Served:
    variant: Variant
    port: int
    pools: dict[str, list[str]]


def runs_over_http(variant: Variant, scenario: str) -> bool:
    return variant.runs(scenario) and (scenario != "read-tiny" or variant.name in TINY_OVER_HTTP)


def fetch_cookie(port: int, fill: str) -> str | None:
    """A new session: the cookie the view *fill* sets."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{fill}", timeout=30) as answer:
        for header in answer.headers.get_all("Set-Cookie") or []:
            morsel = SimpleCookie(header).get("session")
            if morsel is not None and morsel.value:
                return morsel.value
    return None


def session_pool(port: int, fill: str | None) -> list[str]:
    """The cookies a scenario's requests carry ("": none)."""
    if fill is None:
        return [""]
    # Variants without sessions get a stand-in cookie: the same request shape.
    return [fetch_cookie(port, fill) or "x" * 43 for _ in range(POOL)]


@contextmanager
def serving(variants: list[Variant], logs: Path) -> Iterator[list[Served]]:
    """A Hypercorn per variant, all up at once (idle until loaded)."""
    with ExitStack() as stack:
        served = []
        for variant in variants:
            port = free_port()
            argv = [
                str(variant.python),
                "-m",
                "benchmarks.serve",
                json.dumps(variant.spec),
                str(port),
            ]
            log = logs / f"hypercorn-{variant.name}.log"
            stack.enter_context(running(argv, port, log, cwd=ROOT, env=variant.env))
            pools = {
                scenario: session_pool(port, fill)
                for scenario, (_, fill) in HTTP_SCENARIOS.items()
                if runs_over_http(variant, scenario)
            }
            served.append(Served(variant, port, pools))
        yield served


def wrk(
    url: str, path: str, cookies: list[str], seconds: int, connections: int, threads: int
) -> WrkResult:
    binary = shutil.which("wrk")
    if binary is None:
        raise RuntimeError("wrk not found: apt-get install wrk (./scripts/bench does)")
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        quoted = ", ".join(f'"{cookie}"' for cookie in cookies)
        script.write(_ROTATE % (quoted, max(1, len(cookies) // threads), path, path))
        script.flush()
        argv = [binary, f"-d{seconds}s", f"-c{connections}", f"-t{threads}", "--latency"]
        argv += ["--timeout", "5s", "-s", script.name, url]
        output = subprocess.run(
            argv, capture_output=True, text=True, check=True, timeout=seconds + 60
        ).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", output)
    if rate is None or p99 is None:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket_errors = re.search(r"Socket errors:.*", output)
    errors = int(bad.group(1)) if bad else 0
    if socket_errors:
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(0)))
    return WrkResult(float(rate.group(1)), float(p99.group(1)) * _UNITS[p99.group(2)] * 1e3, errors)


def load_all(
    served: list[Served],
    *,
    seconds: int,
    connections: int,
    threads: int,
    rounds: int,
    progress: Callable[[str], None],
) -> dict[tuple[str, str], list[WrkResult]]:
    """Every scenario on every server, servers in a new random order each round."""
    results: dict[tuple[str, str], list[WrkResult]] = {}
    order = list(served)
    for number in range(1, rounds + 1):
        for scenario, (path, _) in HTTP_SCENARIOS.items():
            random.shuffle(order)
            for server in (s for s in order if scenario in s.pools):
                url = f"http://127.0.0.1:{server.port}{path}"
                cookies = server.pools[scenario]
                result = wrk(url, path, cookies, seconds, connections, threads)
                results.setdefault((server.variant.name, scenario), []).append(result)
        progress(f"HTTP round {number}/{rounds} done")
    return results
