"""What every Redis driver shares: the record format, the save script, the store.

A record is ONE string value: a 20-byte header ``qs4:<16 hex digits>`` holding
its version, then the payload. One key per record keeps every command on one
cluster slot, and one value lets a read with sliding expiry be a single
``GETEX``. A save is a single ``EVALSHA`` of a Lua script that compares the
version and writes payload and TTL atomically. A value without the header
(Quart-Session 3.0 stored bare payloads) loads with the version ``""``.

``RedisStore`` speaks to the server through a ``RedisDriver``: one for redis-py
(``redis_py``), one for Valkey GLIDE (``glide``). Neither imports the other.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from typing import Protocol
from urllib.parse import urlsplit

from ..base import Outcome, Record, SaveResult, Store, Version

DEFAULT_URI = "redis://127.0.0.1:6379"
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

    async def expire(self, key: str, ttl: int) -> bool:
        """EXPIRE: whether *key* exists (and now has *ttl* seconds to live)."""

    async def pttl(self, key: str) -> int:
        """PTTL: milliseconds *key* has left (negative: absent, or no expiry)."""

    async def save(self, key: str, args: list[bytes]) -> int:
        """Run SAVE_SCRIPT on *key* with *args*; returns its status."""

    async def unlink(self, key: str) -> None: ...

    async def getdel(self, key: str) -> bytes | None:
        """GETDEL: the value, removed in the same command."""

    async def count(self, pattern: bytes) -> int:
        """How many keys match the SCAN *pattern* (on every cluster primary)."""

    def keys(self, pattern: bytes) -> AsyncIterator[bytes]:
        """The keys matching the SCAN *pattern* (on every cluster primary)."""

    async def ping(self) -> None: ...

    async def close(self) -> None:
        """Close the client if the store made it."""


def encode(version: str, payload: bytes) -> bytes:
    return MARKER + version.encode("ascii") + payload


def decode(value: bytes, refreshed: bool = False) -> Record:
    if value.startswith(MARKER) and len(value) >= HEADER_LENGTH:
        version = value[len(MARKER) : HEADER_LENGTH]
        # A version no save wrote (damaged bytes) makes it no header: the value
        # then loads like a bare one, fails to decode as a session and gives a
        # fresh session, where raising would answer 503 until it expired.
        if version.isascii():
            return Record(value[HEADER_LENGTH:], version.decode("ascii"), refreshed)
    return Record(value, "", refreshed)


def glob_escape(prefix: str) -> bytes:
    """*prefix* as a SCAN MATCH pattern that matches only itself."""
    escaped = bytearray()
    for byte in prefix.encode():
        if byte in b"*?[]\\":
            escaped.append(ord("\\"))
        escaped.append(byte)
    return bytes(escaped)


def public_url(uri: str) -> str:
    """*uri* without user name, password or options: safe to show in errors."""
    parts = urlsplit(uri)
    if parts.scheme == "unix":
        return f"unix://{parts.path}"
    host = parts.hostname or "127.0.0.1"
    if ":" in host:  # IPv6
        host = f"[{host}]"
    return f"{parts.scheme}://{host}:{parts.port or 6379}{parts.path}"


class RedisStore(Store):
    name = "redis"
    can_take = True
    can_count = True
    can_list = True
    refresh_is_free = True  # GETEX: the read and the refresh are one command

    def __init__(self, driver: RedisDriver) -> None:
        self.driver = driver

    @property
    def address(self) -> str:
        return self.driver.address

    async def load(self, key: str, refresh_ttl: int | None = None) -> Record | None:
        value = await self.driver.get(key, refresh_ttl)
        return None if value is None else decode(value, refresh_ttl is not None)

    async def expire(self, key: str, ttl: int) -> bool:
        return await self.driver.expire(key, ttl)

    async def expires_at(self, key: str) -> float | None:
        left = await self.driver.pttl(key)
        return None if left < 0 else time.time() + left / 1000

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

    async def count(self, prefix: str) -> int:
        return await self.driver.count(glob_escape(prefix) + b"*")

    async def keys(self, prefix: str) -> AsyncIterator[str]:
        async for key in self.driver.keys(glob_escape(prefix) + b"*"):
            yield key.decode("utf-8", "replace")

    async def ping(self) -> None:
        await self.driver.ping()

    async def close(self) -> None:
        await self.driver.close()
