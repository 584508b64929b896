"""Fuzzing stored payloads: a record planted in the store under a real session's
key, then a request with that session's cookie. Random bytes, truncated and
bit-flipped records, valid JSON of the wrong types, records of the other
serializer, markers; with SESSION_ENCRYPTION_KEYS, records with a bad tag,
sealed under another key or for another record. On the memory and filesystem
stores and a real Redis, also below the store's own format (the bytes in Redis,
the file on disk)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from quart_session import records
from quart_session.crypto import Keyring, parse_keys
from quart_session.serializers import MsgpackSerializer, Serializer, resolve_serializer

from ..servers.redis import Standalone
from .harness import Fuzzed, RealSession
from .strategies import Damage, damage, json_keys, json_values

FUZZ = settings.get_profile("quart-session-fuzz")
KEY = secrets.token_urlsafe(32)
OTHER_KEY = secrets.token_urlsafe(32)
#: Seconds a planted record lives: longer than any run.
PLANTED_TTL = 3600
PREFIX = "fuzz:"


@dataclass(frozen=True)
class Case:
    store: str
    serializer: str
    encrypted: bool

    @property
    def id(self) -> str:
        return f"{self.store}-{self.serializer}" + ("-encrypted" if self.encrypted else "")


CASES = [
    Case("memory", "json", False),
    Case("memory", "msgpack", False),
    Case("memory", "json", True),
    Case("filesystem", "json", False),
    Case("filesystem", "msgpack", True),
    Case("redis", "json", False),
    Case("redis", "msgpack", True),
]

#: Writes bytes exactly as the store keeps them under a store key (None: the
#: store has no format of its own below its payloads).
Native = Callable[[str, bytes], None]
ReadNative = Callable[[str], bytes]


@dataclass
class Target:
    fuzzed: Fuzzed
    real: RealSession
    other_serializer: Serializer
    keyring: Keyring | None
    native: tuple[ReadNative, Native] | None


def redis_native(port: int) -> tuple[ReadNative, Native]:
    client = redis.Redis(port=port, protocol=2)

    def read(key: str) -> bytes:
        value = client.get(key)
        return value if isinstance(value, bytes) else b""

    def write(key: str, value: bytes) -> None:
        client.set(key, value, ex=PLANTED_TTL)

    return read, write


def file_native(folder: Path) -> tuple[ReadNative, Native]:
    def path(key: str) -> Path:
        return folder / hashlib.sha256(key.encode()).hexdigest()

    def read(key: str) -> bytes:
        return path(key).read_bytes()

    def write(key: str, value: bytes) -> None:
        target = path(key)
        target.unlink(missing_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(value)
        deadline = time.time() + PLANTED_TTL  # the store keeps the deadline as the mtime
        os.utime(target, (deadline, deadline))

    return read, write


@pytest.fixture(scope="module", params=CASES, ids=[case.id for case in CASES])
def target(
    request: pytest.FixtureRequest,
    runner: asyncio.Runner,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Target]:
    case: Case = request.param
    tmp = tmp_path_factory.mktemp(case.id)
    config: dict[str, Any] = {
        "SESSION_TYPE": case.store,
        "SESSION_SERIALIZER": case.serializer,
        "SESSION_KEY_PREFIX": PREFIX,
    }
    native = None
    if case.store == "filesystem":
        config["SESSION_FILE_DIR"] = str(tmp / "sessions")
        native = file_native(tmp / "sessions")
    if case.store == "redis":
        server: Standalone = request.getfixturevalue("redis_standalone")
        config["SESSION_URI"] = server.url
        native = redis_native(server.port)
    if case.encrypted:
        config["SESSION_ENCRYPTION_KEYS"] = [KEY]
    fuzzed = Fuzzed(config, tmp / "instance")
    other = "json" if case.serializer == "msgpack" else "msgpack"
    keyring = Keyring(parse_keys([KEY])) if case.encrypted else None
    yield Target(fuzzed, RealSession(fuzzed), resolve_serializer(other), keyring, native)
    runner.run(fuzzed.close())


def metadata() -> st.SearchStrategy[object]:
    """An envelope's metadata, each field of any JSON type (or the right one)."""
    field = st.one_of(json_values(finite=False), st.floats(0, 2e9), st.integers(-(2**63), 2**63))
    names = st.sampled_from(["p", "a", "c", "l", "o", "t"])
    return st.one_of(st.dictionaries(names, field, max_size=6), json_values(finite=False))


def sessions() -> st.SearchStrategy[dict[str, object]]:
    """What a serializer may be handed back: data of any JSON types with metadata."""
    data = st.dictionaries(json_keys(), json_values(finite=False), max_size=5)
    return st.tuples(data, metadata()).map(lambda parts: {**parts[0], records.META_KEY: parts[1]})


#: A planted payload, made from the genuine one (bytes) once it is known.
Plant = Callable[[bytes], bytes]


def plaintexts(other: Serializer) -> st.SearchStrategy[Plant]:
    """A record's payload before encryption: the genuine one damaged, JSON of
    the wrong types, the other serializer's record, a marker, random bytes."""
    msgpack = MsgpackSerializer()
    fixed = st.one_of(
        st.one_of(sessions(), json_values(finite=False)).map(lambda v: json.dumps(v).encode()),
        sessions().map(lambda value: _dumps(other, value)),
        json_values().map(lambda value: _dumps(msgpack, value)),
        st.binary(max_size=60).map(lambda tail: records.PREFIX + tail),
        st.text(max_size=60).map(records.moved),
    )
    return st.one_of(damage(), fixed.map(Planted))


@dataclass(frozen=True)
class Planted:
    """A payload that does not depend on the genuine one."""

    payload: bytes

    def __call__(self, genuine: bytes) -> bytes:
        return self.payload


def _dumps(serializer: Serializer, value: object) -> bytes:
    dumped = serializer.dumps(value)
    return dumped.encode() if isinstance(dumped, str) else dumped


@dataclass(frozen=True)
class Sealing:
    """How an encrypted store holds a planted payload: sealed right, damaged
    (a bad tag, or truncated), under another key, for another record, or not
    sealed at all."""

    kind: str
    damage: Damage | None = None

    def seal(self, keyring: Keyring, key: str, plaintext: bytes) -> bytes:
        if self.kind == "plain":
            return plaintext
        if self.kind == "stranger":
            return Keyring(parse_keys([OTHER_KEY])).seal(key, plaintext)
        if self.kind == "other record":
            return keyring.seal(key + "x", plaintext)
        good = keyring.seal(key, plaintext)
        return good if self.damage is None else self.damage(good)


def sealings() -> st.SearchStrategy[Sealing]:
    return st.one_of(
        st.builds(Sealing, st.sampled_from(["right", "plain", "stranger", "other record"])),
        st.builds(Sealing, st.just("damaged"), damage()),
    )


@FUZZ
@given(data=st.data(), path=st.sampled_from(["/read", "/write", "/login", "/logout"]))
def test_any_stored_record_gets_a_clean_answer(
    target: Target, runner: asyncio.Runner, data: st.DataObject, path: str
) -> None:
    fuzzed = target.fuzzed

    async def case() -> None:
        cookie = await target.real.ensure()
        sid = target.real.sid
        assert sid is not None
        key = fuzzed.engine.key_for(sid)
        native = target.native
        if native is not None and data.draw(st.booleans(), label="below the store's format"):
            spoil = data.draw(damage(), label="native bytes")
            native[1](key, spoil(native[0](key)))
        else:
            genuine = await fuzzed.spy.inner.load(key)  # opened, if sealed
            assert genuine is not None
            plant = data.draw(plaintexts(target.other_serializer), label="payload")
            stored = plant(genuine.payload)
            if target.keyring is not None:
                sealing = data.draw(sealings(), label="sealed")
                stored = sealing.seal(target.keyring, key, stored)
            raw = fuzzed.raw_store
            await raw.delete(key)
            await raw.save(key, stored, PLANTED_TTL, None)
        fuzzed.spy.calls.clear()
        headers = fuzzed.cookie_headers(cookie)
        presented = fuzzed.presented_cookies(headers)
        response = await fuzzed.send(path, headers)
        await fuzzed.check(response, presented, live=presented.valid)

    runner.run(case())
