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


def client_connections(ports: Iterable[int]) -> int:
    """Client connections the nodes hold (INFO leaves replicas' links out),
    less the one each INFO itself came on."""
    return sum(int(info(port, "clients")["connected_clients"]) - 1 for port in ports)


def accepts_writes(port: int, key: str = "soak:probe") -> bool:
    """Whether *port* takes a write now (a master, not paused, not READONLY)."""
    try:
        with node(port) as client:
            client.set(key, "1", px=1000)
    except redis.RedisError:
        return False
    return True
