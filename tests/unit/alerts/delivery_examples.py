"""Alert events and notifications for the delivery tests (unit and integration)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson

from alerts.model import AlertEvent, Notification
from alerts.routes import SlackRoute, WebhookRoute
from schemas.scopes import Scope

T0 = 1_764_496_800.0  # 2025-11-30T10:00:00Z

ROUTES: dict[str, SlackRoute | WebhookRoute] = {
    "sales-slack": SlackRoute(type="slack", webhook_url_env="KPIMON_TEST_SLACK_SALES"),
    "exec-slack": SlackRoute(type="slack", webhook_url_env="KPIMON_TEST_SLACK_EXEC"),
    "ops-hook": WebhookRoute(type="webhook", url_env="KPIMON_TEST_OPS_HOOK"),
}


def alert_event(**changes: Any) -> AlertEvent:
    """A critical connect-rate alert for team emea, firing since T0; ``changes`` replace fields."""
    event = AlertEvent(
        kind="firing",
        rule_id="emea-connect-rate",
        rule_name="EMEA connect rate too low",
        severity="critical",
        kpi_id="call_connect_rate",
        kpi_name="Call connect rate",
        unit="ratio",
        window="1h",
        scope=Scope(team="emea"),
        value=0.1823,
        threshold=0.25,
        condition="below 25.0%",
        sample_size=137.0,
        since=T0,
        at=T0 + 300.0,
        episode=3,
        sequence=0,
        routes=("sales-slack",),
    )
    return replace(event, **changes)


def notification(number: int = 0, *, route: str = "ops-hook", not_before: float = T0, **changes: Any) -> Notification:
    """A notification for ``route`` with a small JSON body; ids differ by ``number``."""
    base = Notification(
        id=f"emea-connect-rate/team:emea:::/3/firing/{number}/{route}",
        route=route,
        url_env=ROUTES[route].url_env,
        body=orjson.dumps({"number": number, "text": "connect rate 18.2% ✓"}),
        created_at=not_before,
        not_before=not_before,
    )
    return replace(base, **changes)
