"""What the Sentinel and Cluster targets share: asking their Redis nodes, by port."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import redis


def node(port: int) -> redis.Redis:
    """A short-lived client of our own (RESP2, no HELLO) on one node."""
    return redis.Redis(port=port, protocol=2, decode_responses=True, socket_timeout=5)


def info(port: int, section: str) -> dict[str, Any]:
    with node(port) as client:
        return dict(client.info(section))


#: What a node's own links run: the connections MIGRATE keeps open between
#: cluster nodes (for 10 s) show up as clients of the target node.
NODE_COMMANDS = frozenset({"restore-asking", "restore", "client|list"})


def client_connections(ports: Iterable[int]) -> int:
    """Clients' connections the nodes hold: ``CLIENT LIST TYPE normal`` leaves
    out replication links and Pub/Sub; MIGRATE's links and our own are left
    out here."""
    total = 0
    for port in ports:
        with node(port) as client:
            listed = client.client_list(_type="normal")
        total += sum(entry["cmd"] not in NODE_COMMANDS for entry in listed)
    return total


def accepts_writes(port: int, key: str = "soak:probe") -> bool:
    """Whether *port* takes a write now (a master, not paused, not READONLY)."""
    try:
        with node(port) as client:
            client.set(key, "1", px=1000)
    except redis.RedisError:
        return False
    return True
