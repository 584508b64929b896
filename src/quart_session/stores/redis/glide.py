"""The Redis store's driver for Valkey GLIDE: runs on asyncio and on Trio.

Imported only when a GLIDE client is handed in or the app runs on Trio.
GLIDE's ``invoke_script`` sends EVALSHA and loads the script itself on NOSCRIPT.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import cast
from urllib.parse import parse_qs, unquote, urlsplit

import anyio
from glide import (
    ClusterScanCursor,
    ExpiryGetEx,
    ExpiryTypeGetEx,
    GlideClient,
    GlideClientConfiguration,
    GlideClusterClient,
    NodeAddress,
    Script,
    ServerCredentials,
)

from ...errors import SessionConfigError
from .protocol import SAVE_SCRIPT

GlideAnyClient = GlideClient | GlideClusterClient


class GlideDriver:
    """A GLIDE client, standalone or cluster; one we make is created on first use
    (creating is async, building the store is not)."""

    def __init__(
        self,
        client: GlideAnyClient | None,
        *,
        owned: bool,
        config: GlideClientConfiguration | None = None,
        address: str | None = None,
    ) -> None:
        self.client = client
        self.owned = owned
        self._config = config
        self._address = address
        self._creating = anyio.Lock()
        self._script = Script(SAVE_SCRIPT)  # type: ignore[no-untyped-call]

    @property
    def address(self) -> str:
        if self._address is not None:
            return self._address
        if self.client is None:
            return "?"
        kind = "cluster " if isinstance(self.client, GlideClusterClient) else ""
        nodes = ", ".join(f"{node.host}:{node.port}" for node in self.client.config.addresses)
        return f"glide {kind}{nodes}"

    async def _client(self) -> GlideAnyClient:
        if self.client is None:
            async with self._creating:
                if self.client is None:
                    assert self._config is not None
                    self.client = await GlideClient.create(self._config)
        return self.client

    async def get(self, key: str, ttl: int | None) -> bytes | None:
        client = await self._client()
        if ttl is None:
            return await client.get(key)
        return await client.getex(key, ExpiryGetEx(ExpiryTypeGetEx.SEC, ttl))

    async def expire(self, key: str, ttl: int) -> bool:
        client = await self._client()
        return await client.expire(key, ttl)

    async def pttl(self, key: str) -> int:
        client = await self._client()
        return await client.pttl(key)

    async def save(self, key: str, args: list[bytes]) -> int:
        client = await self._client()
        status = await client.invoke_script(self._script, keys=[key], args=list(args))
        return int(cast(int, status))

    async def unlink(self, key: str) -> None:
        client = await self._client()
        await client.unlink([key])

    async def getdel(self, key: str) -> bytes | None:
        client = await self._client()
        return await client.getdel(key)

    async def count(self, pattern: bytes) -> int:
        client = await self._client()
        # SCAN may return a key twice; a set counts it once.
        keys: set[bytes] = set()
        if isinstance(client, GlideClusterClient):
            cursor = ClusterScanCursor()  # type: ignore[no-untyped-call]
            while not cursor.is_finished():
                step = await client.scan(cursor, match=pattern, count=1000)
                cursor = cast(ClusterScanCursor, step[0])
                keys.update(cast(list[bytes], step[1]))
            return len(keys)
        position = b"0"
        while True:
            answer = await client.scan(position, match=pattern, count=1000)
            position = cast(bytes, answer[0])
            keys.update(cast(list[bytes], answer[1]))
            if position == b"0":
                return len(keys)

    async def keys(self, pattern: bytes) -> AsyncIterator[bytes]:
        client = await self._client()
        if isinstance(client, GlideClusterClient):
            cursor = ClusterScanCursor()  # type: ignore[no-untyped-call]
            while not cursor.is_finished():
                step = await client.scan(cursor, match=pattern, count=1000)
                cursor = cast(ClusterScanCursor, step[0])
                for key in cast(list[bytes], step[1]):
                    yield key
            return
        position = b"0"
        while True:
            answer = await client.scan(position, match=pattern, count=1000)
            position = cast(bytes, answer[0])
            for key in cast(list[bytes], answer[1]):
                yield key
            if position == b"0":
                return

    async def ping(self) -> None:
        client = await self._client()
        await client.ping()

    async def close(self) -> None:
        if self.owned and self.client is not None:
            client, self.client = self.client, None
            await client.close()


def driver_from_url(uri: str, timeout: float, address: str) -> GlideDriver:
    """A driver that makes a standalone GLIDE client from a redis:// URL."""
    parts = urlsplit(uri)
    options = {name: values[-1] for name, values in parse_qs(parts.query).items()}
    unknown = set(options) - {"db"}
    if unknown:
        raise SessionConfigError(
            f"SESSION_URI options {sorted(unknown)} are not supported under Trio (GLIDE)"
        )
    if parts.scheme == "unix":
        node = NodeAddress(unix_socket_path=unquote(parts.path))
        database = options.get("db", "0")
    else:
        node = NodeAddress(parts.hostname or "127.0.0.1", parts.port or 6379)
        database = parts.path.lstrip("/") or options.get("db", "0")
    credentials = None
    if parts.password is not None or parts.username:
        credentials = ServerCredentials(
            password=unquote(parts.password or ""), username=unquote(parts.username or "") or None
        )
    if not database.isdigit():
        raise SessionConfigError(f"SESSION_URI database must be a number, not {database!r}")
    config = GlideClientConfiguration(
        [node],
        use_tls=parts.scheme == "rediss",
        credentials=credentials,
        database_id=int(database),
        request_timeout=int(timeout * 1000),
    )
    return GlideDriver(None, owned=True, config=config, address=address)
