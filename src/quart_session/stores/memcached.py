"""A store in memcached, through aiomcache's connection pool (asyncio only).

Commands use memcached's meta protocol (memcached 1.6+), because the classic
``add``/``cas`` answer only ``STORED`` and learning the new cas token would take
a second, racy ``gets``. With meta commands every operation is one round trip:

* load: ``mg <key> v c`` (plus ``T<ttl>`` for sliding expiry, like ``gats``);
* create: ``ms <key> <len> c T<ttl> ME`` (mode E is ``add``);
* save: ``ms <key> <len> c T<ttl> C<cas>`` (compare-and-set on the cas token);
* touch: ``mg <key> T<ttl>``; delete: ``md <key>``.

The version of a record is its cas token: memcached changes it on every write
and not on a touch. Memcached cannot list keys, so ``count`` is not offered.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiomcache
from aiomcache import ClientException
from aiomcache.pool import Connection

from ..errors import SessionConfigError
from .base import Outcome, Record, SaveResult, Store, Version

if TYPE_CHECKING:
    from ..config import Settings

#: Longer relative TTLs are read by memcached as absolute unix times.
MAX_RELATIVE_TTL = 60 * 60 * 24 * 30
MAX_KEY_LENGTH = 250
#: Marks hashed keys; keys that start with it are hashed too, so a readable key
#: can never equal the hash of another.
HASH_MARK = "~sha256~"
#: Connections our own client may open; an application needing more passes a client.
POOL_SIZE = 16


def memcached_key(key: str) -> bytes:
    """*key* as memcached accepts it: unchanged when it is at most 250 printable
    ASCII characters, otherwise a hash of it."""
    if (
        len(key) <= MAX_KEY_LENGTH
        and key.isascii()
        and key.isprintable()
        and " " not in key
        and not key.startswith(HASH_MARK)
    ):
        return key.encode()
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
    return (HASH_MARK + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()).encode()


def expiry_token(ttl: int) -> int:
    """The exptime memcached needs for *ttl* seconds from now."""
    if ttl < 1:
        raise ValueError(f"a ttl must be at least one second, not {ttl}")  # 0 means forever
    return int(time.time()) + ttl if ttl > MAX_RELATIVE_TTL else ttl


class MemcachedStore(Store):
    name = "memcached"

    def __init__(self, client: aiomcache.FlagClient[Any], *, owns_client: bool = False) -> None:
        self._client = client
        # Commands go straight over aiomcache's pool: it has no meta commands.
        self._pool = client._pool
        self._owns_client = owns_client

    @classmethod
    def connect(cls, host: str, port: int) -> MemcachedStore:
        """A store with its own client; ``close`` closes it."""
        # aiomcache's pool grows only up to its minimum size: below that every
        # command would share one connection, and requests would run in turn.
        client = aiomcache.Client(host, port, pool_size=POOL_SIZE, pool_minsize=POOL_SIZE)
        return cls(client, owns_client=True)

    @property
    def address(self) -> str:
        return f"{self._pool._host}:{self._pool._port}"

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Connection]:
        conn = await self._pool.acquire()
        try:
            yield conn
        except BaseException:
            # A command cut short (error, timeout, cancellation) may leave its reply
            # on the wire, where the next command would read it as its own: the
            # pool drops connections whose reader holds an exception.
            conn.reader.set_exception(ConnectionAbortedError("memcached command interrupted"))
            raise
        finally:
            self._pool.release(conn)

    async def _command(
        self, line: bytes, data: bytes | None = None, *, expect: tuple[bytes, ...]
    ) -> tuple[bytes, dict[bytes, bytes], bytes | None]:
        """Send one meta command; return its status (one of *expect*), flags and value.

        Any other reply (an error, or a reply left over by someone else's interrupted
        command on a shared client) drops the connection: what follows it is unknown.
        """
        request = line + b"\r\n" if data is None else b"%s\r\n%s\r\n" % (line, data)
        async with self._connection() as conn:
            conn.writer.write(request)
            await conn.writer.drain()
            reply = await conn.reader.readline()
            if not reply.endswith(b"\r\n"):
                raise ConnectionResetError("memcached closed the connection")
            status, *tokens = reply.split() or [b""]
            if status not in expect:
                raise ClientException(f"unexpected reply to {line[:2].decode()}", reply.rstrip())
            value = None
            if status == b"VA":
                size = int(tokens.pop(0))
                value = (await conn.reader.readexactly(size + 2))[:-2]
        return status, {token[:1]: token[1:] for token in tokens}, value

    async def load(self, key: str, refresh_ttl: int | None = None) -> Record | None:
        line = b"mg %s v c" % memcached_key(key)
        if refresh_ttl is not None:
            line += b" T%d" % expiry_token(refresh_ttl)
        _, flags, value = await self._command(line, expect=(b"VA", b"EN"))
        if value is None:
            return None
        return Record(value, int(flags[b"c"]))

    async def save(
        self, key: str, payload: bytes, ttl: int, expected: Version | None
    ) -> SaveResult:
        line = b"ms %s %d c T%d " % (memcached_key(key), len(payload), expiry_token(ttl))
        line += b"ME" if expected is None else b"C%d" % int(expected)
        status, flags, _ = await self._command(line, payload, expect=(b"HD", b"NS", b"EX", b"NF"))
        if status == b"HD":
            return int(flags[b"c"])
        # NS: add found a record; EX: another cas token; NF: no record to compare with.
        return Outcome.GONE if status == b"NF" else Outcome.CONFLICT

    async def delete(self, key: str) -> None:
        await self._command(b"md %s" % memcached_key(key), expect=(b"HD", b"NF"))

    async def touch(self, key: str, ttl: int) -> bool:
        line = b"mg %s T%d" % (memcached_key(key), expiry_token(ttl))
        status, _, _ = await self._command(line, expect=(b"HD", b"EN"))
        return status == b"HD"

    async def close(self) -> None:
        if self._owns_client:
            await self._client.close()


def _host_and_port(uri: str) -> tuple[str, int]:
    """``host:port``, ``[v6]:port`` or ``memcached://host:port`` (port optional)."""
    parts = urlsplit(uri if "://" in uri else "//" + uri)
    try:
        port = parts.port or 11211
    except ValueError:
        port = None
    if not parts.hostname or port is None or parts.scheme not in ("", "memcached"):
        raise SessionConfigError(f"SESSION_URI {uri!r} is not a memcached host:port")
    return parts.hostname, port


def from_settings(settings: Settings) -> MemcachedStore:
    raw = settings.raw
    client = raw["SESSION_MEMCACHED"]
    if client is not None:
        if not isinstance(client, aiomcache.FlagClient):
            raise SessionConfigError(
                f"SESSION_MEMCACHED must be an aiomcache client, not {type(client).__name__}"
            )
        return MemcachedStore(client)
    if raw["SESSION_URI"] is not None:
        host, port = _host_and_port(str(raw["SESSION_URI"]))
    else:
        host, port = raw["SESSION_MEMCACHED_HOST"], raw["SESSION_MEMCACHED_PORT"]
        if not isinstance(host, str) or not isinstance(port, int) or isinstance(port, bool):
            raise SessionConfigError(
                "SESSION_MEMCACHED_HOST must be a str and SESSION_MEMCACHED_PORT an int"
            )
    return MemcachedStore.connect(host, port)
