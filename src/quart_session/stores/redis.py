"""Redis (and Valkey): one server, Sentinel, Cluster; redis-py on asyncio, GLIDE on Trio.

A record is ONE string value: a 20-byte header ``qs4:<16 hex digits>`` holding
its version, then the payload. One key per record keeps every command on one
cluster slot, and one value lets a read with sliding expiry be a single
``GETEX``. A save is a single ``EVALSHA`` of a Lua script that compares the
version and writes payload and TTL atomically. A value without the header
(Quart-Session 3.0 stored bare payloads) loads with the version ``""``.

The client comes from ``SESSION_REDIS`` (redis-py ``Redis``, ``RedisCluster``, a
Sentinel ``master_for`` client, or a Valkey GLIDE client), or is made from
``SESSION_URI``: redis-py under asyncio, GLIDE under Trio (redis-py is
asyncio-only). Clients handed in stay open on ``close()``; ours are closed.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from typing import TYPE_CHECKING, Any, Protocol, cast
from urllib.parse import urlsplit

import sniffio
from redis.asyncio import Redis, RedisCluster
from redis.asyncio.sentinel import SentinelConnectionPool
from redis.exceptions import NoScriptError

from ..errors import SessionConfigError
from .base import Outcome, Record, SaveResult, Store, Version

if TYPE_CHECKING:
    from ..config import Settings

DEFAULT_URI = "redis://127.0.0.1:6379"
#: Connections our own client opens at most (redis-py's default); an application
#: needing more passes its own client in SESSION_REDIS.
POOL_SIZE = 100
SCHEMES = ("redis", "rediss", "unix")

MARKER = b"qs4:"
VERSION_LENGTH = 16
HEADER_LENGTH = len(MARKER) + VERSION_LENGTH

# Reads only the header (GETRANGE), never the old payload. An empty GETRANGE
# means no record: stored values are never empty. 'qs4:' and 19 are MARKER and
# HEADER_LENGTH - 1.
SAVE_SCRIPT = """
local head = redis.call('GETRANGE', KEYS[1], 0, 19)
if ARGV[1] == '' then
    if head ~= '' then return 0 end
elseif head == '' then
    return -1
else
    local version = ''
    if string.sub(head, 1, 4) == 'qs4:' then version = string.sub(head, 5, 20) end
    if '=' .. version ~= ARGV[1] then return 0 end
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""
"""KEYS[1]: the record. ARGV: "" to create, or "=" + the expected version; the
new value; the TTL in seconds. Returns 1 written, 0 conflict, -1 gone."""

WRITTEN = 1
FAILED = {0: Outcome.CONFLICT, -1: Outcome.GONE}


class RedisDriver(Protocol):
    """The few commands the store needs, each one round trip, on some client."""

    @property
    def address(self) -> str: ...

    async def get(self, key: str, ttl: int | None) -> bytes | None:
        """GET, or GETEX with a new TTL when *ttl* is given."""

    async def save(self, key: str, args: list[bytes]) -> int:
        """Run SAVE_SCRIPT on *key* with *args*; returns its status."""

    async def unlink(self, key: str) -> None: ...

    async def getdel(self, key: str) -> bytes | None:
        """GETDEL: the value, removed in the same command."""

    async def expire(self, key: str, ttl: int) -> bool: ...

    async def count(self, pattern: bytes) -> int:
        """How many keys match the SCAN *pattern* (on every cluster primary)."""

    async def ping(self) -> None: ...

    async def close(self) -> None:
        """Close the client if the store made it."""


def encode(version: str, payload: bytes) -> bytes:
    return MARKER + version.encode("ascii") + payload


def decode(value: bytes) -> Record:
    if value.startswith(MARKER) and len(value) >= HEADER_LENGTH:
        return Record(value[HEADER_LENGTH:], value[len(MARKER) : HEADER_LENGTH].decode("ascii"))
    return Record(value, "")


def glob_escape(prefix: str) -> bytes:
    """*prefix* as a SCAN MATCH pattern that matches only itself."""
    escaped = bytearray()
    for byte in prefix.encode():
        if byte in b"*?[]\\":
            escaped.append(ord("\\"))
        escaped.append(byte)
    return bytes(escaped)


class RedisStore(Store):
    name = "redis"
    can_take = True

    def __init__(self, driver: RedisDriver) -> None:
        self.driver = driver

    @property
    def address(self) -> str:
        return self.driver.address

    async def load(self, key: str, refresh_ttl: int | None = None) -> Record | None:
        value = await self.driver.get(key, refresh_ttl)
        return None if value is None else decode(value)

    async def save(
        self, key: str, payload: bytes, ttl: int, expected: Version | None
    ) -> SaveResult:
        version = secrets.token_hex(VERSION_LENGTH // 2)
        # Our versions are str; any other kind never matches, so it conflicts.
        condition = b"" if expected is None else b"=" + str(expected).encode()
        args = [condition, encode(version, payload), str(ttl).encode()]
        status = await self.driver.save(key, args)
        return version if status == WRITTEN else FAILED[status]

    async def delete(self, key: str) -> None:
        await self.driver.unlink(key)

    async def take(self, key: str) -> Record | None:
        value = await self.driver.getdel(key)
        return None if value is None else decode(value)

    async def touch(self, key: str, ttl: int) -> bool:
        return await self.driver.expire(key, ttl)

    async def count(self, prefix: str) -> int:
        return await self.driver.count(glob_escape(prefix) + b"*")

    async def ping(self) -> None:
        await self.driver.ping()

    async def close(self) -> None:
        await self.driver.close()


RedisPyClient = Redis | RedisCluster


class RedisPyDriver:
    """redis-py's asyncio client: one server, a Sentinel master, or a cluster."""

    script_sha = hashlib.sha1(SAVE_SCRIPT.encode(), usedforsecurity=False).hexdigest()

    def __init__(
        self,
        client: RedisPyClient,
        *,
        owned: bool,
        address: str | None = None,
        max_commands: int | None = None,
    ) -> None:
        if client.get_encoder().decode_responses:
            raise SessionConfigError(
                "SESSION_REDIS must be made with decode_responses=False: sessions are bytes"
            )
        self.client = client
        self.owned = owned
        self._address = address
        self._cluster = isinstance(client, RedisCluster)
        # Past its connections redis-py's pool fails a command at once, which
        # turned a burst of requests into 503s from a healthy store: commands
        # beyond them wait for a free one here instead (the store call's own
        # timeout still applies). redis-py's BlockingConnectionPool does the
        # same at 15-25 µs a command; an uncontended semaphore costs nothing.
        self._free = None if max_commands is None else asyncio.Semaphore(max_commands)

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
        """One command, straight to execute_command: past the option parsing of
        redis-py's command methods (getex() spends 5 µs there, as much as the
        rest of this store's work on a read)."""
        client = await self._client()
        free = self._free
        if free is None:
            return await client.execute_command(*args)
        async with free:
            return await client.execute_command(*args)

    async def get(self, key: str, ttl: int | None) -> bytes | None:
        # decode_responses is refused above, so redis-py answers bytes.
        if ttl is None:
            return cast(bytes | None, await self._execute("GET", key))
        return cast(bytes | None, await self._execute("GETEX", key, "EX", ttl))

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

    async def expire(self, key: str, ttl: int) -> bool:
        return bool(await self._execute("EXPIRE", key, ttl))

    async def count(self, pattern: bytes) -> int:
        client = await self._client()
        # SCAN may return a key twice; a set counts it once.
        keys: set[bytes] = set()
        async for key in client.scan_iter(match=pattern, count=1000):
            keys.add(key)
        return len(keys)

    async def ping(self) -> None:
        client = await self._client()
        await client.ping()

    async def close(self) -> None:
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


def public_url(uri: str) -> str:
    """*uri* without user name, password or options: safe to show in errors."""
    parts = urlsplit(uri)
    if parts.scheme == "unix":
        return f"unix://{parts.path}"
    host = parts.hostname or "127.0.0.1"
    if ":" in host:  # IPv6
        host = f"[{host}]"
    return f"{parts.scheme}://{host}:{parts.port or 6379}{parts.path}"


def running_trio() -> bool:
    try:
        return sniffio.current_async_library() == "trio"
    except sniffio.AsyncLibraryNotFoundError:
        return False


def is_glide_client(client: object) -> bool:
    return type(client).__module__.split(".", 1)[0] == "glide"


def from_settings(settings: Settings) -> RedisStore:
    client: Any = settings.raw["SESSION_REDIS"]
    trio = running_trio()
    if client is not None:
        if is_glide_client(client):
            from .glide import GlideDriver

            return RedisStore(GlideDriver(client, owned=False))
        if not isinstance(client, Redis | RedisCluster):
            raise SessionConfigError(
                "SESSION_REDIS must be a redis.asyncio Redis or RedisCluster, a Sentinel "
                f"master_for() client, or a Valkey GLIDE client, not {type(client).__name__}"
            )
        if trio:
            raise SessionConfigError(
                "redis-py clients run on asyncio only: under Trio give SESSION_URI "
                "or a Valkey GLIDE client in SESSION_REDIS"
            )
        return RedisStore(RedisPyDriver(client, owned=False))
    uri = settings.raw["SESSION_URI"] or DEFAULT_URI
    if not isinstance(uri, str) or urlsplit(uri).scheme not in SCHEMES:
        raise SessionConfigError(
            f"SESSION_URI for redis must be a redis://, rediss:// or unix:// URL, not {uri!r}"
        )
    if trio:
        from .glide import driver_from_url

        return RedisStore(driver_from_url(uri, settings.backend_timeout, public_url(uri)))
    made = Redis.from_url(
        uri, max_connections=POOL_SIZE, socket_connect_timeout=settings.backend_timeout
    )
    driver = RedisPyDriver(made, owned=True, address=public_url(uri), max_commands=POOL_SIZE)
    return RedisStore(driver)
