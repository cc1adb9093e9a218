"""Progress against goals: a bar's fill (value / target) and its pace marker (expected by now / target). Pure.

Goals come from the config the board is given (``goals:``, ``schemas.goals``); the board picks,
per scope, the goal entry in force now for a KPI and period, and measures the KPI's value in the
period's to-date window against it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from schemas.goals import Goal, GoalPeriod, attainment, expected_by_now, goals_in_force
from schemas.scopes import Scope


@dataclass(frozen=True)
class Progress:
    goal: Goal
    value: float
    expected: float  # the pace: what the target needs by now

    @property
    def ratio(self) -> float:
        return attainment(self.value, self.goal)

    @property
    def pace(self) -> float:
        return self.expected / self.goal.target

    @property
    def ahead(self) -> bool:
        return self.value >= self.expected

    def as_json(self, text: str, note: str = "") -> dict[str, Any]:
        return {"ratio": self.ratio, "pace": self.pace, "target": self.goal.target, "text": text, "note": note}


def goal_for(
    goals: Sequence[Goal], scope: Scope, kpi: str, period: GoalPeriod, now: float, tz: ZoneInfo
) -> Goal | None:
    """The first goal (config order) in force now for ``kpi`` over ``period`` that covers ``scope``."""
    return next(
        (goal for goal in goals_in_force(goals, scope, now, tz) if goal.kpi == kpi and goal.period == period), None
    )


def progress_of(goal: Goal | None, value: float | None, now: float, tz: ZoneInfo) -> Progress | None:
    if goal is None:
        return None
    return Progress(goal, value or 0.0, expected_by_now(goal, now, tz))


def pace_word(progress: Progress) -> str:
    """Ahead or behind the pace, in words (the bar's colour never says it alone)."""
    return "▲ ahead of pace" if progress.ahead else "▼ behind pace"
