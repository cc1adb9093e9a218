"""An AlertService on real Redis with a fixed clock, fed bucket groups by hand: for digest and goal alert tests."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

from redis.asyncio import Redis

from alerts.rules import RulesFile
from schemas.catalog import load_catalog
from schemas.config import KpimonConfig
from schemas.scopes import Scope
from streams.core.folding import BucketGroup, GroupKey
from streams.core.windows import DAY
from streams.worker.alerting import AlertService
from streams.worker.settings import Settings

Groups = list[tuple[str, BucketGroup]]


def local_time(text: str, tz: ZoneInfo) -> int:
    """``"2026-11-25 09:00"`` on the wall clock of ``tz``, as epoch seconds."""
    return int(datetime.fromisoformat(text).replace(tzinfo=tz).timestamp())


def day_buckets(scope: Scope, calls_by_day: Mapping[str, int], tz: ZoneInfo, partition: int = 0) -> Groups:
    """Day buckets of ``calls`` for ``scope`` (days of one month), as the partition's stored group."""
    first = min(calls_by_day)
    key = GroupKey(partition, scope, DAY, DAY.group_start(local_time(f"{first} 00:00", tz), tz)).encode()
    buckets = {str(local_time(f"{day} 00:00", tz)): {"calls": float(calls)} for day, calls in calls_by_day.items()}
    return [(key, {"buckets": buckets, "offsets": {"crm": 1}})]


def alert_service(
    redis: Redis,
    namespace: str,
    config: KpimonConfig,
    rules: RulesFile,
    groups: Callable[[], Groups],
    now: float,
    env: Mapping[str, str],
    partitions: int = 1,
) -> AlertService:
    """The service owning every partition, reading ``groups`` as the stored state."""
    return AlertService(
        Settings(app_id=namespace, partitions=partitions),
        config,
        load_catalog(),
        rules,
        redis,
        buckets=groups,
        owned=lambda: set(range(partitions)),
        ready=lambda: True,
        audit=lambda key, record: _nothing(),
        clock=lambda: now,
        env=env,
    )


async def rounds(service: AlertService, count: int) -> None:
    """``count`` evaluation rounds, each followed by a delivery round."""
    for _ in range(count):
        await service.evaluate()
        await service.deliver()


async def _nothing() -> None:
    return None
