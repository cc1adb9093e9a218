"""The alert rules file: routes, rules and digests as frozen models, loaded with line-precise errors.

Example (``deploy/examples/alerts.yaml``; every field in docs/alerts.md)::

    routes:
      sales-slack: {type: slack, webhook_url_env: SLACK_SALES_WEBHOOK_URL}
    rules:
      - id: emea-lead-conversion
        kpi: lead_to_opportunity
        window: 7d
        scope: {kind: team, team: emea}
        condition: {below: 0.2}
        for: 10m
        routes: [sales-slack]

Field validation happens here; references to the catalog, the routes and the
config (unknown KPIs, windows, scopes, routes, teams) are checked by
``alerts.rule_checks`` once the whole file is read.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from alerts.durations import Duration
from alerts.model import Severity
from alerts.routes import Route
from alerts.rule_checks import rules_file_problems
from schemas.calendar import in_quiet_hours
from schemas.catalog import Catalog, WindowName
from schemas.config import KpimonConfig, TimeZoneName
from schemas.events import Label
from schemas.goals import GoalName
from schemas.hours import BusinessDays, QuietHours, TimeOfDay, Weekday
from schemas.scopes import Scope, ScopeSelector
from schemas.yaml_source import load_yaml_model

RuleId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=80)]
RouteName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=80)]
Threshold = Annotated[float, Field(allow_inf_nan=False)]
ConditionKind = Literal["below", "above", "drop", "pace"]
Baseline = Literal["previous_period", "same_hour_last_week"]

_FROZEN = ConfigDict(extra="forbid", frozen=True)


class Drop(BaseModel):
    """The value fell by ``percent`` against the same KPI in a baseline period."""

    model_config = _FROZEN

    percent: float = Field(gt=0, lt=100)
    baseline: Baseline = "previous_period"


class Pace(BaseModel):
    """A count is behind the pace to a goal of the config: ``{goal: <goal name>}`` (schemas.goals).

    The goal gives the target, the period, the working hours and the business days;
    nothing of it is copied into the rule.
    """

    model_config = _FROZEN

    goal: GoalName

    @model_validator(mode="before")
    @classmethod
    def _goal_by_name(cls, data: object) -> object:
        if isinstance(data, dict) and isinstance(data.get("goal"), int | float) and not isinstance(data["goal"], bool):
            hours = f", hours: '{data['hours']}'" if isinstance(data.get("hours"), str) else ""
            raise ValueError(
                f"pace names a goal of the config, it no longer takes a number (got goal: {data['goal']}): add the "
                f"goal to the config's goals, e.g. {{name: rep-daily-calls, kpi: calls, scope: rep, period: day, "
                f"target: {data['goal']}{hours}}}, and write pace: {{goal: rep-daily-calls}} (docs/alerts.md)"
            )
        return data


class Condition(BaseModel):
    """Exactly one of ``below``, ``above``, ``drop`` or ``pace``."""

    model_config = _FROZEN

    below: Threshold | None = None
    above: Threshold | None = None
    drop: Drop | None = None
    pace: Pace | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Condition:
        given = [name for name in ("below", "above", "drop", "pace") if getattr(self, name) is not None]
        if len(given) != 1:
            got = f"got {', '.join(given)}" if given else "got none"
            raise ValueError(f"a condition is exactly one of below, above, drop or pace ({got})")
        return self

    @property
    def kind(self) -> ConditionKind:
        if self.below is not None:
            return "below"
        if self.above is not None:
            return "above"
        return "drop" if self.drop is not None else "pace"

    @property
    def breached_above(self) -> bool:
        """True for ``above``; ``below``, ``drop`` and ``pace`` breach when the value is under the threshold."""
        return self.above is not None


class AlertRule(BaseModel):
    """One rule: a KPI of the matching scopes in one window, a condition, and what to do when it holds."""

    model_config = _FROZEN

    id: RuleId
    name: str = Field(min_length=1)  # defaults to the id in words
    kpi: str
    window: WindowName
    scope: ScopeSelector = ScopeSelector()
    condition: Condition
    min_sample: float = Field(0.0, ge=0, allow_inf_nan=False)  # the ratio's denominator needed to judge
    confidence: float | None = Field(None, gt=0, lt=1)  # the Wilson bound must clear the threshold too
    for_seconds: Duration = Field(0.0, alias="for")
    recovery_margin: float = Field(0.0, ge=0, allow_inf_nan=False)
    repeat_interval_seconds: Duration | None = Field(None, alias="repeat_interval")
    quiet_hours: QuietHours | None = None
    business_days: BusinessDays | None = None
    timezone: TimeZoneName | None = None
    severity: Severity = "warning"
    routes: tuple[RouteName, ...] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _name_from_id(cls, data: object) -> object:
        if isinstance(data, dict) and not data.get("name") and isinstance(data.get("id"), str):
            words = data["id"].replace("-", " ")
            return {**data, "name": words[:1].upper() + words[1:]}
        return data

    @field_validator("repeat_interval_seconds")
    @classmethod
    def _positive_interval(cls, value: float | None) -> float | None:
        if value is not None and value <= 0:
            raise ValueError("repeat_interval must be more than 0 (leave it out to notify once per episode)")
        return value

    def zone_for(self, labels: Scope, config: KpimonConfig) -> ZoneInfo:
        """The rule's ``timezone``, else the scope's: its team's zone, the config's default for others."""
        if self.timezone is not None:
            return ZoneInfo(self.timezone)
        return config.timezone_of(labels.team) if labels.team else ZoneInfo(config.timezone)

    def is_quiet(self, now: float, tz: ZoneInfo) -> bool:
        """Inside the quiet hours or on a day that is not a business day: messages wait."""
        return in_quiet_hours(self.quiet_hours, self.business_days, now, tz)


class Digest(BaseModel):
    """A team's KPIs sent to one route every day or every week at a local time of the team.

    Each KPI is shown against the team's goal for it of the digest's period (``day`` for a
    daily digest, ``week`` for a weekly one: the weekly review), and the reps behind their
    goals of that period are listed (the config's ``goals``, as in force for the period).
    """

    model_config = _FROZEN

    team: Label
    cadence: Literal["daily", "weekly"]
    at: TimeOfDay
    weekday: Weekday | None = None
    kpis: tuple[str, ...] = Field(min_length=1)
    route: RouteName

    @model_validator(mode="before")
    @classmethod
    def _goals_from_the_config(cls, data: object) -> object:
        if isinstance(data, dict) and "goals" in data:
            raise ValueError(
                "a digest takes its goals from the config: remove goals here and add each under goals in the "
                "config, e.g. {name: team-weekly-calls, kpi: calls, scope: team, period: week, target: 400} "
                "(a weekly digest shows the team's and its reps' weekly goals, a daily one the daily goals)"
            )
        return data

    @model_validator(mode="after")
    def _weekday_for_weekly(self) -> Digest:
        if self.cadence == "weekly" and self.weekday is None:
            raise ValueError("a weekly digest needs a weekday (mon ... sun)")
        if self.cadence == "daily" and self.weekday is not None:
            raise ValueError("a daily digest has no weekday: remove it or make the cadence weekly")
        return self


def _web_address(url: str) -> str:
    if not re.match(r"^https?://[^\s/]+\S*$", url):
        raise ValueError(f"{url!r} is not an http:// or https:// address")
    return url


class RulesFile(BaseModel):
    """A rules file: where messages go (``routes``), when they are sent (``rules``) and the ``digests``."""

    model_config = _FROZEN

    grafana_url: Annotated[str, AfterValidator(_web_address)] | None = None  # messages link to the dashboards
    routes: dict[RouteName, Route] = Field(default_factory=dict)
    rules: tuple[AlertRule, ...] = ()
    digests: tuple[Digest, ...] = ()


def load_rules(path: Path, catalog: Catalog, config: KpimonConfig | None = None) -> RulesFile:
    """Read and validate a rules file against the catalog (and the config's teams and reps, when given).

    Raises ``schemas.yaml_source.ConfigFileError`` listing every problem as ``file:line:col: message``.
    """
    return load_yaml_model(path, RulesFile, cross_check=lambda rules: rules_file_problems(rules, catalog, config))
