"""Commands on redis-py connections this driver keeps, past the client's pool.

``Redis.execute_command`` takes a connection from the pool and gives it back
on every command: a lock, two awaited metrics calls and a check for unread
data, then the retry wrapper: ~25 µs of a 75 µs GET on this machine. A
session store sends one command per request, each on its own connection, so
the lane keeps the connections it got from the pool while they are idle and
sends on them directly, with the same redis-py ``Connection`` doing the
writing, reading and parsing (and reconnecting, and Sentinel's master lookup).

What the pool's checkout did that matters here is kept: a connection that
failed or was cancelled mid-command is disconnected by redis-py itself (so no
reply is ever left unread on it), and reconnects when next used; an idle
connection the server closed meanwhile (restart, ``timeout``) is retried once
on a new socket, as redis-py's retry would.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, TypeGuard

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.sentinel import SentinelConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError


def can_use_lane(client: object) -> TypeGuard[Redis]:
    """Whether *client* takes a connection from its pool per command: a plain
    ``Redis`` (one server, or a Sentinel master), not a cluster client (which
    routes each command itself) nor one pinned to a single connection."""
    return isinstance(client, Redis) and not client.single_connection_client


class ConnectionLane:
    """Sends commands of *client* on connections kept out of its pool.

    It holds at most the pool's ``max_connections``: past them a command waits
    for one to be free (the store call's own timeout still applies) instead of
    failing at once as the pool would, which turned a burst of requests into
    503s from a healthy store.
    """

    def __init__(self, client: Redis) -> None:
        self.pool = client.connection_pool
        self._sentinel = isinstance(self.pool, SentinelConnectionPool)
        #: Connections checked out of the pool, connected or not, idle now.
        self._idle: list[AbstractConnection] = []
        #: Connections checked out of the pool, idle or in use.
        self._held = 0
        self._limit: int = self.pool.max_connections
        #: Commands waiting for a connection, first come first served.
        self._waiting: deque[asyncio.Future[AbstractConnection]] = deque()

    async def execute(self, *args: Any) -> Any:
        """One command and its reply (bytes, int, ... as redis-py parses it;
        an error reply raises redis-py's ResponseError subclass)."""
        if self._idle:
            connection, reused = self._idle.pop(), True
        elif self._held < self._limit:
            connection, reused = await self._check_out(), False
        else:
            connection, reused = await self._wait(), True
        try:
            return await self._send(connection, args)
        except RedisConnectionError:
            if not reused:
                raise
            # Idle, it may have been closed by the server: redis-py has
            # disconnected it, and sending reconnects.
            return await self._send(connection, args)
        except ResponseError as error:
            if self._sentinel and str(error).startswith("NOREPLICAS"):
                # A master whose replica left, maybe promoted by a failover:
                # Sentinel demotes it only ~10 s later. Reconnecting asks the
                # Sentinel for the master again (redis-py does so on READONLY,
                # not on this), so the next command goes to the new one.
                await connection.disconnect()
            raise
        finally:
            # Whatever happened, the connection is either ready for the next
            # command or disconnected (redis-py's own error handling).
            self._hand_on(connection)

    async def _check_out(self) -> AbstractConnection:
        self._held += 1
        try:
            return await self.pool.get_connection()  # type: ignore[no-untyped-call,no-any-return]
        except BaseException:
            self._held -= 1
            raise

    async def _wait(self) -> AbstractConnection:
        waiter: asyncio.Future[AbstractConnection] = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._hand_on(waiter.result())  # handed one just as we were cancelled
            raise

    def _hand_on(self, connection: AbstractConnection) -> None:
        """To the command waiting longest, else back to the idle ones."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        self._idle.append(connection)

    @staticmethod
    async def _send(connection: AbstractConnection, args: tuple[Any, ...]) -> Any:
        if not connection.is_connected:
            # connect(), as the pool's checkout does: a Sentinel connection asks
            # the Sentinels for the master there (sending would reconnect to
            # the address it last had, the old master after a failover).
            await connection.connect()  # type: ignore[no-untyped-call]
        await connection.send_packed_command(connection.pack_command(*args))
        return await connection.read_response()

    async def close(self) -> None:
        """Give the idle connections back to the pool."""
        idle, self._idle = self._idle, []
        self._held -= len(idle)
        for connection in idle:
            await self.pool.release(connection)
