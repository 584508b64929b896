"""Real Redis for tests: a standalone server, a 3-master cluster, and a master +
replica watched by a Sentinel. Session-scoped, on free 127.0.0.1 ports in temp
dirs, stopped after: the ``redis_standalone``, ``redis_cluster`` and
``redis_sentinel`` fixtures (a plugin of ``tests/conftest.py``).

Also ``store_for`` (a store from app.config keys), ``StandaloneClient`` and
``ClusterClient`` (redis-py ``client`` fixtures), ``StoreOnClient`` (a store
fixture on such a client), ``FrozenStandalone`` (the outage suites'
``store_control``) and ``CommandCounter``: round trips measured as
``INFO commandstats`` deltas.
Commands a Lua script runs inside the server count there too (a save shows
as EVALSHA + GETRANGE + SET): the client sent one, EVALSHA.
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import redis
from quart import Quart
from redis.asyncio import Redis, RedisCluster

from quart_session.config import Settings
from quart_session.stores.redis import RedisStore, from_settings

from .processes import Frozen, free_port, need_binary, running

SERVICE = "sessions"
"""The Sentinel service name of the watched master."""


def settings_for(**config: Any) -> Settings:
    app = Quart(__name__)
    app.config.update({"SESSION_TYPE": "redis", **config})
    return Settings.from_app(app)


def store_for(**config: Any) -> RedisStore:
    """The store ``Session`` would build from these ``app.config`` keys."""
    return from_settings(settings_for(**config))


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        time.sleep(0.05)


def info(port: int, section: str) -> dict[str, object]:
    with redis.Redis(port=port, protocol=2) as client:
        return dict(client.info(section))


@contextmanager
def redis_server(
    tmp: Path, *options: str, unix_socket: bool = False
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """A redis-server on a free port (and a unix socket ``redis.sock`` in its dir)."""
    binary = need_binary("redis-server", "redis-server")
    port = free_port()
    folder = tmp / f"redis-{port}"
    folder.mkdir()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder)]
    argv += ["--save", "", "--appendonly", "no"]
    if unix_socket:
        argv += ["--unixsocket", str(folder / "redis.sock"), "--unixsocketperm", "700"]
    with running([*argv, *options], port, folder / "log") as process:
        yield port, process


@dataclass(frozen=True)
class Standalone:
    port: int
    socket: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


@dataclass(frozen=True)
class Cluster:
    ports: tuple[int, ...]


@dataclass(frozen=True)
class SentinelSetup:
    sentinel_port: int
    server_ports: tuple[int, int]


@pytest.fixture(scope="session", name="redis_standalone")
def redis_standalone_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Standalone]:
    tmp = tmp_path_factory.mktemp("redis")
    with redis_server(tmp, unix_socket=True) as (port, process):
        yield Standalone(port, tmp / f"redis-{port}" / "redis.sock", process)


@pytest.fixture(scope="session", name="redis_cluster")
def redis_cluster_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Three masters, no replicas, every slot assigned."""
    with cluster_servers(tmp_path_factory.mktemp("cluster"), 3, replicas=0) as ports:
        for port in ports:
            wait_for(partial(cluster_ready, port), f"cluster node {port} to see all masters")
        yield Cluster(ports)


@contextmanager
def cluster_servers(tmp: Path, masters: int, replicas: int) -> Iterator[tuple[int, ...]]:
    """A cluster of *masters* masters with *replicas* replicas each, every slot
    assigned (``redis-cli --cluster create``), until the block ends: the nodes'
    ports. Also the soak harness's Cluster target."""
    cli = need_binary("redis-cli", "redis-tools")
    node = ("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
    with ExitStack() as stack:
        # An explicit bus port: the default (port + 10000) fails above 55535.
        ports = tuple(
            stack.enter_context(redis_server(tmp, *node, "--cluster-port", str(free_port())))[0]
            for _ in range(masters * (1 + replicas))
        )
        nodes = [f"127.0.0.1:{port}" for port in ports]
        create = ["--cluster", "create", *nodes, "--cluster-replicas", str(replicas)]
        subprocess.run([cli, *create, "--cluster-yes"], check=True, capture_output=True, timeout=60)
        yield ports


def cluster_ready(port: int) -> bool:
    with redis.Redis(port=port, protocol=2) as client:
        state = client.execute_command("CLUSTER INFO")
    return bool(state["cluster_state"] == "ok" and int(state["cluster_size"]) == 3)


@pytest.fixture(scope="session", name="redis_sentinel")
def redis_sentinel_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelSetup]:
    """A master, its replica, and one Sentinel (quorum 1) watching them."""
    with sentinel_servers(tmp_path_factory.mktemp("sentinel")) as setup:
        wait_for(
            lambda: sentinel_sees_replica(setup.sentinel_port), "the sentinel to see the replica"
        )
        yield setup


@contextmanager
def sentinel_servers(tmp: Path, *options: str, service: str = SERVICE) -> Iterator[SentinelSetup]:
    """A master and its replica (both started with *options*, the replica in
    sync) and one Sentinel (quorum 1) watching them as *service*, until the
    block ends. Also the soak harness's Sentinel target."""
    binary = need_binary("redis-sentinel", "redis-sentinel")
    with ExitStack() as stack:
        master, _ = stack.enter_context(redis_server(tmp, *options))
        replica, _ = stack.enter_context(
            redis_server(tmp, *options, "--replicaof", "127.0.0.1", str(master))
        )
        wait_for(
            lambda: info(replica, "replication").get("master_link_status") == "up",
            "the replica to sync",
        )
        port = free_port()
        conf = tmp / "sentinel.conf"
        conf.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {tmp}\n"
            f"sentinel monitor {service} 127.0.0.1 {master} 1\n"
            f"sentinel down-after-milliseconds {service} 2000\n"
            f"sentinel failover-timeout {service} 10000\n"
        )
        stack.enter_context(running([binary, str(conf)], port, tmp / "sentinel.log"))
        yield SentinelSetup(port, (master, replica))


def sentinel_sees_replica(port: int) -> bool:
    with redis.Redis(port=port, protocol=2, decode_responses=True) as client:
        replicas = client.sentinel_slaves(SERVICE)
    return any("s_down" not in r["flags"] and r["master-link-status"] == "ok" for r in replicas)


def sentinel_master_port(setup: SentinelSetup) -> int:
    with redis.Redis(port=setup.sentinel_port, protocol=2, decode_responses=True) as client:
        _host, port = client.sentinel_get_master_addr_by_name(SERVICE)
    return int(port)


def flush(ports: Iterable[int]) -> None:
    for port in ports:
        with redis.Redis(port=port, protocol=2) as client:
            client.flushall()


def key_count(port: int) -> int:
    with redis.Redis(port=port, protocol=2) as client:
        return int(client.dbsize())


class StandaloneClient:
    """``client``: redis-py on the emptied standalone server."""

    @pytest.fixture
    async def client(self, redis_standalone: Standalone) -> AsyncIterator[Redis]:
        flush([redis_standalone.port])
        client = Redis(port=redis_standalone.port)
        yield client
        await client.aclose()


class ClusterClient:
    """``client``: redis-py on the emptied cluster."""

    @pytest.fixture
    async def client(self, redis_cluster: Cluster) -> AsyncIterator[RedisCluster]:
        flush(redis_cluster.ports)
        client = RedisCluster(host="127.0.0.1", port=redis_cluster.ports[0])
        yield client
        await client.aclose()


class FrozenStandalone:
    """``store_control``: the standalone server frozen and thawed (``Frozen``)."""

    @pytest.fixture
    def store_control(self, redis_standalone: Standalone) -> Frozen:
        return Frozen(redis_standalone.process.pid)


class StoreOnClient:
    """A subclass provides a ``client`` fixture; ``store`` is made on it
    (``SESSION_REDIS``), and closing the store leaves the client open."""

    @pytest.fixture
    async def store(self, client: Any) -> AsyncIterator[RedisStore]:
        store = store_for(SESSION_REDIS=client)
        yield store
        await store.close()


class CommandCounter:
    """Commands the servers at *ports* ran between ``start()`` and ``delta()``,
    from ``INFO commandstats`` read over connections of its own (RESP2: no
    HELLO; the counter's own INFO calls are left out)."""

    def __init__(self, ports: Iterable[int]) -> None:
        self.clients = [redis.Redis(port=port, protocol=2) for port in ports]
        self.before: Counter[str] = Counter()

    def _calls(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for client in self.clients:
            for name, stats in client.info("commandstats").items():
                total[name.removeprefix("cmdstat_")] += int(stats["calls"])
        return total

    def start(self) -> None:
        self.before = self._calls()

    def delta(self) -> Counter[str]:
        """Commands run since ``start()``, by name."""
        delta = self._calls() - self.before
        del delta["info"]
        return delta

    def close(self) -> None:
        for client in self.clients:
            client.close()
