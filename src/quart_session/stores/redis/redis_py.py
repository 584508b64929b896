"""The Redis store's driver for redis-py: asyncio only (one server, Sentinel, Cluster)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any, cast

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.sentinel import SentinelConnectionPool
from redis.exceptions import NoScriptError

from ...errors import SessionConfigError
from .lane import ConnectionLane, can_use_lane
from .protocol import SAVE_SCRIPT

#: Connections our own client opens at most (redis-py's default); an application
#: needing more passes its own client in SESSION_REDIS.
POOL_SIZE = 100

RedisPyClient = Redis | RedisCluster


def is_redis_py_client(client: object) -> bool:
    return isinstance(client, Redis | RedisCluster)


class RedisPyDriver:
    """redis-py's asyncio client: one server, a Sentinel master, or a cluster."""

    script_sha = hashlib.sha1(SAVE_SCRIPT.encode(), usedforsecurity=False).hexdigest()

    def __init__(
        self,
        client: RedisPyClient,
        *,
        owned: bool,
        address: str | None = None,
    ) -> None:
        if client.get_encoder().decode_responses:
            raise SessionConfigError(
                "SESSION_REDIS must be made with decode_responses=False: sessions are bytes"
            )
        self.client = client
        self.owned = owned
        self._address = address
        self._cluster = isinstance(client, RedisCluster)
        self._lane = ConnectionLane(client) if can_use_lane(client) else None

    @property
    def address(self) -> str:
        return self._address or redis_py_address(self.client)

    async def _client(self) -> RedisPyClient:
        # A RedisCluster set up implicitly by many concurrent first commands
        # fails some of them (redis-py 8.1); setting it up once first does not.
        # Once set up, initialize() returns at once.
        if self._cluster:
            await self.client.initialize()
        return self.client

    async def _execute(self, *args: Any) -> Any:
        """One command, past the option parsing of redis-py's command methods
        (getex() spends 5 µs there) and, on a plain client, its pool (``lane``)."""
        if self._lane is not None:
            return await self._lane.execute(*args)
        client = await self._client()
        return await client.execute_command(*args)

    async def get(self, key: str, ttl: int | None) -> bytes | None:
        # decode_responses is refused above, so redis-py answers bytes.
        if ttl is None:
            return cast(bytes | None, await self._execute("GET", key))
        return cast(bytes | None, await self._execute("GETEX", key, "EX", ttl))

    async def expire(self, key: str, ttl: int) -> bool:
        return bool(await self._execute("EXPIRE", key, ttl))

    async def pttl(self, key: str) -> int:
        return int(await self._execute("PTTL", key))

    async def save(self, key: str, args: list[bytes]) -> int:
        # The script is loaded once per server; a restarted or new server
        # (failover, resharding) answers NOSCRIPT and gets it again.
        try:
            status = await self._execute("EVALSHA", self.script_sha, 1, key, *args)
        except NoScriptError:
            client = await self._client()
            await client.script_load(SAVE_SCRIPT)
            status = await self._execute("EVALSHA", self.script_sha, 1, key, *args)
        return int(status)

    async def unlink(self, key: str) -> None:
        await self._execute("UNLINK", key)

    async def getdel(self, key: str) -> bytes | None:
        return cast(bytes | None, await self._execute("GETDEL", key))

    async def count(self, pattern: bytes) -> int:
        client = await self._client()
        # SCAN may return a key twice; a set counts it once.
        keys: set[bytes] = set()
        async for key in client.scan_iter(match=pattern, count=1000):
            keys.add(key)
        return len(keys)

    async def keys(self, pattern: bytes) -> AsyncIterator[bytes]:
        client = await self._client()
        async for key in client.scan_iter(match=pattern, count=1000):
            yield key

    async def ping(self) -> None:
        client = await self._client()
        await client.ping()

    async def close(self) -> None:
        if self._lane is not None:
            await self._lane.close()
        if self.owned:
            await self.client.aclose()


def redis_py_address(client: RedisPyClient) -> str:
    if isinstance(client, RedisCluster):
        nodes = ", ".join(node.name for node in client.get_nodes())
        return f"cluster {nodes}" if nodes else "cluster"
    pool = client.connection_pool
    if isinstance(pool, SentinelConnectionPool):
        return f"sentinel master {pool.service_name!r}"
    options = pool.connection_kwargs
    if "path" in options:
        return f"unix://{options['path']}"
    return f"{options.get('host', '?')}:{options.get('port', '?')}/{options.get('db', 0)}"


def driver_from_url(uri: str, timeout: float, address: str) -> RedisPyDriver:
    """A driver on a redis-py client of our own, made from a redis:// URL."""
    # No socket_timeout (redis-py's default: 5 s, an asyncio timeout armed on
    # every read): every store call has SESSION_BACKEND_TIMEOUT already.
    made = Redis.from_url(
        uri, max_connections=POOL_SIZE, socket_connect_timeout=timeout, socket_timeout=None
    )
    return RedisPyDriver(made, owned=True, address=address)
