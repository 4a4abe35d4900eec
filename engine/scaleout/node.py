"""What every scaled-out process opens: the Redis client and the PostgreSQL pool."""
from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from redis.asyncio import Redis

from engine.artifacts import StoredArtifact
from engine.config import EngineSettings
from engine.scaleout.database import open_pool
from engine.scaleout.streams import Keys

REDIS_TIMEOUT_S = 5.0


@dataclass
class Shared:
    redis: Redis
    pool: asyncpg.Pool
    keys: Keys

    async def close(self) -> None:
        await self.redis.aclose()
        await self.pool.close()

    async def stored_file(self, artifact_id: str) -> StoredArtifact | None:
        """A file a worker recorded (``aigc_files``), by artifact id."""
        async with self.pool.acquire() as conn:
            r = await conn.fetchrow("SELECT data, mime, filename, sha256 FROM aigc_files WHERE id=$1", artifact_id)
        return None if r is None else StoredArtifact(artifact_id, bytes(r["data"]), r["mime"], r["filename"],
                                                      r["sha256"])


def redis_client(url: str) -> Redis:
    # Timeouts: a node must notice a dead Redis (readiness) instead of hanging on it.
    return Redis.from_url(url, socket_connect_timeout=REDIS_TIMEOUT_S, socket_timeout=None,
                          health_check_interval=5, retry_on_timeout=False)


async def connect(settings: EngineSettings, *, pool_size: int = 8) -> Shared:
    assert settings.queue_url is not None and settings.database_url is not None
    pool = await open_pool(settings.database_url.get_secret_value(), max_size=pool_size,
                           synchronous_commit=settings.database_synchronous_commit)
    return Shared(redis_client(settings.queue_url.get_secret_value()), pool, Keys(settings.queue_prefix))
