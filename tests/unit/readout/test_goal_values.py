"""streams.readout.goal_values: the goal in force per scope, each period in the scope's own time zone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from schemas.config import KpimonConfig
from schemas.scopes import OVERALL, Scope
from streams.readout.goal_values import GoalValue, goal_values

# Tuesday December 8, 2026, 13:00 UTC: 14:00 in Berlin, 08:00 in New York.
NOW = datetime(2026, 12, 8, 13, tzinfo=UTC).timestamp()
CONFIG = KpimonConfig.model_validate(
    {
        "timezone": "UTC",
        "teams": {"emea": {"timezone": "Europe/Berlin"}, "amer": {"timezone": "America/New_York"}},
        "reps": {"anna": {"team": "emea"}, "mike": {"team": "amer"}},
        "goals": [
            {
                "name": "rep-calls",
                "kpi": "calls",
                "scope": "rep",
                "period": "day",
                "target": 20,
                "hours": "09:00-17:00",
            },
            {
                "name": "emea-revenue",
                "kpi": "revenue",
                "scope": "team",
                "team": "emea",
                "period": "month",
                "target": 744,
            },
            {"name": "channel-leads", "kpi": "leads", "scope": "channel", "period": "week", "target": 168},
            {"name": "ads-leads", "kpi": "leads", "scope": "channel", "channel": "ads", "period": "week", "target": 84},
            {"name": "team-calls", "kpi": "calls", "scope": "team", "period": "week", "target": 100},
            {
                "name": "team-calls",
                "kpi": "calls",
                "scope": "team",
                "period": "week",
                "target": 1,
                "since": "2026-12-09",
            },
        ],
    }
)
ANNA, MIKE = Scope(team="emea", rep="anna"), Scope(team="amer", rep="mike")


def values(seen: list[Scope]) -> list[tuple[str, Scope, float, float]]:
    found = [value for value in goal_values(CONFIG, seen, NOW, scopes_per_step=2) if value is not None]
    return [(value.goal.name, value.scope, value.goal.target, value.expected) for value in found]


def test_goals_per_scope_with_their_pace() -> None:
    web, unassigned = Scope(channel="web"), Scope(team="unassigned", rep="zoe")
    assert values([web, unassigned, OVERALL]) == [
        # 14:00 in Berlin: 5 of the 8 working hours gone; 08:00 in New York: none yet
        ("rep-calls", MIKE, 20, 0.0),
        ("rep-calls", ANNA, 20, pytest.approx(12.5)),
        ("rep-calls", unassigned, 20, pytest.approx(10.0)),  # a team not in the config: UTC, 4 of 8 hours
        # December 1, 00:00 in Berlin is November 30, 23:00 UTC: 7 days and 14 hours gone, 182 of 744 hours
        ("emea-revenue", Scope(team="emea"), 744, pytest.approx(182)),
        # the week from Monday 00:00 UTC: 37 of 168 hours
        ("channel-leads", web, 168, pytest.approx(37)),
        ("ads-leads", Scope(channel="ads"), 84, pytest.approx(18.5)),  # pinned: served before any ads lead
        # the change of Wednesday applies from next Monday; New York's week: 32 of 168 hours
        ("team-calls", Scope(team="amer"), 100, pytest.approx(100 * 32 / 168)),
        ("team-calls", Scope(team="emea"), 100, pytest.approx(100 * 38 / 168)),
    ]


def test_no_goals_nothing_to_do() -> None:
    assert list(goal_values(KpimonConfig(), [OVERALL], NOW)) == []


def test_steps_come_every_few_scopes() -> None:
    steps = list(goal_values(CONFIG, [], NOW, scopes_per_step=2))
    assert len(steps) - steps.count(None) == 6
    assert steps.count(None) == 3  # one after every two scopes looked at


def test_config_scopes() -> None:
    assert CONFIG.scopes() == [OVERALL, Scope(team="emea"), Scope(team="amer"), ANNA, MIKE]
    assert GoalValue(OVERALL, CONFIG.goals[0], 1.0).scope == OVERALL
