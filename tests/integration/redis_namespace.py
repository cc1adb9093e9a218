"""A Redis client and a key namespace of its own for one test; every key under it is deleted afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis

REDIS_URL = os.environ.get("KPIMON_REDIS_URL", "redis://127.0.0.1:6379/0")


@asynccontextmanager
async def redis_namespace(prefix: str = "it") -> AsyncIterator[tuple[Redis, str]]:
    redis = Redis.from_url(REDIS_URL)
    namespace = f"{prefix}-{uuid.uuid4().hex[:10]}"
    try:
        yield redis, namespace
    finally:
        keys = [key async for key in redis.scan_iter(match=f"{namespace}:*", count=500)]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
