"""A MongoDB store on PyMongo's native asyncio client (``AsyncMongoClient``).

One document per session::

    {"_id": <key>, "data": <binary payload>, "version": <int>, "expiry": <date>}

A TTL index on ``expiry`` lets MongoDB delete expired sessions itself, but its
monitor runs only once a minute, so every read and write also filters on the
deadline.

A load reads the deadline with the record (``Record.expires_at``: the engine
decides from it whether a refresh is due); ``expire`` and a refreshing load
move it with an update of that field alone.

The deadline is a top-level date, as MongoDB users expect and TTL indexes are
usually shown, although nx-27017, the MongoDB stand-in the tests run against,
gives back a date that ``$set`` wrote into an existing document as text. Its
filters (find, findAndModify, update, delete) and its TTL emulation still
compare such a deadline correctly; only its ``count_documents`` skips the
document. Loads read such a text back as the UTC date it is; otherwise the
tests work around the stand-in, not this format: see
``tests/servers/mongodb.py::stored_date`` and the expected failure of
``count`` in ``tests/stores/test_store_mongodb.py``.

Versions are random 62-bit integers, so a stale writer can never match a
session that was deleted and created again under the same key.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bson.codec_options import CodecOptions
from pymongo import AsyncMongoClient
from pymongo.errors import DuplicateKeyError, ServerSelectionTimeoutError

from ..errors import SessionConfigError
from .base import Outcome, Record, SaveResult, Store, Version

if TYPE_CHECKING:
    from pymongo.asynchronous.collection import AsyncCollection

    from ..config import Settings

Document = dict[str, Any]

_DEADLINE = "expiry"
_RECORD = {"_id": 0, "data": 1, "version": 1, _DEADLINE: 1}
#: Dates read back are aware and in UTC whatever the client's codec options
#: (naive datetimes, DatetimeMS...): only the store's own documents use these.
_CODEC: CodecOptions[Document] = CodecOptions(tz_aware=True, tzinfo=UTC)


def _now() -> datetime:
    return datetime.now(UTC)


def _deadline(ttl: int) -> datetime:
    return _now() + timedelta(seconds=ttl)


def _live() -> Document:
    return {"$gt": _now()}


def _epoch(deadline: datetime | str) -> float:
    """A deadline read back, in seconds since the epoch: a date, or the text
    nx-27017 gives back for a date ``$set`` wrote (UTC, without an offset)."""
    if isinstance(deadline, str):
        deadline = datetime.fromisoformat(deadline).replace(tzinfo=UTC)
    return deadline.timestamp()


class MongoDBStore(Store):
    name = "mongodb"
    can_count = True
    can_list = True
    needs_purge = True

    def __init__(
        self,
        client: AsyncMongoClient[Document],
        database: str,
        collection: str,
        *,
        owns_client: bool = False,
    ) -> None:
        self._client = client
        self._owns_client = owns_client
        self._sessions: AsyncCollection[Document] = client[database].get_collection(
            collection, codec_options=_CODEC
        )
        self._indexed = False

    @property
    def address(self) -> str:
        # Seeds only: the URL's credentials never reach this description.
        hosts = ",".join(f"{host}:{port}" for host, port in self._seeds())
        return f"{hosts or 'mongodb'}/{self._sessions.full_name}"

    def _seeds(self) -> list[tuple[str, int | None]]:
        return list(self._client.topology_description.server_descriptions())

    async def _collection(self) -> AsyncCollection[Document]:
        """The sessions collection, its TTL index created on first use."""
        if not self._indexed:
            # create_index is idempotent, so a race of first calls is harmless.
            await self._sessions.create_index(_DEADLINE, expireAfterSeconds=0)
            self._indexed = True
        return self._sessions

    async def load(self, key: str, refresh_ttl: int | None = None) -> Record | None:
        sessions = await self._collection()
        found = await sessions.find_one({"_id": key, _DEADLINE: _live()}, _RECORD)
        if found is None:
            return None
        record = Record(
            bytes(found["data"]), int(found["version"]), expires_at=_epoch(found[_DEADLINE])
        )
        if refresh_ttl is None:
            return record
        deadline = _deadline(refresh_ttl)
        if not await self._move_deadline(sessions, key, deadline):
            return None  # deleted or expired since the read
        return replace(record, refreshed=True, expires_at=deadline.timestamp())

    async def expire(self, key: str, ttl: int) -> bool:
        return await self._move_deadline(await self._collection(), key, _deadline(ttl))

    @staticmethod
    async def _move_deadline(
        sessions: AsyncCollection[Document], key: str, deadline: datetime
    ) -> bool:
        """Give the live record at *key* a new deadline, nothing else;
        whether there was one."""
        moved = await sessions.update_one(
            {"_id": key, _DEADLINE: _live()}, {"$set": {_DEADLINE: deadline}}
        )
        return moved.matched_count == 1

    async def save(
        self, key: str, payload: bytes, ttl: int, expected: Version | None
    ) -> SaveResult:
        sessions = await self._collection()
        version = secrets.randbits(62)
        fields = {"data": payload, "version": version, _DEADLINE: _deadline(ttl)}
        if expected is None:
            # An upsert that only matches an expired leftover: a live session
            # with this _id makes the insert fail on the unique _id index.
            try:
                await sessions.update_one(
                    {"_id": key, _DEADLINE: {"$lte": _now()}}, {"$set": fields}, upsert=True
                )
            except DuplicateKeyError:
                return Outcome.CONFLICT
            return version
        written = await sessions.update_one(
            {"_id": key, "version": expected, _DEADLINE: _live()}, {"$set": fields}
        )
        if written.matched_count:
            return version
        # Failures only: a second look tells a newer version from a deletion.
        still_there = await sessions.find_one({"_id": key, _DEADLINE: _live()}, {"_id": 1})
        return Outcome.GONE if still_there is None else Outcome.CONFLICT

    async def delete(self, key: str) -> None:
        sessions = await self._collection()
        await sessions.delete_one({"_id": key})

    async def purge_expired(self) -> int:
        # The TTL monitor gets there too, within a minute or so.
        sessions = await self._collection()
        purged = await sessions.delete_many({_DEADLINE: {"$lte": _now()}})
        return purged.deleted_count

    async def count(self, prefix: str) -> int:
        sessions = await self._collection()
        query: Document = {_DEADLINE: _live()}
        if prefix:
            query["_id"] = {"$regex": "^" + re.escape(prefix)}
        return await sessions.count_documents(query)

    async def keys(self, prefix: str) -> AsyncIterator[str]:
        """Keys starting with *prefix*, expired ones the TTL monitor has not
        removed yet included (no filter on the deadline: nx-27017 fails it on
        a deadline written by ``$set``, and a load finds nothing there anyway)."""
        sessions = await self._collection()
        query: Document = {}
        if prefix:
            query["_id"] = {"$regex": "^" + re.escape(prefix)}
        found = sessions.find(query, {"_id": 1})
        try:
            async for document in found:
                yield document["_id"]
        finally:  # also when the caller stops early: the server keeps open cursors
            await found.close()

    async def ping(self) -> None:
        try:
            await self._client.admin.command("ping")
        except ServerSelectionTimeoutError as error:
            # The driver appends its whole topology description: keep the reason.
            raise ConnectionError(str(error).partition(", Timeout: ")[0]) from error
        await self._collection()

    async def close(self) -> None:
        if self._owns_client:
            await self._client.close()


def from_settings(settings: Settings) -> MongoDBStore:
    raw = settings.raw
    database, collection = raw["SESSION_MONGODB_DB"], raw["SESSION_MONGODB_COLLECTION"]
    client = raw["SESSION_MONGODB"]
    if client is not None:
        if not isinstance(client, AsyncMongoClient):
            raise SessionConfigError(
                "SESSION_MONGODB must be a pymongo AsyncMongoClient (Motor and the "
                f"synchronous MongoClient are not supported), not {client!r}"
            )
        return MongoDBStore(client, database, collection)
    uri = raw["SESSION_MONGODB_URI"] or raw["SESSION_URI"] or "mongodb://127.0.0.1:27017"
    # Fail inside SESSION_BACKEND_TIMEOUT with the driver's reason (refused,
    # unknown host...) rather than after PyMongo's default 30 s.
    timeout_ms = int(settings.backend_timeout * 750)
    return MongoDBStore(
        AsyncMongoClient(uri, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms),
        database,
        collection,
        owns_client=True,
    )
