"""An Amazon DynamoDB store on aioboto3 (asyncio).

One item per session: ``id`` (the key, the table's partition key), ``data``
(binary), ``version`` (a random integer), ``deadline`` (epoch milliseconds)
and ``expiry`` (the same in whole epoch seconds, rounded up: the table's TTL
attribute, which takes seconds). DynamoDB deletes expired items only within a
day or two, so every read and write checks ``deadline``.

Every operation is one request, bar a load that refreshes: compare-and-set
is a ``PutItem`` with a ``ConditionExpression`` that also returns the old item
when it fails (telling a newer version from a deletion), and a load is a
consistent ``GetItem``, which reports the deadline (``Record.expires_at``).
Sliding expiry costs a write: ``expire`` is a conditional ``UpdateItem`` of the
deadline of a live item, and a load asked to refresh adds one. The table
(on-demand billing) and its TTL setting are created on first use if missing;
on AWS that takes seconds, so create the table beforehand or allow for it in
``SESSION_BACKEND_TIMEOUT`` on first start.
Items are limited to 400 KB by DynamoDB.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, suppress
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import aioboto3
import anyio
from botocore.config import Config  # type: ignore[import-untyped]

from ..errors import SessionConfigError
from .base import Outcome, Record, SaveResult, Store, Version

if TYPE_CHECKING:
    from ..config import Settings

Item = dict[str, dict[str, Any]]


def _now() -> dict[str, str]:
    return {"N": str(int(time.time() * 1000))}


def _lifetime(ttl: int) -> dict[str, dict[str, str]]:
    """Values of ``:deadline`` and ``:expiry`` for a record living *ttl* seconds."""
    end = time.time() + ttl
    return {":deadline": {"N": str(int(end * 1000))}, ":expiry": {"N": str(math.ceil(end))}}


def _is_live(item: Item) -> bool:
    return "deadline" in item and int(item["deadline"]["N"]) > time.time() * 1000


def _expires_at(deadline: dict[str, str]) -> float:
    """A ``deadline`` value (epoch milliseconds) in seconds since the epoch."""
    return int(deadline["N"]) / 1000


class DynamoDBStore(Store):
    name = "dynamodb"
    can_count = True
    can_list = True
    needs_purge = True

    def __init__(
        self,
        table: str,
        *,
        client: Any = None,
        session: Any = None,
        endpoint_url: str | None = None,
        region: str | None = None,
        timeout: float = 2.0,
    ) -> None:
        """Use *client* (an open aioboto3 DynamoDB client, left open), or open
        one from *session* (an ``aioboto3.Session``) at *endpoint_url* /
        *region* on first use."""
        self._table = table
        self._client = client
        self._session = session or aioboto3.Session()
        self._endpoint_url = endpoint_url
        self._region = region
        # Fail inside SESSION_BACKEND_TIMEOUT with botocore's reason, one retry at most.
        self._config = Config(
            connect_timeout=timeout * 0.75,
            read_timeout=timeout,
            retries={"mode": "standard", "max_attempts": 2},
        )
        self._owned = AsyncExitStack()
        self._lock = anyio.Lock()
        self._table_ready = False

    @property
    def address(self) -> str:
        if self._client is not None:
            where = self._client.meta.endpoint_url
        else:
            where = self._endpoint_url or f"dynamodb.{self._region or '<default region>'}"
        return f"{where}/{self._table}"

    async def _ready(self) -> Any:
        """The client, opened and the table set up on first use."""
        if self._client is None or not self._table_ready:
            async with self._lock:
                if self._client is None:
                    self._client = await self._owned.enter_async_context(
                        self._session.client(
                            "dynamodb",
                            endpoint_url=self._endpoint_url,
                            region_name=self._region,
                            config=self._config,
                        )
                    )
                if not self._table_ready:
                    await self._set_up_table(self._client)
                    self._table_ready = True
        return self._client

    async def _set_up_table(self, client: Any) -> None:
        table = self._table
        try:
            status = (await client.describe_table(TableName=table))["Table"]["TableStatus"]
        except client.exceptions.ResourceNotFoundException:
            status = "CREATING"
            # ResourceInUse: another process is creating it right now.
            with suppress(client.exceptions.ResourceInUseException):
                await client.create_table(
                    TableName=table,
                    KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                    AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                    BillingMode="PAY_PER_REQUEST",
                )
        if status != "ACTIVE":
            waiter = client.get_waiter("table_exists")
            await waiter.wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
        ttl = await client.describe_time_to_live(TableName=table)
        if ttl["TimeToLiveDescription"]["TimeToLiveStatus"] == "DISABLED":
            await client.update_time_to_live(
                TableName=table,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiry"},
            )

    def _key(self, key: str) -> dict[str, Any]:
        return {"TableName": self._table, "Key": {"id": {"S": key}}}

    async def load(self, key: str, refresh_ttl: int | None = None) -> Record | None:
        client = await self._ready()
        reply = await client.get_item(**self._key(key), ConsistentRead=True)
        item: Item | None = reply.get("Item")
        if item is None or not _is_live(item):
            return None
        record = Record(
            bytes(item["data"]["B"]),
            int(item["version"]["N"]),
            expires_at=_expires_at(item["deadline"]),
        )
        if refresh_ttl is None:
            return record
        lifetime = _lifetime(refresh_ttl)
        if not await self._move_deadline(client, key, lifetime):
            return None  # deleted or expired since the read
        return replace(record, refreshed=True, expires_at=_expires_at(lifetime[":deadline"]))

    async def expire(self, key: str, ttl: int) -> bool:
        return await self._move_deadline(await self._ready(), key, _lifetime(ttl))

    async def _move_deadline(
        self, client: Any, key: str, lifetime: dict[str, dict[str, str]]
    ) -> bool:
        """Give the live record at *key* a new *lifetime* (deadline and TTL
        attribute), nothing else; whether there was one."""
        try:
            await client.update_item(
                **self._key(key),
                UpdateExpression="SET #deadline = :deadline, #expiry = :expiry",
                # A missing item has no deadline, so this also requires it to exist.
                ConditionExpression="#deadline > :now",
                ExpressionAttributeNames={"#deadline": "deadline", "#expiry": "expiry"},
                ExpressionAttributeValues={**lifetime, ":now": _now()},
            )
        except client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    async def save(
        self, key: str, payload: bytes, ttl: int, expected: Version | None
    ) -> SaveResult:
        client = await self._ready()
        version = secrets.randbits(62)
        lifetime = _lifetime(ttl)
        item = {
            "id": {"S": key},
            "data": {"B": payload},
            "version": {"N": str(version)},
            "deadline": lifetime[":deadline"],
            "expiry": lifetime[":expiry"],
        }
        if expected is None:
            # An expired leftover that TTL has not removed yet does not count.
            condition = "attribute_not_exists(#id) OR #deadline <= :now"
            names = {"#id": "id", "#deadline": "deadline"}
            values = {":now": _now()}
        else:
            condition = "#version = :expected AND #deadline > :now"
            names = {"#version": "version", "#deadline": "deadline"}
            values = {":now": _now(), ":expected": {"N": str(expected)}}
        try:
            await client.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except client.exceptions.ConditionalCheckFailedException as failure:
            old: Item | None = failure.response.get("Item")
            if expected is None or (old is not None and _is_live(old)):
                return Outcome.CONFLICT
            return Outcome.GONE
        return version

    async def delete(self, key: str) -> None:
        client = await self._ready()
        await client.delete_item(**self._key(key))

    async def _scan(self, **request: Any) -> AsyncIterator[dict[str, Any]]:
        """Every page of a scan of the table."""
        client = await self._ready()
        async for page in client.get_paginator("scan").paginate(
            TableName=self._table, ConsistentRead=True, **request
        ):
            yield page

    async def purge_expired(self) -> int:
        # DynamoDB's TTL deletes within days; this is for tidy tables sooner.
        client = await self._ready()
        purged = 0
        now = _now()
        async for page in self._scan(
            FilterExpression="#deadline <= :now",
            ProjectionExpression="#id",
            ExpressionAttributeNames={"#id": "id", "#deadline": "deadline"},
            ExpressionAttributeValues={":now": now},
        ):
            for item in page["Items"]:
                try:
                    # Only if still expired: a concurrent save may have revived it.
                    await client.delete_item(
                        TableName=self._table,
                        Key={"id": item["id"]},
                        ConditionExpression="#deadline <= :now",
                        ExpressionAttributeNames={"#deadline": "deadline"},
                        ExpressionAttributeValues={":now": now},
                    )
                    purged += 1
                except client.exceptions.ConditionalCheckFailedException:
                    pass
        return purged

    async def count(self, prefix: str) -> int:
        condition = "#deadline > :now"
        names = {"#deadline": "deadline"}
        values: dict[str, Any] = {":now": _now()}
        if prefix:
            condition += " AND begins_with(#id, :prefix)"
            names["#id"] = "id"
            values[":prefix"] = {"S": prefix}
        total = 0
        async for page in self._scan(
            Select="COUNT",
            FilterExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        ):
            total += int(page["Count"])
        return total

    async def keys(self, prefix: str) -> AsyncIterator[str]:
        condition = "#deadline > :now"
        names = {"#deadline": "deadline", "#id": "id"}
        values: dict[str, Any] = {":now": _now()}
        if prefix:
            condition += " AND begins_with(#id, :prefix)"
            values[":prefix"] = {"S": prefix}
        async for page in self._scan(
            ProjectionExpression="#id",
            FilterExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        ):
            for item in page["Items"]:
                yield item["id"]["S"]

    async def close(self) -> None:
        await self._owned.aclose()


def from_settings(settings: Settings) -> DynamoDBStore:
    raw = settings.raw
    table = raw["SESSION_DYNAMODB_TABLE"]
    ready = raw["SESSION_DYNAMODB"]
    if ready is None:
        return DynamoDBStore(
            table,
            endpoint_url=raw["SESSION_DYNAMODB_ENDPOINT_URL"],
            region=raw["SESSION_DYNAMODB_REGION"],
            timeout=settings.backend_timeout,
        )
    # A resource's client converts Python values itself and would garble ours.
    if hasattr(getattr(ready, "meta", None), "client") or not hasattr(ready, "put_item"):
        raise SessionConfigError(
            "SESSION_DYNAMODB must be an open aioboto3 DynamoDB client (from "
            f"`async with session.client('dynamodb')`, not a resource), not {ready!r}"
        )
    return DynamoDBStore(table, client=ready)
