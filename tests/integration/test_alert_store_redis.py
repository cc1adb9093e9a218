"""The alert store contract against the real Redis of deploy/local."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import pytest
from redis.asyncio import Redis

from alerts.store import AlertStore, RedisAlertStore
from tests.unit.alerts.alert_store_contract import CONTRACT


@pytest.mark.parametrize("check", CONTRACT, ids=lambda check: check.__name__)
async def test_redis_store_keeps_the_contract(check: Callable[[AlertStore], Awaitable[None]]) -> None:
    redis = Redis.from_url("redis://127.0.0.1:6379/0")
    store = RedisAlertStore(redis, f"it-{uuid.uuid4().hex[:8]}")
    try:
        await check(store)
    finally:
        await redis.delete(store.key)
        await redis.aclose()
