"""What the soak runner needs from a store under test, and the faults it can suffer.

A *target* is one store set-up (a server or files the harness owns) started by
a context manager registered in :data:`TARGETS`. The runner serves the soak
app against it in Hypercorn worker processes, so a target describes its store
by app config alone (JSON: URLs, paths, ports; never a client object), and
injects its faults itself, from a thread, on the real servers it started.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class Fault:
    """One fault a store can suffer mid-run."""

    #: Short and stable, used in reports: "sigkill-restart", "sigstop-3s", ...
    name: str
    #: Injects the fault and returns once it has ended (the server restarted,
    #: the lock released, ...). Blocking; the runner calls it in a thread while
    #: the load runs. The runner measures recovery from its return.
    inject: Callable[[], None]
    #: The store loses sessions by design under this fault (a memcached
    #: restart, Redis without persistence): a session may then vanish whole,
    #: never in part, and its acknowledged increments are not counted as lost.
    loses_data: bool = False


class Target(Protocol):
    """A running store set-up the soak runner loads and breaks."""

    #: "redis", "redis-sentinel", "redis-cluster", "memcached", "postgresql",
    #: "sqlite", "filesystem", "mongodb", "dynamodb", ...
    name: str

    def app_config(self) -> dict[str, Any]:
        """The app.config keys that point the soak app at this store (JSON-able)."""
        ...

    def faults(self) -> Sequence[Fault]:
        """The faults this target can inject, in the order a full run injects them."""
        ...

    def connections(self) -> int | None:
        """Client connections the store's server(s) hold right now (the leak
        check compares this at the end with the count after warm-up), or None
        where there is no server to ask (files, SQLite)."""
        ...


#: target name -> "module:function"; the function takes a temp dir and returns
#: a context manager yielding the running Target. Imported lazily, so a run of
#: one store needs only that store's client library.
TARGETS: dict[str, str] = {
    "filesystem": "benchmarks.soak.targets.local:filesystem",
    "sqlite": "benchmarks.soak.targets.local:sqlite",
    "redis": "benchmarks.soak.targets.redis:standalone",
    "memcached": "benchmarks.soak.targets.memcached:memcached",
    "postgresql": "benchmarks.soak.targets.postgres:postgresql",
    "redis-sentinel": "benchmarks.soak.targets.sentinel:sentinel",
    "redis-cluster": "benchmarks.soak.targets.cluster:cluster",
    "mongodb": "benchmarks.soak.targets.documents:mongodb",
    "dynamodb": "benchmarks.soak.targets.documents:dynamodb",
}


def start(name: str, tmp: Path) -> AbstractContextManager[Target]:
    """Start target *name* in *tmp* (a fresh directory the caller removes)."""
    try:
        module_name, function = TARGETS[name].split(":")
    except KeyError:
        raise ValueError(f"unknown soak target {name!r}; known: {', '.join(TARGETS)}") from None
    module = importlib.import_module(module_name)
    factory: Callable[[Path], AbstractContextManager[Target]] = getattr(module, function)
    return factory(tmp)


def names() -> Sequence[str]:
    return list(TARGETS)


__all__ = ["TARGETS", "Fault", "Target", "names", "start"]
