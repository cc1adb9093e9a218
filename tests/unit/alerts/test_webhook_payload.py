"""Generic webhook payloads and notifications rendered once per route."""

from __future__ import annotations

import dataclasses

import orjson
import pytest

from alerts.model import AlertEvent
from alerts.slack import slack_message
from alerts.webhook import SCHEMA, notifications_for, webhook_message
from tests.unit.alerts.delivery_examples import ROUTES, T0, alert_event

GRAFANA = "https://grafana.example.com/d/kpimon-sales"


def test_the_webhook_payload_carries_every_event_field_as_plain_json() -> None:
    event = alert_event(routes=("ops-hook", "sales-slack"))
    message = orjson.loads(orjson.dumps(webhook_message(event, GRAFANA)))
    assert {field.name for field in dataclasses.fields(AlertEvent)} <= set(message)
    assert message == {
        "schema": SCHEMA,
        "idempotency_key": "emea-connect-rate/team:emea:::/3/firing/0",
        "kind": "firing",
        "rule_id": "emea-connect-rate",
        "rule_name": "EMEA connect rate too low",
        "severity": "critical",
        "kpi_id": "call_connect_rate",
        "kpi_name": "Call connect rate",
        "unit": "ratio",
        "window": "1h",
        "scope": {
            "kind": "team",
            "team": "emea",
            "rep": "",
            "channel": "",
            "campaign": "",
            "key": "team:emea:::",
            "description": "team emea",
        },
        "value": 0.1823,
        "threshold": 0.25,
        "condition": "below 25.0%",
        "sample_size": 137.0,
        "since": "2025-11-30T10:00:00Z",
        "at": "2025-11-30T10:05:00Z",
        "episode": 3,
        "sequence": 0,
        "routes": ["ops-hook", "sales-slack"],
        "grafana_url": GRAFANA,
    }


def test_missing_values_are_null() -> None:
    message = webhook_message(alert_event(value=None, threshold=None, sample_size=None))
    assert (message["value"], message["threshold"], message["sample_size"], message["grafana_url"]) == (None,) * 4


def test_one_notification_per_route_rendered_for_that_route() -> None:
    event = alert_event(routes=("sales-slack", "ops-hook", "sales-slack"))
    slack, hook = notifications_for(event, ROUTES, T0 + 301, GRAFANA)
    assert (slack.id, slack.route, slack.url_env) == (
        "emea-connect-rate/team:emea:::/3/firing/0/sales-slack",
        "sales-slack",
        "KPIMON_TEST_SLACK_SALES",
    )
    assert orjson.loads(slack.body) == slack_message(event, GRAFANA)
    assert (hook.id, hook.route, hook.url_env) == (
        "emea-connect-rate/team:emea:::/3/firing/0/ops-hook",
        "ops-hook",
        "KPIMON_TEST_OPS_HOOK",
    )
    assert orjson.loads(hook.body) == webhook_message(event, GRAFANA)
    assert all((item.created_at, item.not_before, item.attempts) == (T0 + 301, T0 + 301, 0) for item in (slack, hook))


def test_the_same_event_decided_twice_gives_the_same_notifications() -> None:
    """What makes the outbox drop the second copy."""
    assert notifications_for(alert_event(), ROUTES, T0, None) == notifications_for(alert_event(), ROUTES, T0, None)
    assert notifications_for(alert_event(), ROUTES, T0, None) != notifications_for(
        alert_event(sequence=1), ROUTES, T0, None
    )


def test_an_event_without_routes_gives_nothing() -> None:
    assert notifications_for(alert_event(routes=()), ROUTES, T0, None) == []


def test_a_route_that_is_not_configured_is_an_error() -> None:
    with pytest.raises(KeyError, match="nowhere"):
        notifications_for(alert_event(routes=("nowhere",)), ROUTES, T0, None)
