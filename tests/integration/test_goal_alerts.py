"""A pace alert on a goal of the config, through the whole alert service: real Redis, the outbox, a local webhook.

Rule "behind the pace on the weekly calls goal": every rep, the week's calls against the config's goal
rep-weekly-calls (50 a week, Monday to Friday, 09:00-17:00 in the team's zone). On Tuesday December 8,
2026 at 14:00 in Berlin, 13 of the week's 40 working hours are gone: 13/40 x 50 = 16.25 calls expected.
Anna made 12 (behind: one message, however many rounds), Jan 20 (on pace: nothing).
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from alerts.rules import RulesFile
from alerts.testing import WebhookSink
from schemas.config import KpimonConfig
from schemas.scopes import Scope
from tests.integration.alert_service import alert_service, day_buckets, local_time, rounds
from tests.integration.redis_namespace import redis_namespace

BERLIN = ZoneInfo("Europe/Berlin")
CONFIG = KpimonConfig.model_validate(
    {
        "teams": {"emea": {"timezone": "Europe/Berlin"}},
        "reps": {"emea-anna": {"team": "emea"}, "emea-jan": {"team": "emea"}},
        "goals": [
            {
                "name": "rep-weekly-calls",
                "kpi": "calls",
                "scope": "rep",
                "period": "week",
                "target": 50,
                "hours": "09:00-17:00",
                "business_days": ["mon", "tue", "wed", "thu", "fri"],
            }
        ],
    }
)
RULES = RulesFile.model_validate(
    {
        "routes": {"sales": {"type": "webhook", "url_env": "HOOK_URL"}},
        "rules": [
            {
                "id": "rep-weekly-calls-behind",
                "name": "Behind the pace on the weekly calls goal",
                "kpi": "calls",
                "window": "week",
                "scope": {"kind": "rep"},
                "condition": {"pace": {"goal": "rep-weekly-calls"}},
                "routes": ["sales"],
            }
        ],
    }
)


async def test_a_rep_behind_the_pace_of_the_weekly_goal_is_told_once() -> None:
    groups = day_buckets(Scope(team="emea", rep="emea-anna"), {"2026-12-07": 7, "2026-12-08": 5}, BERLIN)
    groups += day_buckets(Scope(team="emea", rep="emea-jan"), {"2026-12-07": 12, "2026-12-08": 8}, BERLIN)
    now = float(local_time("2026-12-08 14:00", BERLIN))
    async with redis_namespace("goal-alert") as (redis, namespace), WebhookSink() as sink:
        env = {"HOOK_URL": sink.url("/hook")}
        service = alert_service(redis, namespace, CONFIG, RULES, lambda: groups, now, env)
        try:
            await rounds(service, 3)
            (request,) = await sink.wait_for(1, timeout=10)
        finally:
            await service.close()
        assert len(sink.requests) == 1
    event = request.json
    assert (event["rule_id"], event["kind"]) == ("rep-weekly-calls-behind", "firing")
    assert event["scope"]["rep"] == "emea-anna"
    assert (event["value"], event["threshold"]) == (12.0, 16.25)
    assert event["condition"] == "behind the pace to 50 (16.2 expected by now)"
