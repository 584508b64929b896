"""The memcached store at memcached's limits: item size and the 32-bit expiry time.

At both limits memcached's own answer loses the session (a value too large is
refused and the record it would replace dropped; a deadline after 2038 is stored
but expires at once), so the store refuses such writes before sending them. The
records are checked over a connection of the test's own, byte for byte.
"""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import Any

import pytest

from quart_session.stores.base import Outcome, Version
from quart_session.stores.memcached import (
    ITEM_OVERHEAD,
    MAX_DEADLINE,
    MAX_PAYLOAD_DEFAULT,
    MAX_RELATIVE_TTL,
    MemcachedStore,
    expiry_token,
)

from ..servers.memcached import MemcachedServer, run_memcached

pytestmark = [pytest.mark.servers, pytest.mark.anyio]


@pytest.fixture(scope="module")
def memcached_512k(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MemcachedServer]:
    with run_memcached(tmp_path_factory.mktemp("mc512k") / "memcached.log", "-I", "512k") as server:
        yield server


@pytest.fixture(scope="module")
def memcached_1k(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MemcachedServer]:
    """The smallest item size memcached accepts (its chunks must be no larger)."""
    log = tmp_path_factory.mktemp("mc1k") / "memcached.log"
    with run_memcached(log, "-I", "1k", "-o", "slab_chunk_max=512") as server:
        yield server


@pytest.fixture(params=["memcached_server", "memcached_512k", "memcached_1k"])
def server(request: pytest.FixtureRequest) -> MemcachedServer:
    """A flushed server: memcached's default item size limit, and smaller ones."""
    server: MemcachedServer = request.getfixturevalue(request.param)
    assert raw_command(server, b"flush_all") == b"OK\r\n"
    return server


@pytest.fixture
async def store(server: MemcachedServer) -> AsyncIterator[MemcachedStore]:
    store = MemcachedStore.connect(server.host, server.port)
    yield store
    await store.close()


# -- raw access over the test's own connection --------------------------------
def raw_command(server: MemcachedServer, line: bytes) -> bytes:
    """The first reply line to *line*, which must be a one-line command."""
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(line + b"\r\n")
        return sock.makefile("rb").readline()


def raw_record(server: MemcachedServer, key: bytes) -> tuple[bytes, int] | None:
    """The value and cas token at *key*, or None."""
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(b"mg %s v c\r\n" % key)
        reply = sock.makefile("rb")
        status, *tokens = reply.readline().split()
        if status == b"EN":
            return None
        assert status == b"VA", status
        value = reply.read(int(tokens[0]) + 2)
        return value[:-2], int(tokens[1][1:])


def remaining_ttl(server: MemcachedServer, key: bytes) -> int:
    status, flag = raw_command(server, b"mg %s t" % key).split()
    assert status == b"HD"
    return int(flag[1:])


def item_size_max(server: MemcachedServer) -> int:
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(b"stats settings\r\n")
        for line in sock.makefile("rb"):
            if line.startswith(b"STAT item_size_max "):
                return int(line.split()[2])
    raise AssertionError("the server reports no item_size_max")


def writes(server: MemcachedServer) -> int:
    """Set and touch commands the server has received (meta ones included)."""
    stats = server.stats()
    return int(stats["cmd_set"]) + int(stats["cmd_touch"])


async def failure(operation: Awaitable[Any]) -> Exception | None:
    """What *operation* raised, or None: the tests check the stored record first,
    so that a write that should have been refused shows what it did."""
    try:
        await operation
    except Exception as error:
        return error
    return None


async def stored(store: MemcachedStore, key: str, payload: bytes, ttl: int = 600) -> Version:
    version = await store.save(key, payload, ttl, None)
    assert not isinstance(version, Outcome)
    return version


# -- item size -----------------------------------------------------------------
async def test_max_payload_is_the_servers_item_size_limit_less_the_item_overhead(
    server: MemcachedServer,
) -> None:
    store = MemcachedStore.connect(server.host, server.port)
    assert store.max_payload == MAX_PAYLOAD_DEFAULT  # not asked yet
    await store.ping()
    assert store.max_payload == item_size_max(server) - ITEM_OVERHEAD
    await store.close()


async def test_the_first_save_learns_the_limit_without_a_ping(
    server: MemcachedServer, store: MemcachedStore
) -> None:
    await stored(store, "session:first", b"x")
    assert store.max_payload == item_size_max(server) - ITEM_OVERHEAD


async def test_the_largest_payload_is_stored_under_the_longest_key(
    server: MemcachedServer, store: MemcachedStore
) -> None:
    key = "k" * 250  # the longest key memcached takes as it is
    await store.ping()
    payload = (bytes(range(256)) * (store.max_payload // 256 + 1))[: store.max_payload]
    version = await stored(store, key, payload)
    assert raw_record(server, key.encode()) == (payload, version)


@pytest.mark.parametrize("expected", ["version", "none"], ids=["save", "create"])
@pytest.mark.parametrize("over", ["one byte", "the item size limit"])
async def test_a_payload_over_the_limit_is_refused_and_the_old_record_kept(
    server: MemcachedServer, store: MemcachedStore, over: str, expected: str
) -> None:
    old = b"\x00old session\r\nEND\r\n" * 10
    version = await stored(store, "session:big", old)
    limit = item_size_max(server)
    size = limit if over == "the item size limit" else limit - ITEM_OVERHEAD + 1
    sets_before = writes(server)

    # Creating over an existing record would conflict; the size is checked first.
    error = await failure(
        store.save("session:big", b"n" * size, 600, version if expected == "version" else None)
    )

    assert raw_record(server, b"session:big") == (old, version)
    assert writes(server) == sets_before, "the payload was sent"
    assert isinstance(error, ValueError), error
    assert f"payload of {size} bytes" in str(error)
    assert f"over the {limit - ITEM_OVERHEAD} bytes" in str(error)
    assert f"item size limit of {limit} bytes" in str(error)


async def test_a_new_record_over_the_limit_is_refused_and_not_written(
    server: MemcachedServer, store: MemcachedStore
) -> None:
    size = item_size_max(server)
    error = await failure(store.save("session:new", b"n" * size, 600, None))
    assert raw_record(server, b"session:new") is None
    assert isinstance(error, ValueError), error


# -- expiry times ----------------------------------------------------------------
@pytest.mark.parametrize("ttl", [MAX_RELATIVE_TTL - 1, MAX_RELATIVE_TTL, MAX_RELATIVE_TTL + 1])
async def test_ttls_either_side_of_30_days_keep_the_record_that_long(
    server: MemcachedServer, store: MemcachedStore, ttl: int
) -> None:
    # memcached reads an exptime over 30 days as a unix time: sent as it is, a
    # ttl of 30 days and a second would be a date in 1970, expired at once.
    version = await stored(store, "session:month", b"kept", ttl)
    assert raw_record(server, b"session:month") == (b"kept", version)
    # memcached's clock ticks once a second, so it may lag ours by a second.
    assert ttl - 10 <= remaining_ttl(server, b"session:month") <= ttl + 2
    assert await store.load("session:month", refresh_ttl=ttl) is not None
    assert ttl - 10 <= remaining_ttl(server, b"session:month") <= ttl + 2
    assert await store.expire("session:month", 60)
    assert 50 <= remaining_ttl(server, b"session:month") <= 62
    assert await store.expire("session:month", ttl)
    assert ttl - 10 <= remaining_ttl(server, b"session:month") <= ttl + 2
    assert raw_record(server, b"session:month") == (b"kept", version)


def test_the_last_deadline_memcached_holds_is_sent_and_a_later_one_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = 1_700_000_000
    monkeypatch.setattr(time, "time", lambda: now + 0.75)
    assert expiry_token(MAX_DEADLINE - now) == MAX_DEADLINE
    with pytest.raises(ValueError, match=rf"unix time {MAX_DEADLINE + 1}, is after .*2038"):
        expiry_token(MAX_DEADLINE - now + 1)


async def test_a_deadline_just_before_2038_is_stored_and_read_back(
    server: MemcachedServer, store: MemcachedStore
) -> None:
    ttl = MAX_DEADLINE - int(time.time()) - 60
    version = await stored(store, "session:2037", b"long", ttl)
    record = await store.load("session:2037", refresh_ttl=ttl)
    assert record is not None and (record.payload, record.version) == (b"long", version)
    assert ttl - 10 <= remaining_ttl(server, b"session:2037") <= ttl + 2
    assert await store.expire("session:2037", 60)
    assert await store.expire("session:2037", ttl)
    assert ttl - 10 <= remaining_ttl(server, b"session:2037") <= ttl + 2


async def test_a_deadline_after_2038_is_refused_without_writing(
    server: MemcachedServer, store: MemcachedStore
) -> None:
    old = b"short-lived"
    version = await stored(store, "session:2038", old)
    remaining = remaining_ttl(server, b"session:2038")
    writes_before = writes(server)
    ttl = MAX_DEADLINE - int(time.time()) + 60

    errors = [
        await failure(store.save("session:2038", b"new", ttl, version)),
        await failure(store.save("session:2038-new", b"new", ttl, None)),
        await failure(store.load("session:2038", refresh_ttl=ttl)),
        await failure(store.expire("session:2038", ttl)),
    ]

    assert raw_record(server, b"session:2038") == (old, version)
    assert raw_record(server, b"session:2038-new") is None
    assert remaining - 2 <= remaining_ttl(server, b"session:2038") <= remaining
    assert writes(server) == writes_before, "a command was sent"
    for error in errors:
        assert isinstance(error, ValueError) and "2038" in str(error), error
