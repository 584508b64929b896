"""The behaviour suite on a real memcached."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiomcache
import pytest

from quart_session.stores.memcached import memcached_key

from ..servers.memcached import MemcachedServer, memcached_command
from ..suites.behaviour import AllRecords, ReadRaw, SessionBehaviour
from ..suites.encryption import EncryptionBehaviour
from ..suites.lifetimes import LifetimeBehaviour, ReadTtl
from ..suites.outage import OutageBehaviour
from ..suites.race import RegenerateRaceBehaviour

pytestmark = pytest.mark.servers


class RawClient:
    @pytest.fixture
    async def client(self, memcached_server: MemcachedServer) -> AsyncIterator[aiomcache.Client]:
        client = aiomcache.Client(memcached_server.host, memcached_server.port)
        await client.flush_all()
        yield client
        await client.close()

    @pytest.fixture
    def read_raw(self, client: aiomcache.Client) -> ReadRaw:
        async def read(key: str) -> bytes | None:
            return await client.get(memcached_key(key))

        return read


class TestMemcachedBehaviour(RawClient, EncryptionBehaviour, SessionBehaviour):
    @pytest.fixture
    def store_config(self, client: aiomcache.Client) -> dict[str, Any]:
        # A client handed in, so the test closes it: the apps here never shut down.
        return {"SESSION_TYPE": "memcached", "SESSION_MEMCACHED": client}

    @pytest.fixture
    def all_records(self) -> AllRecords:
        pytest.skip(
            "memcached cannot list its keys, so no test can read the whole store "
            "(its records are keyed like every other store's: a hash of the id)"
        )


def memcached_ttl(server: MemcachedServer) -> ReadTtl:
    """Seconds memcached will keep the record at a key (``mg <key> t``: whole
    seconds of its own clock), None when it holds none."""

    async def read(key: str) -> float | None:
        command = b"mg %s t\r\n" % memcached_key(key)
        reply = memcached_command(server.host, server.port, command, b"\r\n")
        status, *flags = reply.split()
        if status == b"EN":
            return None
        (ttl,) = (int(flag[1:]) for flag in flags if flag.startswith(b"t"))
        return float("inf") if ttl == -1 else float(ttl)

    return read


class TestMemcachedLifetimes(RawClient, LifetimeBehaviour):
    # memcached's clock ticks once a second: a record given n seconds may go
    # after n - 1, and mg reports whole seconds of that clock.
    COARSE_EXPIRY = True
    TTL_GRAIN = 1.0

    @pytest.fixture
    def store_config(self, client: aiomcache.Client) -> dict[str, Any]:
        return {"SESSION_TYPE": "memcached", "SESSION_MEMCACHED": client}

    @pytest.fixture
    def read_ttl(self, memcached_server: MemcachedServer) -> ReadTtl:
        return memcached_ttl(memcached_server)


class TestMemcachedConcurrency(RawClient, OutageBehaviour):
    @pytest.fixture
    def store_config(self, memcached_server: MemcachedServer) -> dict[str, Any]:
        # Served apps start and shut down, so the store makes and closes its own client.
        return {
            "SESSION_TYPE": "memcached",
            "SESSION_MEMCACHED_HOST": memcached_server.host,
            "SESSION_MEMCACHED_PORT": memcached_server.port,
            "SESSION_BACKEND_TIMEOUT": self.TIMEOUT,
        }

    @pytest.fixture
    def store_control(self, memcached_server: MemcachedServer) -> MemcachedServer:
        return memcached_server


class TestMemcachedRegenerateRace(RawClient, RegenerateRaceBehaviour):
    @pytest.fixture(scope="class")
    @classmethod
    def worker_config(cls, memcached_server: MemcachedServer) -> dict[str, Any]:
        return {
            "SESSION_TYPE": "memcached",
            "SESSION_MEMCACHED_HOST": memcached_server.host,
            "SESSION_MEMCACHED_PORT": memcached_server.port,
        }
