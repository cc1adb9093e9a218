"""Shared sums through the real Redis: every partition's sums add up; a missing or stale one holds back."""

from __future__ import annotations

import uuid

from redis.asyncio import Redis

from schemas.scopes import Scope
from streams.core.windows import DAY
from streams.readout.alert_inputs import Need, sums_key
from streams.worker.alert_sums import SharedSums, groups_by_partition
from tests.unit.readout.test_kpis import CONFIG, EMEA, NOW, groups

TODAY = 1_699_916_400  # 2023-11-14 in Berlin, emea's zone
NOVEMBER = 1_698_793_200
NEEDS = [Need(lambda labels: labels == Scope(team="emea"), "today", "now", frozenset({"leads"}))]
GROUPS = groups(
    (0, EMEA, DAY, NOVEMBER, TODAY, {"leads": 3}),
    (1, EMEA, DAY, NOVEMBER, TODAY, {"leads": 4}),
)


async def test_partitions_published_by_two_workers_add_up_and_stale_ones_hold_back() -> None:
    redis = Redis.from_url("redis://127.0.0.1:6379/0")
    worker_a = SharedSums(redis, f"it-{uuid.uuid4().hex[:8]}", 3, NEEDS, CONFIG)
    worker_b = SharedSums(redis, worker_a.key.split(":")[0], 3, NEEDS, CONFIG)
    by_partition = groups_by_partition(GROUPS)
    try:
        await worker_a.publish({0, 2}, by_partition, NOW)  # partition 2 is owned but has no data
        assert await worker_a.whole(NOW, max_age=30) == (None, [1])
        await worker_b.publish({1}, by_partition, NOW + 5)
        sums, missing = await worker_b.whole(NOW + 5, max_age=30)
        assert missing == [] and sums == {sums_key(EMEA, "today", "now"): {"leads": 7}}
        assert await worker_b.whole(NOW + 36, max_age=33) == (None, [0, 2])  # a's sums grew old
    finally:
        await redis.delete(worker_a.key)
        await redis.aclose()
