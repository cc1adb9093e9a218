"""A daily digest through the whole alert service: shared sums in the real Redis, the outbox, a local webhook."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from redis.asyncio import Redis

from alerts.rules import RulesFile
from alerts.testing import WebhookSink
from schemas.catalog import load_catalog
from schemas.config import KpimonConfig, TeamConfig
from schemas.scopes import Scope
from streams.core.folding import BucketGroup, GroupKey
from streams.core.windows import DAY
from streams.worker.alerting import AlertService
from streams.worker.settings import Settings
from tests.integration.redis_namespace import redis_namespace

BERLIN = ZoneInfo("Europe/Berlin")
CONFIG = KpimonConfig(teams={"emea": TeamConfig(timezone="Europe/Berlin")})


def berlin(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=BERLIN).timestamp())


def day_buckets(scope: Scope, calls_by_day: dict[str, int]) -> list[tuple[str, BucketGroup]]:
    key = GroupKey(0, scope, DAY, berlin("2026-11-01 00:00")).encode()
    buckets = {str(berlin(f"{day} 00:00")): {"calls": float(calls)} for day, calls in calls_by_day.items()}
    return [(key, {"buckets": buckets, "offsets": {"crm": 1}})]


RULES = RulesFile.model_validate(
    {
        "routes": {"sales": {"type": "slack", "webhook_url_env": "SLACK_URL"}},
        "digests": [
            {
                "team": "emea",
                "cadence": "daily",
                "at": "08:30",
                "kpis": ["calls"],
                "goals": {"calls": 10},
                "route": "sales",
            }
        ],
    }
)
NOW = float(berlin("2026-11-25 09:00"))  # half an hour after the send time


def digest_service(
    redis: Redis, namespace: str, sink: WebhookSink, groups: Callable[[], list[tuple[str, BucketGroup]]]
) -> AlertService:
    return AlertService(
        Settings(app_id=namespace, partitions=1),
        CONFIG,
        load_catalog(),
        RULES,
        redis,
        buckets=groups,
        owned=lambda: {0},
        ready=lambda: True,
        audit=lambda key, record: _nothing(),
        clock=lambda: NOW,
        env={"SLACK_URL": sink.url("/slack")},
    )


async def rounds(service: AlertService, count: int) -> None:
    for _ in range(count):
        await service.evaluate()
        await service.deliver()


async def test_a_daily_digest_compares_yesterday_with_the_day_before_and_is_sent_once() -> None:
    groups = day_buckets(Scope(team="emea"), {"2026-11-23": 8, "2026-11-24": 12, "2026-11-25": 3})
    async with redis_namespace("digest") as (redis, namespace), WebhookSink() as sink:
        service = digest_service(redis, namespace, sink, lambda: groups)
        try:
            await rounds(service, 3)  # every round finds it due: it is queued once
            (request,) = await sink.wait_for(1, timeout=10)
        finally:
            await service.close()
        assert request.header("Idempotency-Key") == "digest/emea/daily/2026-11-24/sales"
        text = request.json["text"]
        assert "Daily digest for team emea: 2026-11-24" in text
        assert "12" in text and "+50.0%" in text and "on goal" in text  # 12 calls, 8 the day before, goal 10
        assert len(sink.requests) == 1


async def test_a_day_without_any_data_is_not_summarised_until_its_data_arrives() -> None:
    """No all-zero "behind goal" digest for a day the worker has no data of (a demo started today)."""
    groups = day_buckets(Scope(team="emea"), {"2026-11-23": 8, "2026-11-25": 3})  # nothing on the 24th
    async with redis_namespace("digest-empty") as (redis, namespace), WebhookSink() as sink:
        service = digest_service(redis, namespace, sink, lambda: groups)
        try:
            await rounds(service, 3)
            await asyncio.sleep(1)
            assert sink.requests == []
            groups = day_buckets(Scope(team="emea"), {"2026-11-24": 12})  # the history of the 24th counted
            await rounds(service, 1)
            (request,) = await sink.wait_for(1, timeout=10)
        finally:
            await service.close()
        assert request.header("Idempotency-Key") == "digest/emea/daily/2026-11-24/sales"
        assert "12" in request.json["text"]


async def _nothing() -> None:
    return None
