"""One rule, one scope, one evaluation: the condition, the state machine and the event to tell. Pure.

``decide`` joins ``conditions.check`` (is the KPI breached?), the quiet hours
(may people be told now?) and ``state.advance`` (what changes?), and names the
resulting event with everything a message shows. The worker (``streams``) feeds
it observations and stores what it returns.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from alerts.conditions import Check, check
from alerts.model import AlertEvent, AlertState, Observation
from alerts.rules import AlertRule
from alerts.state import Step, advance, event_sequence
from schemas.catalog import KpiSpec
from schemas.scopes import Scope


def state_key(rule_id: str, scope: Scope) -> str:
    """Where a (rule, scope)'s state is stored: ``<rule id>/<scope key>``."""
    return f"{rule_id}/{scope.id}"


@dataclass(frozen=True)
class Decision:
    """What one evaluation of a rule for one scope decided."""

    rule: AlertRule
    scope: Scope
    observation: Observation
    check: Check
    before: AlertState
    step: Step
    event: AlertEvent | None
    at: float

    @property
    def key(self) -> str:
        return state_key(self.rule.id, self.scope)

    def audit_record(self) -> dict[str, Any]:
        """The transition as the ``kpimon.alerts`` topic records it; only for steps that change the status."""
        assert self.step.transition is not None
        return {
            "rule": self.rule.id,
            "kpi": self.rule.kpi,
            "window": self.rule.window,
            "scope": dataclasses.asdict(self.scope),
            "from": self.step.transition[0],
            "to": self.step.transition[1],
            "at": self.at,
            "value": self.observation.value,
            "threshold": self.check.threshold,
            "condition": self.check.description,
            "sample_size": self.observation.denominator,
            "episode": self.step.state.episode,
            "event": self.event.kind if self.event else None,
        }


def decide(
    rule: AlertRule,
    kpi: KpiSpec,
    scope: Scope,
    observation: Observation,
    before: AlertState,
    now: float,
    tz: ZoneInfo,
) -> Decision:
    """Evaluate ``rule`` for ``scope`` at ``now`` from the state ``before``."""
    result = check(rule, observation, now, tz, firing=before.status == "firing")
    step = advance(before, result, now, rule.for_seconds, rule.repeat_interval_seconds, rule.is_quiet(now, tz))
    event = None
    if step.event is not None:
        firing_since = before.since if before.status == "firing" else step.state.since
        event = AlertEvent(
            kind=step.event,
            rule_id=rule.id,
            rule_name=rule.name,
            severity=rule.severity,
            kpi_id=kpi.id,
            kpi_name=kpi.name,
            unit=kpi.unit,
            window=rule.window,
            scope=scope,
            value=observation.value,
            threshold=result.threshold,
            condition=result.description,
            sample_size=observation.denominator,
            since=firing_since,
            at=now,
            episode=step.state.episode,
            sequence=event_sequence(step),
            routes=rule.routes,
        )
    return Decision(rule, scope, observation, result, before, step, event, now)
