"""Redis Cluster: three masters, each with a replica, on free 127.0.0.1 ports.

Faults, on the cluster the soak app is writing to:

- "reshard-live": the slots holding live session keys on one master move to
  another, key by key, as ``redis-cli --cluster reshard`` does (``CLUSTER
  SETSLOT IMPORTING/MIGRATING``, ``MIGRATE``, ``SETSLOT NODE``), while the
  writes go on: clients get ASK during a slot's move and MOVED after it.
- "master-failover": the replica of the master holding most sessions takes
  over with ``CLUSTER FAILOVER`` (the coordinated manual failover: the master
  stops writes until its replica has caught up, so nothing acknowledged is
  lost); the old master stays on as the new one's replica, so each failover
  starts from a healthy cluster of three masters with a replica each.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from tests.servers.redis import cluster_servers, wait_for

from benchmarks.soak.target import Fault

from .redis_nodes import client_connections, info, node

#: Sessions' keys start with this (SESSION_KEY_PREFIX's default).
SESSION_KEYS = "session:*"
#: Most slots one reshard moves (every slot holding a session would be
#: most of them after a long run; a few are enough to exercise ASK/MOVED).
SLOTS_PER_RESHARD = 16
TIMEOUT = 30.0


@dataclass(frozen=True)
class Node:
    """One line of ``CLUSTER NODES``."""

    id: str
    port: int
    is_master: bool
    #: The master's id, for a replica.
    master_id: str | None
    slots: tuple[tuple[int, int], ...]


def cluster_nodes(port: int) -> list[Node]:
    """The cluster as the node at *port* sees it."""
    with node(port) as client:
        text: str = client.execute_command("CLUSTER", "NODES")
    nodes = []
    for line in str(text).splitlines():
        fields = line.split()
        address, flags = fields[1], fields[2].split(",")
        ranges = tuple(
            (int(first), int(last or first))
            for first, _, last in (spec.partition("-") for spec in fields[8:] if "[" not in spec)
        )
        nodes.append(
            Node(
                fields[0],
                int(address.split("@")[0].rsplit(":", 1)[1]),
                "master" in flags,
                None if fields[3] == "-" else fields[3],
                ranges,
            )
        )
    return nodes


@dataclass
class ClusterTarget:
    ports: tuple[int, ...]
    name: str = "redis-cluster"

    def app_config(self) -> dict[str, Any]:
        return {
            "SESSION_TYPE": "redis",
            "SOAK_REDIS": {"kind": "cluster", "nodes": [["127.0.0.1", p] for p in self.ports]},
        }

    def faults(self) -> Sequence[Fault]:
        return [Fault("reshard-live", self.reshard_live), Fault("master-failover", self.fail_over)]

    def connections(self) -> int:
        return client_connections(self.ports)

    def masters(self) -> list[Node]:
        return [n for n in cluster_nodes(self.ports[0]) if n.is_master and n.slots]

    def session_slots(self, master: Node) -> Counter[int]:
        """Live session keys on *master*, counted by slot."""
        with node(master.port) as client:
            keys = list(client.scan_iter(match=SESSION_KEYS, count=1000))
            return Counter(int(client.cluster("KEYSLOT", key)) for key in keys)

    def busiest_master(self) -> Node:
        return max(self.masters(), key=lambda master: sum(self.session_slots(master).values()))

    def reshard_live(self) -> None:
        """Move the slots holding sessions on the busiest master to another one."""
        source = self.busiest_master()
        target = next(m for m in self.masters() if m.id != source.id)
        slots = [slot for slot, _ in self.session_slots(source).most_common(SLOTS_PER_RESHARD)]
        if not slots:
            raise RuntimeError("no session keys to move: the fault needs live sessions")
        for slot in slots:
            self.move_slot(slot, source, target)
        wait_for(self.healthy, "the cluster to agree on the new slots", TIMEOUT)

    def move_slot(self, slot: int, source: Node, target: Node) -> None:
        with node(source.port) as src, node(target.port) as dst:
            dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source.id)
            src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target.id)
            while keys := src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100):
                src.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys)
            # The new owner first, then the old one, then the rest (as
            # redis-cli does): clients are sent on by MOVED from then on.
            for port in [target.port, source.port, *(m.port for m in self.masters())]:
                with node(port) as client:
                    client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target.id)

    def fail_over(self) -> None:
        """The busiest master's replica takes over (``CLUSTER FAILOVER``)."""
        master = self.busiest_master()
        replica = next(n for n in cluster_nodes(master.port) if n.master_id == master.id)
        with node(replica.port) as client:
            client.execute_command("CLUSTER", "FAILOVER")
        wait_for(partial(self.promoted, replica, master), "the replica to take over", TIMEOUT)
        wait_for(self.healthy, "the cluster to be healthy again", TIMEOUT)

    def promoted(self, replica: Node, master: Node) -> bool:
        seen = {n.id: n for n in cluster_nodes(master.port)}
        return seen[replica.id].is_master and seen[master.id].master_id == replica.id

    def healthy(self) -> bool:
        """Every node says ok, and all see the same slot map and three masters,
        each with a replica in sync."""
        views = []
        for port in self.ports:
            with node(port) as client:
                if client.cluster("INFO")["cluster_state"] != "ok":
                    return False
            views.append(
                sorted((n.id, n.is_master, n.master_id, n.slots) for n in cluster_nodes(port))
            )
        nodes = cluster_nodes(self.ports[0])
        masters = [n for n in nodes if n.is_master]
        replicas_of = Counter(n.master_id for n in nodes)
        return (
            all(view == views[0] for view in views)
            and len(masters) == 3
            and all(replicas_of[m.id] == 1 for m in masters)
            and all(linked(n.port) for n in nodes if not n.is_master)
        )


def linked(port: int) -> bool:
    """Whether the replica at *port* is in sync with its master."""
    return info(port, "replication").get("master_link_status") == "up"


@contextmanager
def cluster(tmp: Path) -> Iterator[ClusterTarget]:
    with cluster_servers(tmp, 3, replicas=1) as ports:
        target = ClusterTarget(ports)
        wait_for(target.healthy, "the cluster to form", TIMEOUT)
        yield target
