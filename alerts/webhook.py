"""Generic webhook payloads, and an alert event rendered once per route into outbox notifications."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import orjson

from alerts.model import AlertEvent, Notification
from alerts.routes import Route, SlackRoute
from alerts.slack import slack_message, utc_iso

SCHEMA = "kpimon.alert/v1"


def webhook_message(event: AlertEvent, grafana_link: str | None = None) -> dict[str, Any]:
    """``event`` as plain JSON: every field, the scope as an object, times as UTC ISO strings.

    Also ``schema`` (the payload version), ``idempotency_key`` (equal to the ``Idempotency-Key``
    header without the route) and ``grafana_url`` (null when there is none).
    """
    message: dict[str, Any] = {"schema": SCHEMA, "idempotency_key": event.idempotency_key}
    message |= {field.name: getattr(event, field.name) for field in dataclasses.fields(event)}
    message |= {
        "scope": {
            "kind": event.scope.kind,
            **dataclasses.asdict(event.scope),
            "key": event.scope.id,
            "description": event.scope.describe(),
        },
        "since": utc_iso(event.since),
        "at": utc_iso(event.at),
        "routes": list(event.routes),
        "grafana_url": grafana_link,
    }
    return message


def render(event: AlertEvent, route: Route, grafana_link: str | None) -> bytes:
    """The body ``route`` receives for ``event``: Block Kit for Slack, the plain event for webhooks."""
    if isinstance(route, SlackRoute):
        return orjson.dumps(slack_message(event, grafana_link))
    return orjson.dumps(webhook_message(event, grafana_link))


def notifications_for(
    event: AlertEvent, routes: Mapping[str, Route], now: float, grafana_link: str | None
) -> list[Notification]:
    """One notification per route the event names, rendered now; due at once.

    A route the configuration does not define raises ``KeyError``: the rules file is
    validated against the routes at load time, so this is a programming error, and an
    event silently sent nowhere would be worse.
    """
    notifications = []
    for name in dict.fromkeys(event.routes):
        route = routes.get(name)
        if route is None:
            raise KeyError(f"rule {event.rule_id!r} sends to route {name!r}, which is not configured")
        notifications.append(due_now(event.idempotency_key, name, route, render(event, route, grafana_link), now))
    return notifications


def due_now(key: str, route_name: str, route: Route, body: bytes, now: float) -> Notification:
    """A message for ``route`` queued at ``now`` and due at once; its id is ``<key>/<route name>``."""
    return Notification(
        id=f"{key}/{route_name}", route=route_name, url_env=route.url_env, body=body, created_at=now, not_before=now
    )
