"""schemas.goals: the goal model in the config, which goals cover a scope, the entry in force, pace and attainment.

Expected values are worked out by hand in the comments. 2026's DST changes: Europe/Berlin
on Sunday March 29 (23-hour day) and Sunday October 25 (25-hour day); America/New_York on
Sunday November 1 (25-hour day). December 7, 2026 is a Monday.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from schemas.catalog import Catalog, load_catalog
from schemas.config import KpimonConfig, load_config
from schemas.goals import (
    Goal,
    attainment,
    entry_in_force,
    expected_by_now,
    goals_for_scope,
    goals_in_force,
)
from schemas.scopes import OVERALL, Scope
from schemas.yaml_source import ConfigFileError

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def goal(**fields: object) -> Goal:
    return Goal.model_validate({"name": "g", "kpi": "calls", "scope": "rep", "period": "day", "target": 20, **fields})


def local(tz: ZoneInfo, year: int, month: int, day: int, hour: int, minute: int = 0) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=tz).timestamp()


def utc(year: int, month: int, day: int, hour: int) -> float:
    return datetime(year, month, day, hour, tzinfo=UTC).timestamp()


WEEKLY_CALLS = goal(
    name="weekly-calls",
    period="week",
    target=50,
    hours="09:00-17:00",
    business_days=["mon", "tue", "wed", "thu", "fri"],
)


def test_tuesday_14_00_weekly_goal_working_hours_and_days() -> None:
    # Mon-Fri 09:00-17:00: 5 x 8 h = 40 h counted; by Tuesday 14:00, Monday's 8 h and Tuesday's 5 h are gone:
    # 13/40 of 50 = 16.25 calls expected; 12 calls made = 12/50 = 0.24 of the goal.
    now = local(BERLIN, 2026, 12, 8, 14)
    assert expected_by_now(WEEKLY_CALLS, now, BERLIN) == pytest.approx(16.25)
    assert attainment(12, WEEKLY_CALLS) == pytest.approx(0.24)


@pytest.mark.parametrize(
    ("fields", "now", "tz", "expected"),
    [
        # business days only: 5 x 24 h counted, Monday's 24 h + Tuesday's 14 h gone: 38/120 x 50
        (
            {"period": "week", "target": 50, "business_days": ["mon", "tue", "wed", "thu", "fri"]},
            local(BERLIN, 2026, 12, 8, 14),
            BERLIN,
            50 * 38 / 120,
        ),
        # every hour of the week: Monday 24 h + Tuesday 14 h of 168 h
        ({"period": "week", "target": 168}, local(BERLIN, 2026, 12, 8, 14), BERLIN, 38.0),
        # before the working day starts nothing is expected, after it ends all of it
        ({"hours": "09:00-17:00"}, local(BERLIN, 2026, 12, 8, 8, 59), BERLIN, 0.0),
        ({"hours": "09:00-17:00"}, local(BERLIN, 2026, 12, 8, 17, 30), BERLIN, 20.0),
        ({"hours": "09:00-17:00"}, local(BERLIN, 2026, 12, 8, 11), BERLIN, 5.0),  # 2 h of 8 h of 20
        # a Saturday is not a business day: nothing counted, nothing expected
        ({"business_days": ["mon", "tue", "wed", "thu", "fri"]}, local(BERLIN, 2026, 12, 12, 15), BERLIN, 0.0),
        # March 29 in Berlin has 23 hours: 00:00 CET (23:00 UTC the day before) to 12:00 CEST (10:00 UTC) is 11 h
        ({"target": 23}, local(BERLIN, 2026, 3, 29, 12), BERLIN, 11.0),
        # October 25 has 25 hours: 00:00 CEST (22:00 UTC the day before) to 12:00 CET (11:00 UTC) is 13 h
        ({"target": 25}, local(BERLIN, 2026, 10, 25, 12), BERLIN, 13.0),
        # working hours on the short day are still 8 hours on the wall clock: 09:00-13:00 is half of them
        ({"target": 20, "hours": "09:00-17:00"}, local(BERLIN, 2026, 3, 29, 13), BERLIN, 10.0),
        # a month: December has 744 h; at 04:00 on December 1 in Berlin 4 h are gone
        ({"scope": "team", "period": "month", "target": 744}, utc(2026, 12, 1, 3), BERLIN, 4.0),
        # the same instant is November 30, 22:00 in New York: November there has 721 h (November 1 has 25),
        # from 04:00 UTC on November 1 to 03:00 UTC on December 1 719 h are gone
        ({"scope": "team", "period": "month", "target": 721}, utc(2026, 12, 1, 3), NEW_YORK, 719.0),
        # a quarter: Q4 2026 in Berlin from October 1 00:00 CEST (September 30, 22:00 UTC) to January 1 00:00 CET
        # (December 31, 23:00 UTC) is 92 days + 1 h = 2209 h; by October 2, 22:00 UTC 48 h are gone
        ({"scope": "all", "period": "quarter", "target": 2209}, utc(2026, 10, 2, 22), BERLIN, 48.0),
    ],
)
def test_expected_by_now(fields: dict[str, object], now: float, tz: ZoneInfo, expected: float) -> None:
    assert expected_by_now(goal(**fields), now, tz) == pytest.approx(expected)


def test_attainment_beyond_the_goal() -> None:
    assert attainment(30, goal(target=20)) == pytest.approx(1.5)


ALICE = Scope(team="emea", rep="alice")
BOB = Scope(team="amer", rep="bob")
EMEA = Scope(team="emea")


@pytest.mark.parametrize(
    ("fields", "scope", "applies"),
    [
        ({}, ALICE, True),  # every rep
        ({}, BOB, True),
        ({}, EMEA, False),  # a rep goal does not cover the team
        ({"team": "emea"}, ALICE, True),  # reps of emea
        ({"team": "emea"}, BOB, False),
        ({"rep": "alice"}, ALICE, True),
        ({"rep": "alice"}, BOB, False),
        ({"scope": "team"}, EMEA, True),
        ({"scope": "team", "team": "amer"}, EMEA, False),
        ({"scope": "all", "kpi": "revenue"}, OVERALL, True),
        ({"scope": "all", "kpi": "revenue"}, EMEA, False),
        ({"scope": "channel", "kpi": "leads"}, Scope(channel="web"), True),
        ({"scope": "channel", "kpi": "leads", "channel": "ads"}, Scope(channel="web"), False),
        ({"scope": "campaign", "kpi": "leads", "campaign": "spring sale"}, Scope(campaign="spring sale"), True),
    ],
)
def test_which_goals_cover_a_scope(fields: dict[str, object], scope: Scope, applies: bool) -> None:
    entry = goal(**fields)
    assert entry.applies_to(scope) is applies
    assert goals_for_scope([entry], scope) == ((entry,) if applies else ())


OLD = goal(name="weekly-calls", period="week", target=40)
RAISED = goal(name="weekly-calls", period="week", target=50, since="2026-12-09")  # decided on a Wednesday


@pytest.mark.parametrize(
    ("now", "target"),
    [
        (local(BERLIN, 2026, 12, 9, 12), 40),  # the week of the change keeps the old goal
        (local(BERLIN, 2026, 12, 13, 23, 59), 40),
        (local(BERLIN, 2026, 12, 14, 0), 50),  # from the next Monday on
        (local(BERLIN, 2027, 3, 1, 0), 50),
    ],
)
def test_a_changed_goal_applies_from_the_next_period(now: float, target: float) -> None:
    (in_force,) = goals_in_force([RAISED, OLD], ALICE, now, BERLIN)
    assert in_force.target == target


def test_since_on_a_period_start_applies_to_that_period_and_a_goal_not_yet_in_force_is_left_out() -> None:
    monthly = goal(name="m", period="month", target=10, since="2026-12-01")
    assert entry_in_force([monthly], date(2026, 12, 1)) == monthly
    assert entry_in_force([monthly], date(2026, 11, 1)) is None
    assert goals_in_force([monthly], ALICE, local(BERLIN, 2026, 11, 30, 23), BERLIN) == ()


def test_period_start_of_a_change_is_in_the_scopes_zone() -> None:
    # Monday December 14, 02:00 in Berlin is still Sunday 20:00 in New York: the old goal there, the new in Berlin
    now = local(BERLIN, 2026, 12, 14, 2)
    (berlin,) = goals_in_force([OLD, RAISED], ALICE, now, BERLIN)
    (new_york,) = goals_in_force([OLD, RAISED], BOB, now, NEW_YORK)
    assert (berlin.target, new_york.target) == (50, 40)


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"target": 0}, "greater than 0"),
        ({"target": -5}, "greater than 0"),
        ({"target": float("inf")}, "finite number"),
        ({"target": 2e15}, "less than or equal to 1000000000000000"),
        ({"period": "year"}, "'day', 'week', 'month' or 'quarter'"),
        ({"scope": "team", "rep": "alice"}, "a scope of kind 'team' has no rep label (kind 'team' takes only team)"),
        ({"scope": "all", "team": "emea"}, "a scope of kind 'all' has no team label (kind 'all' takes no labels)"),
        ({"name": "has space"}, "String should match pattern"),
        ({"business_days": []}, "no business days"),
        ({"business_days": ["mon", "mon"]}, "a day is listed twice"),
        ({"hours": "17:00-09:00"}, "working hours must end after they start"),
        ({"since": "next week"}, "valid date"),
        ({"colour": "red"}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_goal(fields: dict[str, object], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        goal(**fields)


CONFIG = """\
timezone: Europe/Berlin
teams:
  emea: {timezone: Europe/Berlin}
  amer: {timezone: America/New_York}
reps:
  alice: {team: emea}
  bob: {team: amer}
goals:
"""


def config_problems(tmp_path: Path, goals: str, catalog: Catalog) -> list[str]:
    path = tmp_path / "kpimon.yaml"
    path.write_text(CONFIG + goals, encoding="utf-8")
    with pytest.raises(ConfigFileError) as info:
        load_config(path, catalog)
    return [problem.removeprefix(f"{path}:") for problem in info.value.problems]


def test_goals_load_from_the_config(tmp_path: Path, catalog: Catalog) -> None:
    path = tmp_path / "kpimon.yaml"
    path.write_text(
        CONFIG
        + "  - {name: rep-daily-calls, kpi: calls, scope: rep, period: day, target: 20, hours: '09:00-17:00'}\n"
        + "  - {name: emea-revenue, kpi: revenue, scope: team, team: emea, period: month, target: 250000}\n",
        encoding="utf-8",
    )
    config = load_config(path, catalog)
    assert [entry.name for entry in config.goals] == ["rep-daily-calls", "emea-revenue"]
    assert config.goals[1].window == "month"
    assert KpimonConfig().goals == ()


@pytest.mark.parametrize(
    ("goals", "problems"),
    [
        (
            "  - {name: w, kpi: win_rate, scope: team, period: month, target: 0.3}\n",
            [
                "9:20: goals.0.kpi: KPI 'win_rate' (deals_won / (deals_won + deals_lost)) does not add up over "
                "time, so it has no target or pace: goals are for counts and sums (set the goal on its numerator, "
                "deals_won, or alert on the rate with 'below')"
            ],
        ),
        (
            "  - {name: c, kpi: calls_made, period: day, target: 5}\n",
            ["9:20: goals.0.kpi: unknown KPI 'calls_made' (the KPIs are listed in docs/kpis.md)"],
        ),
        (
            "  - {name: c, kpi: calls, scope: channel, period: day, target: 5}\n",
            ["9:34: goals.0.scope: KPI 'calls' is not kept per channel (its scopes: all, team, rep)"],
        ),
        (
            "  - {name: c, kpi: calls, scope: team, team: apac, period: day, target: 5}\n",
            ["9:46: goals.0.team: team 'apac' is not defined under teams (amer, emea)"],
        ),
        (
            "  - {name: c, kpi: calls, scope: rep, rep: carol, period: day, target: 5}\n",
            ["9:44: goals.0.rep: rep 'carol' is not defined under reps"],
        ),
        (
            "  - {name: c, kpi: calls, scope: rep, team: emea, rep: bob, period: day, target: 5}\n",
            ["9:45: goals.0.team: rep 'bob' is in team 'amer', not 'emea'"],
        ),
        (
            "  - {name: c, kpi: calls, period: day, target: 5}\n  - {name: c, kpi: calls, period: day, target: 6}\n",
            [
                "10:12: goals.1.name: goal 'c' has two entries without since: to change a goal, add an entry "
                "with a later since"
            ],
        ),
        (
            "  - {name: c, kpi: calls, period: day, target: 5}\n"
            "  - {name: c, kpi: calls, period: week, target: 6, since: 2026-12-09}\n",
            [
                "10:35: goals.1.period: goal 'c' is defined before with another period: entries of one goal "
                "differ only in target, hours, business_days and since (give this goal another name)"
            ],
        ),
    ],
)
def test_config_goal_problems_with_line_and_column(
    tmp_path: Path, catalog: Catalog, goals: str, problems: list[str]
) -> None:
    assert config_problems(tmp_path, goals, catalog) == problems
