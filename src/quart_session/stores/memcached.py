"""A store in memcached, through aiomcache's connection pool (asyncio only).

Commands use memcached's meta protocol (memcached 1.6+), because the classic
``add``/``cas`` answer only ``STORED`` and learning the new cas token would take
a second, racy ``gets``. With meta commands every operation is one round trip:

* load: ``mg <key> v c`` (plus ``T<ttl>`` for sliding expiry, like ``gats``);
* expire: ``mg <key> T<ttl>`` (like ``touch``);
* create: ``ms <key> <len> c T<ttl> ME`` (mode E is ``add``);
* save: ``ms <key> <len> c T<ttl> C<cas>`` (compare-and-set on the cas token);
* delete: ``md <key>``.

The version of a record is its cas token: memcached changes it on every write
and not when only the TTL is refreshed. Memcached cannot list keys, so ``count`` is not offered.

Two limits of memcached are checked here, before anything is sent, because the
server's own answer to them loses the session: a value over its item size limit
is refused *and the record it would replace is dropped*, and an absolute expiry
after 2038-01-19 is stored but expires at once (or wraps round to a few seconds).
The item size limit is read once with ``stats settings``: by ``ping``, or by the
first save of a store that was never pinged (one more round trip, once).
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
#: The latest deadline (unix seconds) memcached can hold, 2038-01-19T03:14:07Z:
#: it keeps exptimes in 32 bits, and takes a later one for a time long past (or,
#: after 2106, wraps it round to a few seconds from now).
MAX_DEADLINE = 2**31 - 1
#: memcached's item size limit (``-I``) unless it is started with another.
DEFAULT_ITEM_SIZE_MAX = 1024 * 1024
#: Bytes of an item that are not payload, rounded up. memcached 1.6 (64-bit)
#: counts a 48-byte item header, 8 for the cas token, up to 8 for client flags,
#: the key (at most 250) and its NUL, and the value's CRLF: 317 at most. The rest
#: is room for a larger header in other builds; a few hundred bytes of a limit of
#: a mebibyte are not worth an exact figure that may be wrong somewhere.
ITEM_OVERHEAD = 512
#: The largest payload sent to a server that does not report its item size
#: limit (a proxy, say): what memcached's default limit holds.
MAX_PAYLOAD_DEFAULT = DEFAULT_ITEM_SIZE_MAX - ITEM_OVERHEAD
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
    if ttl <= MAX_RELATIVE_TTL:
        return ttl
    deadline = int(time.time()) + ttl
    if deadline > MAX_DEADLINE:
        # memcached would store the record and then lose it (see MAX_DEADLINE).
        raise ValueError(
            f"memcached cannot expire a record {ttl} seconds from now: the deadline,"
            f" unix time {deadline}, is after its last one, {MAX_DEADLINE} (2038-01-19)"
        )
    return deadline


class MemcachedStore(Store):
    name = "memcached"

    def __init__(self, client: aiomcache.FlagClient[Any], *, owns_client: bool = False) -> None:
        self._client = client
        # Commands go straight over aiomcache's pool: it has no meta commands.
        self._pool = client._pool
        self._owns_client = owns_client
        #: The server's ``item_size_max``, asked on ping or before the first save.
        self._item_size_max: int | None = None

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

    @property
    def max_payload(self) -> int:
        """The largest payload ``save`` sends, in bytes: the server's item size limit
        less ITEM_OVERHEAD once ``ping`` or a save has asked the server for it,
        MAX_PAYLOAD_DEFAULT until then."""
        if self._item_size_max is None:
            return MAX_PAYLOAD_DEFAULT
        return self._item_size_max - ITEM_OVERHEAD

    async def ping(self) -> None:
        """One round trip, which also learns the server's item size limit."""
        self._item_size_max = await self._read_item_size_max()

    async def _read_item_size_max(self) -> int:
        """``item_size_max`` from ``stats settings``, or memcached's default when the
        server does not report it."""
        item_size_max = DEFAULT_ITEM_SIZE_MAX
        async with self._connection() as conn:
            conn.writer.write(b"stats settings\r\n")
            await conn.writer.drain()
            while (line := await conn.reader.readline()) != b"END\r\n":
                if not line.endswith(b"\r\n"):
                    raise ConnectionResetError("memcached closed the connection")
                match line.split():
                    case [b"STAT", b"item_size_max", value] if value.isdigit():
                        item_size_max = int(value)
                    case [b"STAT", *_]:
                        pass
                    case [b"ERROR"]:  # a server without the command: nothing follows
                        break
                    case _:
                        raise ClientException("unexpected reply to stats", line.rstrip())
        return item_size_max

    async def _refuse_if_too_large(self, payload: bytes) -> None:
        """Raise ValueError for a payload the server would refuse: memcached answers
        one by dropping the record it was to replace."""
        if self._item_size_max is None:
            self._item_size_max = await self._read_item_size_max()
        if len(payload) > self.max_payload:
            raise ValueError(
                f"a payload of {len(payload)} bytes is over the {self.max_payload} bytes"
                f" memcached at {self.address} can store (its item size limit of"
                f" {self._item_size_max} bytes less {ITEM_OVERHEAD} for key and item header)"
            )

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

    # mg ... T: the touch rides along with the read.
    refresh_is_free = True

    async def load(self, key: str, refresh_ttl: int | None = None) -> Record | None:
        line = b"mg %s v c" % memcached_key(key)
        if refresh_ttl is not None:
            line += b" T%d" % expiry_token(refresh_ttl)
        _, flags, value = await self._command(line, expect=(b"VA", b"EN"))
        if value is None:
            return None
        return Record(value, int(flags[b"c"]), refresh_ttl is not None)

    async def expire(self, key: str, ttl: int) -> bool:
        # A touch: mg without flags answers HD (found) or EN (missing), and T
        # changes the TTL only; the cas token, our version, stays.
        line = b"mg %s T%d" % (memcached_key(key), expiry_token(ttl))
        status, _, _ = await self._command(line, expect=(b"HD", b"EN"))
        return status == b"HD"

    async def save(
        self, key: str, payload: bytes, ttl: int, expected: Version | None
    ) -> SaveResult:
        line = b"ms %s %d c T%d " % (memcached_key(key), len(payload), expiry_token(ttl))
        line += b"ME" if expected is None else b"C%d" % int(expected)
        # After the ttl check, which needs no round trip to refuse a bad ttl.
        await self._refuse_if_too_large(payload)
        status, flags, _ = await self._command(line, payload, expect=(b"HD", b"NS", b"EX", b"NF"))
        if status == b"HD":
            return int(flags[b"c"])
        # NS: add found a record; EX: another cas token; NF: no record to compare with.
        return Outcome.GONE if status == b"NF" else Outcome.CONFLICT

    async def delete(self, key: str) -> None:
        await self._command(b"md %s" % memcached_key(key), expect=(b"HD", b"NF"))

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
