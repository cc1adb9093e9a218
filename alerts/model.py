"""The values the alert engine passes between its parts. Pure data, no behaviour beyond naming.

An ``Observation`` is what a rule sees of one scope at one evaluation; an
``AlertEvent`` is a state transition worth telling people about; a
``Notification`` is that event rendered for one route, waiting in the outbox
until the receiver accepts it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from schemas.goals import Goal
from schemas.scopes import Scope

Status = Literal["ok", "pending", "firing", "resolved"]  # resolved behaves as ok until breached again
EventKind = Literal["firing", "repeat", "resolved"]
Severity = Literal["info", "warning", "critical"]


@dataclass(frozen=True)
class Observation:
    """One KPI of one scope in one window at one evaluation.

    ``value`` is None when the KPI has no value (a ratio over zero). For ratio
    KPIs ``numerator``/``denominator`` are the counts behind the value (the
    denominator is the sample size); for other KPIs they are None.
    ``baseline`` is the same KPI in the rule's baseline period (drop conditions).
    ``goal`` is the entry of the rule's goal in force for the scope now (pace
    conditions); None when the goal does not cover the scope or is not yet in force.
    """

    value: float | None
    numerator: float | None = None
    denominator: float | None = None
    baseline: float | None = None
    goal: Goal | None = None


@dataclass(frozen=True)
class AlertState:
    """Where one (rule, scope) stands. Stored in Redis between evaluations; ``episode`` counts firings."""

    status: Status = "ok"
    since: float = 0.0  # when the current status began
    episode: int = 0  # incremented on each pending -> firing
    messages: int = 0  # firing and repeat messages queued in this episode (quiet hours can defer the first)
    notified_at: float | None = None  # when the last of them was queued


@dataclass(frozen=True)
class AlertEvent:
    """A transition people are told about: a rule started firing, still fires (repeat), or resolved."""

    kind: EventKind
    rule_id: str
    rule_name: str
    severity: Severity
    kpi_id: str
    kpi_name: str
    unit: str  # the catalog unit: count, seconds, ratio, currency, currency_per_day
    window: str
    scope: Scope
    value: float | None
    threshold: float | None  # the value the condition compares against (absolute, after baselines/pace)
    condition: str  # human words: "below 0.2", "20% below the previous period", "behind the pace to 50 by 18:00"
    sample_size: float | None
    since: float  # when the rule began firing (epoch seconds)
    at: float  # when this event was decided
    episode: int
    sequence: int  # messages of this episode before this one: 0 for firing, 1, 2, ... for repeats
    routes: tuple[str, ...] = field(default=())

    @property
    def idempotency_key(self) -> str:
        """Equal for the same event decided twice (an evaluation retried after a crash): the outbox keeps one."""
        return f"{self.rule_id}/{self.scope.id}/{self.episode}/{self.kind}/{self.sequence}"


@dataclass(frozen=True)
class Notification:
    """One message for one route, kept in the outbox until the receiver accepts it."""

    id: str  # f"{event.idempotency_key}/{route}"
    route: str
    url_env: str  # the environment variable holding the webhook URL (secrets never in files)
    body: bytes  # the JSON payload, rendered once when queued
    created_at: float
    attempts: int = 0
    not_before: float = 0.0  # earliest next attempt (backoff, Retry-After)
