"""The outbox and rate gate contracts against the real Redis of deploy/local, and what only Redis has."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from alerts.outbox import REMEMBER_SECONDS, Outbox, RedisOutbox
from alerts.rate_gate import RateGate, RedisRateGate
from tests.integration.redis_namespace import redis_namespace
from tests.unit.alerts import outbox_contract, rate_gate_contract
from tests.unit.alerts.delivery_examples import T0, notification


@pytest.mark.parametrize("check", outbox_contract.CONTRACT, ids=lambda check: check.__name__)
async def test_redis_outbox_keeps_the_contract(check: Callable[[Outbox], Awaitable[None]]) -> None:
    async with redis_namespace() as (redis, namespace):
        await check(RedisOutbox(redis, namespace))


@pytest.mark.parametrize("check", rate_gate_contract.CONTRACT, ids=lambda check: check.__name__)
async def test_redis_rate_gate_keeps_the_contract(check: Callable[[RateGate], Awaitable[None]]) -> None:
    async with redis_namespace() as (redis, namespace):
        await check(RedisRateGate(redis, namespace))


async def test_keys_are_versioned_under_the_namespace_and_finished_ids_expire_after_30_days() -> None:
    async with redis_namespace() as (redis, namespace):
        outbox = RedisOutbox(redis, namespace)
        await outbox.enqueue([notification(1), notification(2)])
        await outbox.claim_due(T0, 10, 60.0)
        await outbox.retry_later(notification(2), T0 + 1, "HTTP 500")
        await outbox.delivered(notification(1).id)
        keys = {key.decode() async for key in redis.scan_iter(match=f"{namespace}:*")}
        prefix = f"{namespace}:outbox:v1"
        assert keys == {f"{prefix}:due", f"{prefix}:items", f"{prefix}:errors", f"{prefix}:done:{notification(1).id}"}
        ttl = await redis.ttl(outbox.done_key(notification(1).id))
        assert REMEMBER_SECONDS - 60 < ttl <= REMEMBER_SECONDS


async def test_two_outbox_objects_on_one_namespace_share_one_queue() -> None:
    """Two workers: what one queued, the other claims; what one delivered, the other does not queue again."""
    async with redis_namespace() as (redis, namespace):
        first, second = RedisOutbox(redis, namespace), RedisOutbox(redis, namespace)
        assert await first.enqueue([notification(1)]) == 1
        assert await second.enqueue([notification(1)]) == 0
        [claimed] = await second.claim_due(T0, 10, 60.0)
        assert await first.claim_due(T0, 10, 60.0) == []
        assert await second.delivered(claimed.id)
        assert await first.enqueue([notification(1)]) == 0
        assert await first.pending() == 0
