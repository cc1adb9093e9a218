"""A daily digest through the whole alert service: shared sums in the real Redis, the outbox, a local webhook."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from zoneinfo import ZoneInfo

from redis.asyncio import Redis

from alerts.rules import RulesFile
from alerts.testing import WebhookSink
from schemas.config import KpimonConfig
from schemas.scopes import Scope
from streams.worker.alerting import AlertService
from tests.integration.alert_service import Groups, alert_service, day_buckets, local_time, rounds
from tests.integration.redis_namespace import redis_namespace

BERLIN = ZoneInfo("Europe/Berlin")
CONFIG = KpimonConfig.model_validate(
    {
        "teams": {"emea": {"timezone": "Europe/Berlin"}},
        "reps": {"emea-anna": {"team": "emea"}, "emea-jan": {"team": "emea"}},
        "goals": [
            {"name": "team-daily-calls", "kpi": "calls", "scope": "team", "period": "day", "target": 10},
            {"name": "rep-daily-calls", "kpi": "calls", "scope": "rep", "period": "day", "target": 5},
            {"name": "team-weekly-calls", "kpi": "calls", "scope": "team", "period": "week", "target": 50},
            # raised on Wednesday of week 48: from week 49 on; week 48 keeps 50
            {
                "name": "team-weekly-calls",
                "kpi": "calls",
                "scope": "team",
                "period": "week",
                "target": 80,
                "since": "2026-11-25",
            },
            {"name": "rep-weekly-calls", "kpi": "calls", "scope": "rep", "period": "week", "target": 25},
        ],
    }
)
ANNA, JAN = Scope(team="emea", rep="emea-anna"), Scope(team="emea", rep="emea-jan")


def berlin(text: str) -> int:
    return local_time(text, BERLIN)


def calls_on(scope: Scope, calls_by_day: dict[str, int], partition: int = 0) -> Groups:
    return day_buckets(scope, calls_by_day, BERLIN, partition)


ROUTES = {"sales": {"type": "slack", "webhook_url_env": "SLACK_URL"}}
DAILY = {"team": "emea", "cadence": "daily", "at": "08:30", "kpis": ["calls"], "route": "sales"}
RULES = RulesFile.model_validate({"routes": ROUTES, "digests": [DAILY]})
WEEKLY_RULES = RulesFile.model_validate(
    {"routes": ROUTES, "digests": [{**DAILY, "cadence": "weekly", "weekday": "mon"}]}
)
NOW = float(berlin("2026-11-25 09:00"))  # half an hour after the send time


def digest_service(
    redis: Redis, namespace: str, sink: WebhookSink, groups: Callable[[], Groups], rules: RulesFile = RULES
) -> AlertService:
    return alert_service(redis, namespace, CONFIG, rules, groups, NOW, {"SLACK_URL": sink.url("/slack")})


async def test_a_daily_digest_compares_yesterday_with_the_day_before_and_is_sent_once() -> None:
    groups = calls_on(Scope(team="emea"), {"2026-11-23": 8, "2026-11-24": 12, "2026-11-25": 3})
    groups += calls_on(ANNA, {"2026-11-24": 10}) + calls_on(JAN, {"2026-11-24": 2})
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
        # the reps' daily goal of 5: anna made 10, jan 2 (the weekly goals are not a daily digest's business)
        assert text.splitlines()[-1] == "Behind goal: emea-jan rep-daily-calls 2 of 5 (40%)"
        assert len(sink.requests) == 1


async def test_the_weekly_review_judges_last_week_by_its_own_goals_and_names_who_is_behind() -> None:
    """Monday November 30: week 48 (November 23-29) against week 47, with week 48's goals."""
    week_47 = {"2026-11-16": 9, "2026-11-18": 11, "2026-11-20": 10}  # 30 calls
    week_48 = {"2026-11-23": 12, "2026-11-24": 14, "2026-11-26": 10, "2026-11-27": 9}  # 45 calls
    # the team's calls are folded on two partitions: 30 + 15 in week 48, 20 + 10 in week 47
    first = {day: calls * 2 // 3 for day, calls in (week_47 | week_48).items()}
    second = {day: calls - first[day] for day, calls in (week_47 | week_48).items()}
    groups = calls_on(Scope(team="emea"), first) + calls_on(Scope(team="emea"), second, partition=1)
    groups += calls_on(ANNA, {"2026-11-23": 20, "2026-11-27": 10}) + calls_on(JAN, {"2026-11-24": 15})
    monday = float(berlin("2026-11-30 09:00"))
    async with redis_namespace("digest-weekly") as (redis, namespace), WebhookSink() as sink:
        env = {"SLACK_URL": sink.url("/slack")}
        service = alert_service(redis, namespace, CONFIG, WEEKLY_RULES, lambda: groups, monday, env, partitions=2)
        try:
            await rounds(service, 2)
            (request,) = await sink.wait_for(1, timeout=10)
        finally:
            await service.close()
    assert request.header("Idempotency-Key") == "digest/emea/weekly/2026-W48/sales"
    text = request.json["text"].splitlines()
    # 45 calls against 30 the week before (+50%), on the goal of 50? no: the 80 set on Wednesday starts in week 49
    assert text[0] == "Weekly digest for team emea: 2026-W48: 1 KPIs, 0 of 1 on goal, 1 reps behind a goal"
    assert text[1] == "Calls: 45 (+50.0%, behind goal)"
    assert text[2] == "Behind goal: emea-jan rep-weekly-calls 15 of 25 (60%)"  # anna made 30 of 25
    table = request.json["blocks"][1]["text"]["text"]
    assert "✗ behind goal (50)" in table


async def test_a_day_without_any_data_is_not_summarised_until_its_data_arrives() -> None:
    """No all-zero "behind goal" digest for a day the worker has no data of (a demo started today)."""
    groups = calls_on(Scope(team="emea"), {"2026-11-23": 8, "2026-11-25": 3})  # nothing on the 24th
    async with redis_namespace("digest-empty") as (redis, namespace), WebhookSink() as sink:
        service = digest_service(redis, namespace, sink, lambda: groups)
        try:
            await rounds(service, 3)
            await asyncio.sleep(1)
            assert sink.requests == []
            groups = calls_on(Scope(team="emea"), {"2026-11-24": 12})  # the history of the 24th counted
            await rounds(service, 1)
            (request,) = await sink.wait_for(1, timeout=10)
        finally:
            await service.close()
        assert request.header("Idempotency-Key") == "digest/emea/daily/2026-11-24/sales"
        assert "12" in request.json["text"]
