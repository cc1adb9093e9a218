"""streams.worker.alerting and streams.metrics.alert_collector: the sums rules read; what /metrics shows."""

from __future__ import annotations

import logging
import zlib

import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from alerts.delivery import DeliveryReport
from alerts.rules import RulesFile
from schemas.catalog import load_catalog
from schemas.config import KpimonConfig
from schemas.scopes import Scope
from streams.metrics.alert_collector import AlertCollector, AlertMetrics
from streams.worker.alerting import AlertService, needs_of, owner_partition
from streams.worker.settings import Settings

RULES = RulesFile.model_validate(
    {
        "routes": {"sales": {"type": "slack", "webhook_url_env": "SLACK_SALES_WEBHOOK_URL"}},
        "rules": [
            {
                "id": "win-rate-drop",
                "kpi": "win_rate",
                "window": "30d",
                "scope": {"kind": "team", "team": "emea"},
                "condition": {"drop": {"percent": 25}},
                "routes": ["sales"],
            }
        ],
        "digests": [
            {
                "team": "amer",
                "cadence": "weekly",
                "weekday": "mon",
                "at": "09:00",
                "kpis": ["revenue"],
                "route": "sales",
            }
        ],
    }
)


def test_needs_cover_the_window_the_baseline_and_the_digest_periods() -> None:
    catalog = load_catalog()
    needs = needs_of(RULES, catalog, KpimonConfig())
    assert [(need.window, need.variant, sorted(need.counters)) for need in needs] == [
        ("30d", "now", ["deals_lost", "deals_won"]),
        ("30d", "previous_period", ["deals_lost", "deals_won"]),
        ("week", "previous_period", sorted(catalog.counters)),  # every counter: did the team have any data?
        ("week", "period_before", ["revenue"]),
    ]
    emea, amer = Scope(team="emea"), Scope(team="amer")
    assert [need.matches(emea) for need in needs] == [True, True, False, False]
    assert [need.matches(amer) for need in needs] == [False, False, True, True]


def test_a_weekly_digest_needs_the_reps_of_its_team_for_their_weekly_goals() -> None:
    config = KpimonConfig.model_validate(
        {
            "teams": {"amer": {}},
            "goals": [
                {"name": "weekly-calls", "kpi": "calls", "scope": "rep", "period": "week", "target": 100},
                {"name": "weekly-demos", "kpi": "demos_completed", "scope": "rep", "period": "week", "target": 5},
                {"name": "daily-calls", "kpi": "calls", "scope": "rep", "period": "day", "target": 20},
                {"name": "team-calls", "kpi": "emails_sent", "scope": "team", "period": "week", "target": 400},
            ],
        }
    )
    reps = needs_of(RULES, load_catalog(), config)[-1]
    assert (reps.window, reps.variant, sorted(reps.counters)) == (
        "week",
        "previous_period",
        ["calls", "demos_completed"],
    )
    assert reps.matches(Scope(team="amer", rep="mike")) and not reps.matches(Scope(team="emea", rep="anna"))
    assert not reps.matches(Scope(team="amer"))


def test_each_rule_has_one_stable_owner() -> None:
    assert owner_partition("win-rate-drop", 6) == zlib.crc32(b"win-rate-drop") % 6  # the same on every worker
    owners = {owner_partition(f"rule-{n}", 6) for n in range(100)}
    assert owners == set(range(6))  # rules spread over the partitions


def test_alert_state_on_metrics() -> None:
    metrics = AlertMetrics()
    rule = RULES.rules[0]
    metrics.statuses = {"k": (rule, Scope(team="emea"), "firing")}
    metrics.count(DeliveryReport(sent=2, retried=1, pending=3))
    metrics.count(DeliveryReport(sent=1, failed=1, expired=2, pending=0))
    registry = CollectorRegistry()
    registry.register(AlertCollector(lambda: metrics))
    labels = {"rule": "win-rate-drop", "severity": "warning", "kpi": "win_rate", "window": "30d", "scope": "team"}
    labels |= {"team": "emea", "rep": "", "channel": "", "campaign": ""}
    assert registry.get_sample_value("kpimon_alert_state", labels | {"state": "firing"}) == 1
    assert registry.get_sample_value("kpimon_alert_state", labels | {"state": "ok"}) == 0
    assert registry.get_sample_value("kpimon_alert_notifications_total", {"outcome": "sent"}) == 3
    assert registry.get_sample_value("kpimon_alert_notifications_total", {"outcome": "failed"}) == 1
    assert registry.get_sample_value("kpimon_alert_notifications_total", {"outcome": "expired"}) == 2
    assert registry.get_sample_value("kpimon_alert_outbox_pending") == 0


async def test_an_unexpected_error_in_an_alert_timer_is_logged_counted_and_the_timer_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken_buckets() -> list[tuple[str, object]]:
        raise ValueError("a bug in the readout")

    async def audit(key: str, record: bytes) -> None: ...

    redis = Redis.from_url("redis://127.0.0.1:1/0")  # never reached: the error comes first
    service = AlertService(
        Settings(partitions=1),
        KpimonConfig(),
        load_catalog(),
        RULES,
        redis,
        buckets=broken_buckets,  # type: ignore[arg-type]
        owned=lambda: {0},
        ready=lambda: True,
        audit=audit,
        clock=lambda: 1_700_000_000.0,
        env={},
    )

    async def broken_delivery() -> DeliveryReport:
        raise KeyError("a bug in delivery")

    service.deliverer.deliver_due = broken_delivery  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="streams.worker.alerting"):
        await service.evaluate()
        await service.evaluate()
        await service.deliver()
    await service.close()
    await redis.aclose()
    assert service.metrics.timer_errors == {"evaluate": 2, "deliver": 1}
    assert caplog.text.count("alert evaluate round failed; the next round runs as planned") == 2
    assert "a bug in the readout" in caplog.text and "alert deliver round failed" in caplog.text
    registry = CollectorRegistry()
    registry.register(AlertCollector(lambda: service.metrics))
    assert registry.get_sample_value("kpimon_alert_timer_errors_total", {"task": "evaluate"}) == 2
    assert registry.get_sample_value("kpimon_alert_timer_errors_total", {"task": "deliver"}) == 1
