"""Redis Sentinel: a master and its replica (both AOF, ``appendfsync always``,
``min-replicas-to-write 1`` on the master) watched by one Sentinel, on free
127.0.0.1 ports.

One Sentinel (quorum 1) is enough here: the only fault is a *manual* failover
(``SENTINEL FAILOVER``), which a Sentinel carries out alone, without a vote.
The soak app reaches the master through the Sentinel ("SOAK_REDIS"), as an
application would, so a failover is followed by the client, not by the harness.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.servers.redis import sentinel_servers, wait_for

from benchmarks.soak.target import Fault

from .redis_nodes import accepts_writes, client_connections, info, node

SERVICE = "soak-sessions"
AOF = ("--appendonly", "yes", "--appendfsync", "always")
#: The master refuses writes while it has no replica in sync: without this the
#: old master keeps acknowledging writes for ~10 s after a failover, all of
#: them lost when Sentinel makes it a replica (asynchronous replication). Set
#: on the master only (and moved with it): the promoted replica must take
#: writes before its own replica, the old master, has been turned round.
MIN_REPLICAS = "min-replicas-to-write"
#: Seconds writes may stay paused for a failover (bounds the wait for the replica).
PAUSE = 5.0
#: Bounds on one failover: Sentinel's own failover-timeout is 10 s.
FAILOVER_TIMEOUT = 30.0


@dataclass
class SentinelTarget:
    sentinel_port: int
    #: The two Redis servers; which one is master changes with each failover.
    server_ports: tuple[int, int]
    name: str = "redis-sentinel"

    def app_config(self) -> dict[str, Any]:
        sentinels = [["127.0.0.1", self.sentinel_port]]
        return {
            "SESSION_TYPE": "redis",
            "SOAK_REDIS": {"kind": "sentinel", "sentinels": sentinels, "service": SERVICE},
        }

    def faults(self) -> Sequence[Fault]:
        return [Fault("sentinel-failover", self.fail_over)]

    def connections(self) -> int:
        # The Sentinel's own links to both servers count too; they stay the
        # same through a run, so a leak still shows as growth.
        return client_connections(self.server_ports)

    def master_port(self) -> int:
        with node(self.sentinel_port) as client:
            _host, port = client.sentinel_get_master_addr_by_name(SERVICE)
        return int(port)

    def replica_ready(self) -> bool:
        """The Sentinel sees a replica it could promote: up and in sync."""
        with node(self.sentinel_port) as client:
            replicas = client.sentinel_slaves(SERVICE)
        return any(
            "s_down" not in replica["flags"] and replica["master-link-status"] == "ok"
            for replica in replicas
        )

    def fail_over(self) -> None:
        """A planned failover: writes paused on the master until its replica
        has caught up, then ``SENTINEL FAILOVER``. Returns once the Sentinel
        names the replica as master, it takes writes, and the old master has
        become its replica.

        Sentinel promotes a replica without stopping the master first, and
        replication is asynchronous: writes the master acknowledged in the
        last moment before the promotion never reach the replica (a few per
        failover under load, see README.md). Hence the pause, as an operator
        (or ``CLUSTER FAILOVER``) does it.

        Sentinel turns the old master into a replica some 10 s after the
        promotion; until then it is still a master to the clients connected
        to it, and refuses their writes (NOREPLICAS, ``min-replicas-to-write``)
        as its only replica has left: the store then asks the Sentinel for the
        master again. The fault lasts until the old master has been turned.
        """
        # The previous failover's old master must be a synced replica first.
        wait_for(self.replica_ready, "a replica the Sentinel can promote", FAILOVER_TIMEOUT)
        old = self.master_port()
        with node(old) as master:
            master.client_pause(int(PAUSE * 1000), all=False)  # writes only
            try:
                wait_for(lambda: replica_caught_up(old), "the replica to catch up", PAUSE)
                with node(self.sentinel_port) as client:
                    client.sentinel_failover(SERVICE)
                wait_for(lambda: self.master_port() != old, "a new master", FAILOVER_TIMEOUT)
                # Its replica gone, the old master refuses writes from now on.
                wait_for(lambda: no_replicas(old), "the replica to leave", FAILOVER_TIMEOUT)
            finally:
                master.client_unpause()
        new = self.master_port()
        wait_for(lambda: accepts_writes(new), "the new master to take writes", FAILOVER_TIMEOUT)
        wait_for(lambda: replica_of(old, new), "the old master to follow it", FAILOVER_TIMEOUT)
        refuse_writes_alone(new, True)
        refuse_writes_alone(old, False)


def refuse_writes_alone(port: int, refuse: bool) -> None:
    """``min-replicas-to-write`` 1 on a master, 0 on a replica (see MIN_REPLICAS)."""
    with node(port) as client:
        client.config_set(MIN_REPLICAS, 1 if refuse else 0)


def replica_caught_up(master: int) -> bool:
    replication = info(master, "replication")
    return int(replication["connected_slaves"]) == 1 and int(
        replication["slave0"]["offset"]
    ) == int(replication["master_repl_offset"])


def no_replicas(master: int) -> bool:
    return int(info(master, "replication")["connected_slaves"]) == 0


def replica_of(port: int, master: int) -> bool:
    replication = info(port, "replication")
    return (
        replication["role"] == "slave"
        and int(replication["master_port"]) == master
        and replication["master_link_status"] == "up"
    )


@contextmanager
def sentinel(tmp: Path) -> Iterator[SentinelTarget]:
    with sentinel_servers(tmp, *AOF, service=SERVICE) as setup:
        target = SentinelTarget(setup.sentinel_port, setup.server_ports)
        wait_for(target.replica_ready, "the Sentinel to see the replica")
        refuse_writes_alone(setup.server_ports[0], True)
        yield target
