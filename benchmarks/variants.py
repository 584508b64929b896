"""The variants compared: what each runs, with which Python, and how its store
round trips are counted."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OURS_PYTHON = ROOT / ".venv" / "bin" / "python"
QS3_PYTHON = ROOT / "benchmarks" / ".venv-qs3" / "bin" / "python"
#: What a floor measures: one bare read of a stored session, of either size.
FLOOR_SCENARIOS = ("read", "read-tiny")
#: A fixed encryption key (URL-safe base64 of 32 bytes): it guards nothing.
BENCHMARK_KEY = "YmVuY2htYXJrLWVuY3J5cHRpb24ta2V5LTMyLWJ5dGU"


@dataclass(frozen=True)
class Variant:
    name: str
    label: str
    spec: dict[str, Any]
    python: Path = OURS_PYTHON
    #: Which server counts its round trips: "redis", "memcached", "postgres" or None.
    server: str | None = None
    #: Extra environment of its processes (PYTHONPATH of a baseline checkout).
    env: dict[str, str] = field(default_factory=dict)
    #: The scenarios its views do something in (None: every one). A floor's
    #: other views are no-ops: timing them would only lengthen the run.
    scenarios: tuple[str, ...] | None = None
    #: The git revision whose quart_session it runs (--baseline), None for ours now.
    revision: str | None = None

    def runs(self, scenario: str) -> bool:
        return self.scenarios is None or scenario in self.scenarios


@dataclass(frozen=True)
class Endpoints:
    redis_port: int
    memcached_port: int
    postgres_url: str
    folder: Path

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"


def ours(name: str, label: str, server: str | None = None, **config: Any) -> Variant:
    spec = {"kind": "ours", "config": {"SESSION_KEY_PREFIX": f"{name}:", **config}}
    return Variant(name, label, spec, server=server)


def all_variants(at: Endpoints) -> list[Variant]:
    secret = {"SECRET_KEY": "benchmark secret key"}
    glide = ours("glide", "ours, Redis (GLIDE)", "redis", SESSION_TYPE="redis")
    glide.spec["glide_port"] = at.redis_port
    # Sessions with a lifetime of their own: a read adds an EXPIRE on Redis.
    remember_me = ours(
        "redis-remember-me",
        "ours, Redis (redis-py), session.lifetime = 30 days",
        "redis",
        SESSION_TYPE="redis",
        SESSION_URI=at.redis_url,
    )
    remember_me.spec["session_lifetime"] = 30 * 86400
    return [
        Variant("none", "no session", {"kind": "none"}),
        # A second identical process: its "overhead" is the run's noise.
        Variant("none-again", "no session, 2nd process (noise)", {"kind": "none"}),
        Variant("cookie", "Quart cookie session", {"kind": "cookie", "config": secret}),
        # The least any session layer costs: a session object, Vary when read.
        Variant("minimal", "reference: do-nothing session interface", {"kind": "minimal"}),
        Variant(
            "qs3-redis",
            "Quart-Session 3.0.0, Redis",
            {
                "kind": "qs3",
                "config": {
                    "SESSION_TYPE": "redis",
                    "SESSION_URI": at.redis_url,
                    "SESSION_KEY_PREFIX": "qs3:",
                },
            },
            python=QS3_PYTHON,
            server="redis",
        ),
        ours(
            "redis",
            "ours, Redis (redis-py)",
            "redis",
            SESSION_TYPE="redis",
            SESSION_URI=at.redis_url,
        ),
        # What Quart-Session 3.0 does: reads neither refresh the TTL nor re-send
        # the cookie (a plain GET), so the two compare like for like.
        ours(
            "redis-fixed",
            "ours, Redis (redis-py), no sliding expiry",
            "redis",
            SESSION_TYPE="redis",
            SESSION_URI=at.redis_url,
            SESSION_REFRESH_EACH_REQUEST=False,
        ),
        glide,
        ours(
            "memcached",
            "ours, memcached",
            "memcached",
            SESSION_TYPE="memcached",
            SESSION_MEMCACHED_PORT=at.memcached_port,
        ),
        ours(
            "sqlite",
            "ours, SQLite",
            SESSION_TYPE="sqlalchemy",
            SESSION_SQLALCHEMY_URI=f"sqlite+aiosqlite:///{at.folder / 'sessions.sqlite3'}",
        ),
        ours(
            "postgres",
            "ours, PostgreSQL",
            "postgres",
            SESSION_TYPE="sqlalchemy",
            SESSION_SQLALCHEMY_URI=at.postgres_url,
        ),
        ours(
            "filesystem",
            "ours, filesystem",
            SESSION_TYPE="filesystem",
            SESSION_FILE_DIR=str(at.folder / "sessions"),
        ),
        ours("memory", "ours, memory", SESSION_TYPE="memory"),
        # Encryption at rest: the same stores, every record sealed (AES-256-GCM).
        ours(
            "memory-encrypted",
            "ours, memory, SESSION_ENCRYPTION_KEYS",
            SESSION_TYPE="memory",
            SESSION_ENCRYPTION_KEYS=[BENCHMARK_KEY],
        ),
        # Ids stored as they are (SESSION_HASH_IDS off): what hashing costs.
        ours(
            "redis-raw-ids",
            "ours, Redis (redis-py), SESSION_HASH_IDS off",
            "redis",
            SESSION_TYPE="redis",
            SESSION_URI=at.redis_url,
            SESSION_HASH_IDS=False,
        ),
        remember_me,
        # Sessions indexed by user: reads and writes cost the same, a login more.
        ours(
            "redis-users",
            "ours, Redis (redis-py), SESSION_USER_KEY",
            "redis",
            SESSION_TYPE="redis",
            SESSION_URI=at.redis_url,
            SESSION_USER_KEY="user_id",
        ),
        ours(
            "postgres-users",
            "ours, PostgreSQL, SESSION_USER_KEY",
            "postgres",
            SESSION_TYPE="sqlalchemy",
            SESSION_SQLALCHEMY_URI=at.postgres_url,
            SESSION_USER_KEY="user_id",
        ),
        ours(
            "redis-encrypted",
            "ours, Redis (redis-py), SESSION_ENCRYPTION_KEYS",
            "redis",
            SESSION_TYPE="redis",
            SESSION_URI=at.redis_url,
            SESSION_ENCRYPTION_KEYS=[BENCHMARK_KEY],
        ),
        Variant(
            "floor",
            "floor: bare redis-py GET",
            {"kind": "floor", "redis_url": at.redis_url},
            server="redis",
            scenarios=FLOOR_SCENARIOS,
        ),
        # The SQL floors read a row through the engine our store builds for the
        # same URL: what one SELECT costs there, with no session layer.
        Variant(
            "floor-sqlite",
            "floor: bare SQLite SELECT",
            {"kind": "floor-sql", "url": f"sqlite+aiosqlite:///{at.folder / 'floor.sqlite3'}"},
            scenarios=FLOOR_SCENARIOS,
        ),
        Variant(
            "floor-postgres",
            "floor: bare PostgreSQL SELECT",
            {"kind": "floor-sql", "url": at.postgres_url},
            server="postgres",
            scenarios=FLOOR_SCENARIOS,
        ),
    ]


def at_revision(variant: Variant, revision: str, src: Path) -> Variant:
    """*variant* running the quart_session of an older checkout's *src* folder."""
    spec = json.loads(json.dumps(variant.spec))
    spec["config"]["SESSION_KEY_PREFIX"] = f"{variant.name}@{revision}:"
    return replace(
        variant,
        name=f"{variant.name}@{revision}",
        label=f"{variant.label} @ {revision}",
        spec=spec,
        env={"PYTHONPATH": str(src)},
        revision=revision,
    )
