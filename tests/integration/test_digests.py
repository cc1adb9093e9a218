"""A daily digest through the whole alert service: shared sums in the real Redis, the outbox, a local webhook."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

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


async def test_a_daily_digest_compares_yesterday_with_the_day_before_and_is_sent_once() -> None:
    rules = RulesFile.model_validate(
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
    groups = day_buckets(Scope(team="emea"), {"2026-11-23": 8, "2026-11-24": 12, "2026-11-25": 3})
    now = float(berlin("2026-11-25 09:00"))  # half an hour after the send time
    async with redis_namespace("digest") as (redis, namespace), WebhookSink() as sink:
        service = AlertService(
            Settings(app_id=namespace, partitions=1),
            CONFIG,
            load_catalog(),
            rules,
            redis,
            buckets=lambda: groups,
            owned=lambda: {0},
            ready=lambda: True,
            audit=lambda key, record: _nothing(),
            clock=lambda: now,
            env={"SLACK_URL": sink.url("/slack")},
        )
        try:
            for _ in range(3):  # every round finds it due: it is queued once
                await service.evaluate()
                await service.deliver()
            (request,) = await sink.wait_for(1, timeout=10)
        finally:
            await service.close()
        assert request.header("Idempotency-Key") == "digest/emea/daily/2026-11-24/sales"
        text = request.json["text"]
        assert "Daily digest for team emea: 2026-11-24" in text
        assert "12" in text and "+50.0%" in text and "on goal" in text  # 12 calls, 8 the day before, goal 10
        assert len(sink.requests) == 1


async def _nothing() -> None:
    return None
