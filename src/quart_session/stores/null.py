"""A store that keeps nothing: sessions last one request."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .base import Outcome, Record, SaveResult, Store, Version

if TYPE_CHECKING:
    from ..config import Settings

logger = logging.getLogger("quart_session")


class NullStore(Store):
    name = "null"
    can_count = True

    def __init__(self) -> None:
        logger.warning("SESSION_TYPE is 'null': sessions are never stored and last one request")

    async def load(self, key: str, refresh_ttl: int | None = None) -> Record | None:
        return None

    async def expire(self, key: str, ttl: int) -> bool:
        return False

    async def save(
        self, key: str, payload: bytes, ttl: int, expected: Version | None
    ) -> SaveResult:
        return Outcome.GONE if expected is not None else 0

    async def delete(self, key: str) -> None:
        return None

    async def count(self, prefix: str) -> int:
        return 0


def from_settings(settings: Settings) -> NullStore:
    return NullStore()
