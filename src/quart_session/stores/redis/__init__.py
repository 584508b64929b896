"""Redis (and Valkey): one server, Sentinel, Cluster; redis-py on asyncio, GLIDE on Trio.

The client comes from ``SESSION_REDIS`` (redis-py ``Redis``, ``RedisCluster``, a
Sentinel ``master_for`` client, or a Valkey GLIDE client), or is made from
``SESSION_URI``: redis-py under asyncio, GLIDE under Trio (redis-py is
asyncio-only). Clients handed in stay open on ``close()``; ours are closed.

``from_settings`` picks the driver; the GLIDE one is imported only when chosen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ...errors import SessionConfigError
from ...runtime import running_trio
from .protocol import (
    DEFAULT_URI,
    SAVE_SCRIPT,
    SCHEMES,
    RedisDriver,
    RedisStore,
    decode,
    encode,
    public_url,
)
from .redis_py import POOL_SIZE, RedisPyDriver, driver_from_url, is_redis_py_client

if TYPE_CHECKING:
    from ...config import Settings

__all__ = [
    "DEFAULT_URI",
    "POOL_SIZE",
    "SAVE_SCRIPT",
    "RedisDriver",
    "RedisPyDriver",
    "RedisStore",
    "decode",
    "encode",
    "from_settings",
    "public_url",
]


def is_glide_client(client: object) -> bool:
    """Told by its class's module, so that glide is imported only for its clients."""
    return type(client).__module__.split(".", 1)[0] == "glide"


def from_settings(settings: Settings) -> RedisStore:
    client = settings.raw["SESSION_REDIS"]
    trio = running_trio()
    if client is not None:
        if is_glide_client(client):
            from .glide import GlideDriver

            return RedisStore(GlideDriver(client, owned=False))
        if not is_redis_py_client(client):
            raise SessionConfigError(
                "SESSION_REDIS must be a redis.asyncio Redis or RedisCluster, a Sentinel "
                f"master_for() client, or a Valkey GLIDE client, not {type(client).__name__}"
            )
        if trio:
            raise SessionConfigError(
                "redis-py clients run on asyncio only: under Trio give SESSION_URI "
                "or a Valkey GLIDE client in SESSION_REDIS"
            )
        return RedisStore(RedisPyDriver(client, owned=False))
    uri = settings.raw["SESSION_URI"] or DEFAULT_URI
    scheme = urlsplit(uri).scheme if isinstance(uri, str) else None
    if scheme not in SCHEMES:
        # Named by its scheme only: the rest of a URL may hold a password.
        given = type(uri).__name__ if scheme is None else f"{scheme or 'no'} scheme"
        raise SessionConfigError(
            f"SESSION_URI for redis must be a redis://, rediss:// or unix:// URL, not {given}"
        )
    if trio:
        from .glide import driver_from_url as glide_driver

        return RedisStore(glide_driver(uri, settings.backend_timeout, public_url(uri)))
    return RedisStore(driver_from_url(uri, settings.backend_timeout, public_url(uri)))
