"""Goals: a target for a KPI per scope and calendar period, its pace by now and its attainment. Pure.

In the config (``deploy/examples/kpimon.yaml``; every field in docs/architecture.md, "Goals")::

    goals:
      - name: rep-daily-calls        # the id alert rules, dashboards and URLs use
        kpi: calls
        scope: rep                   # every rep (of team emea only, with team: emea)
        period: day                  # day, week, month or quarter, in the scope's time zone
        target: 20
        hours: "09:00-17:00"         # pace counts working time only (optional)
        business_days: [mon, tue, wed, thu, fri]
      - name: emea-monthly-revenue
        kpi: revenue
        scope: team
        team: emea                   # one team; without it, each team has the target
        period: month
        target: 250000

A goal's value is the KPI's value in the to-date window of its period (``today``,
``week``, ``month``, ``quarter``), so only KPIs that add up have goals: counts and
sums (``calls``, ``revenue``), not ratios such as ``win_rate`` (no pace leads to a
rate, and a rate does not add up over workers); a goal on a ratio is refused with
the advice to set it on the ratio's numerator.

Changing a goal: add an entry with the same ``name`` and a ``since`` date (the day
the change was decided). An entry is in force for the periods that start on or
after its ``since`` (so a change made on a Wednesday applies to a weekly goal from
the next Monday); for each period the entry with the latest ``since`` not after the
period's first day wins, an entry without ``since`` being in force from the start.
The old entries stay in the file, so past periods keep their own targets: the
weekly digest judges last week against the goal of last week, and Prometheus keeps
the attainment it recorded.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from functools import cached_property
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.calendar import CalendarWindow, period_days, period_elapsed
from schemas.catalog import Catalog
from schemas.catalog import Identifier as KpiId
from schemas.events import Identifier, Label
from schemas.hours import BusinessDays, WorkingHours
from schemas.scopes import Scope, ScopeKind, ScopeSelector, check_scope_labels
from schemas.yaml_source import Location

GoalName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=80)]
GoalPeriod = Literal["day", "week", "month", "quarter"]
PERIOD_WINDOWS: dict[GoalPeriod, CalendarWindow] = {
    "day": "today",
    "week": "week",
    "month": "month",
    "quarter": "quarter",
}
MAX_TARGET = 1e15  # above any count or sum a scope reaches in a quarter (money amounts are at most 1e12 each)
Target = Annotated[float, Field(gt=0, le=MAX_TARGET, allow_inf_nan=False)]
# What the entries of one goal (one name) must share; only the target, hours and days may change with ``since``.
_SHARED_BY_ENTRIES = ("kpi", "scope", "team", "rep", "channel", "campaign", "period")


class Goal(BaseModel):
    """A target for ``kpi`` in each matching scope and each ``period``, from ``since`` (see the module text)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: GoalName
    kpi: KpiId
    scope: ScopeKind = "all"
    team: Label | None = None
    rep: Label | None = None
    channel: Label | None = None
    campaign: Identifier | None = None
    period: GoalPeriod
    target: Target
    hours: WorkingHours | None = None  # only working time counts toward the pace
    business_days: BusinessDays | None = None  # only these days count toward the pace
    since: date | None = None

    @model_validator(mode="after")
    def _pins_fit_scope(self) -> Goal:
        check_scope_labels(self.scope, self._pins)
        return self

    @property
    def _pins(self) -> dict[str, str | None]:
        return {"team": self.team, "rep": self.rep, "channel": self.channel, "campaign": self.campaign}

    @cached_property
    def selector(self) -> ScopeSelector:
        """The scopes the goal covers: every scope of its kind, narrowed by the labels pinned (built once)."""
        return ScopeSelector.model_validate({"kind": self.scope, **self._pins})

    @property
    def window(self) -> CalendarWindow:
        """The to-date window whose KPI value the goal is measured on: today, week, month or quarter."""
        return PERIOD_WINDOWS[self.period]

    def applies_to(self, scope: Scope) -> bool:
        return self.selector.matches(scope)


def goals_for_scope(goals: Iterable[Goal], scope: Scope) -> tuple[Goal, ...]:
    """The goal entries (of every ``since``) that cover ``scope``."""
    return tuple(goal for goal in goals if goal.applies_to(scope))


def entry_in_force(entries: Iterable[Goal], first_day: date) -> Goal | None:
    """Of one goal's entries, the one in force for the period starting on ``first_day``; None before any."""
    in_force = [entry for entry in entries if entry.since is None or entry.since <= first_day]
    return max(in_force, key=lambda entry: entry.since or date.min, default=None)


def goal_entries(goals: Iterable[Goal]) -> dict[str, tuple[Goal, ...]]:
    """The entries of each goal name, in config order (they share KPI, scope and period: ``goal_problems``)."""
    by_name: dict[str, list[Goal]] = {}
    for goal in goals:
        by_name.setdefault(goal.name, []).append(goal)
    return {name: tuple(entries) for name, entries in by_name.items()}


def goals_in_force(goals: Iterable[Goal], scope: Scope, now: float, tz: ZoneInfo) -> tuple[Goal, ...]:
    """One entry per goal name covering ``scope``: the one in force for the period holding ``now`` (local to ``tz``).

    ``tz`` is the scope's time zone (``KpimonConfig.timezone_of(scope.team)``); names keep their config order.
    """
    chosen = (
        entry_in_force(entries, period_days(entries[0].window, now, tz)[0])
        for entries in goal_entries(goals_for_scope(goals, scope)).values()
    )
    return tuple(goal for goal in chosen if goal is not None)


def goals_of_period(goals: Iterable[Goal], scope: Scope, period: GoalPeriod, first_day: date) -> tuple[Goal, ...]:
    """The goals of ``period`` covering ``scope``, each as in force for the period that starts on ``first_day``."""
    chosen = (
        entry_in_force(entries, first_day)
        for entries in goal_entries(goals_for_scope(goals, scope)).values()
        if entries[0].period == period
    )
    return tuple(goal for goal in chosen if goal is not None)


def goal_in_force(goals: Iterable[Goal], name: str, scope: Scope, now: float, tz: ZoneInfo) -> Goal | None:
    """The entry of goal ``name`` in force for ``scope`` at ``now``; None when it does not cover the scope (yet)."""
    return next((goal for goal in goals_in_force(goals, scope, now, tz) if goal.name == name), None)


def expected_by_now(goal: Goal, now: float, tz: ZoneInfo) -> float:
    """The pace value: the target times the share of the period's counted time gone by at ``now``.

    Counted time is the working ``hours`` of the ``business_days`` when given, else
    every hour of every day, on the local wall clock of ``tz`` (a DST day has 23 or
    25 hours); see ``schemas.calendar.period_elapsed``.
    """
    return goal.target * period_elapsed(goal.window, now, tz, goal.hours, goal.business_days)


def attainment(value: float, goal: Goal) -> float:
    """How much of the target is reached: ``value / target`` (1.0 = goal met; above 1 = beyond it)."""
    return value / goal.target


def goal_problems(goals: Sequence[Goal], catalog: Catalog) -> list[tuple[Location, str]]:
    """Goals that name an unknown KPI or one without a target, and names whose entries disagree or repeat."""
    problems: list[tuple[Location, str]] = []
    first_of: dict[str, Goal] = {}
    sinces: dict[str, set[date | None]] = {}
    for index, goal in enumerate(goals):
        problems.extend((("goals", index, *where), message) for where, message in _kpi_problems(goal, catalog))
        first = first_of.setdefault(goal.name, goal)
        differing = [field for field in _SHARED_BY_ENTRIES if getattr(goal, field) != getattr(first, field)]
        if differing:
            problems.append(
                (
                    ("goals", index, differing[0]),
                    f"goal {goal.name!r} is defined before with another {differing[0]}: entries of one goal differ "
                    "only in target, hours, business_days and since (give this goal another name)",
                )
            )
        seen = sinces.setdefault(goal.name, set())
        if goal.since in seen:
            when = f"since {goal.since}" if goal.since else "without since"
            problems.append(
                (
                    ("goals", index, "name"),
                    f"goal {goal.name!r} has two entries {when}: to change a goal, add an entry with a later since",
                )
            )
        seen.add(goal.since)
    return problems


def _kpi_problems(goal: Goal, catalog: Catalog) -> list[tuple[Location, str]]:
    try:
        kpi = catalog.kpi(goal.kpi)
    except KeyError:
        return [(("kpi",), f"unknown KPI {goal.kpi!r} (the KPIs are listed in docs/kpis.md)")]
    if not kpi.adds_up_over_time():
        advice = ""
        parts = kpi.formula.ratio_parts()
        if parts is not None:
            advice = f" (set the goal on its numerator, {parts[0].source}, or alert on the rate with 'below')"
        return [
            (
                ("kpi",),
                f"KPI {goal.kpi!r} ({kpi.formula.source}) does not add up over time, so it has no target or pace: "
                f"goals are for counts and sums{advice}",
            )
        ]
    problems: list[tuple[Location, str]] = []
    if goal.scope not in kpi.scopes:
        problems.append(
            (("scope",), f"KPI {goal.kpi!r} is not kept per {goal.scope} (its scopes: {', '.join(kpi.scopes)})")
        )
    if goal.window not in kpi.windows:
        problems.append(
            (("period",), f"KPI {goal.kpi!r} has no {goal.window} window (its windows: {', '.join(kpi.windows)})")
        )
    return problems
