"""alerts.digests: when a digest is due, which period it names, and who is behind a goal, by hand."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from alerts.digests import BehindGoal, DueDigest, digest_period, due_digest, reps_behind, skip_reason
from alerts.rules import Digest
from schemas.catalog import load_catalog
from schemas.goals import Goal
from schemas.scopes import Scope

BERLIN = ZoneInfo("Europe/Berlin")
DAILY = Digest.model_validate({"team": "emea", "cadence": "daily", "at": "08:30", "kpis": ["calls"], "route": "s"})
WEEKLY = Digest.model_validate(
    {"team": "emea", "cadence": "weekly", "at": "08:30", "weekday": "mon", "kpis": ["calls"], "route": "s"}
)


def berlin(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN).timestamp()


@pytest.mark.parametrize(
    ("digest", "now", "period", "send_at"),
    [
        (DAILY, "2026-11-25 08:30", "2026-11-24", "2026-11-25 08:30"),
        (DAILY, "2026-11-25 14:29", "2026-11-24", "2026-11-25 08:30"),
        (DAILY, "2026-11-25 14:30", None, None),  # six hours late: skipped
        (DAILY, "2026-11-25 08:29", None, None),  # yesterday's was sent (grace over), today's not yet due
        (DAILY, "2026-03-29 08:30", "2026-03-28", "2026-03-29 08:30"),  # the day clocks go forward
        (WEEKLY, "2026-11-30 09:00", "2026-W48", "2026-11-30 08:30"),  # Monday: last week is ISO week 48
        (WEEKLY, "2026-12-01 09:00", None, None),  # Tuesday
    ],
)
def test_due_digest(digest: Digest, now: str, period: str | None, send_at: str | None) -> None:
    due = due_digest(digest, berlin(now), BERLIN)
    if period is None:
        assert due is None
    else:
        assert due is not None
        assert (due.period, due.send_at) == (period, berlin(send_at or ""))
        assert due.first_day.isoformat() == (period if digest is DAILY else "2026-11-23")  # week 48's Monday
        assert due.id == f"digest/emea/{digest.cadence}/{period}"


@pytest.mark.parametrize(
    ("period", "sent"),
    [
        ({}, False),  # the team had no bucket at all in the period
        ({"calls": 0.0, "revenue": 0.0}, False),  # buckets, but nothing in them
        ({"calls": 0.0, "leads": 3.0}, True),  # no calls, but data: a digest of zero calls is news
        ({"deals_won": -1.0}, True),  # a deal moved away: a change is data
    ],
)
def test_a_digest_is_skipped_when_the_team_had_no_data_at_all_in_the_period(
    period: dict[str, float], sent: bool
) -> None:
    due = DueDigest(DAILY, "2026-11-24", berlin("2026-11-25 08:30"), date(2026, 11, 24))
    reason = skip_reason(due, period)
    if sent:
        assert reason is None
    else:
        assert reason == "Daily digest for team emea: 2026-11-24: not sent, team emea had no data at all in 2026-11-24"


WEEKLY_CALLS = Goal(name="rep-weekly-calls", kpi="calls", scope="rep", period="week", target=100)
FEW_LOSSES = Goal(name="few-losses", kpi="deals_lost", scope="rep", period="week", target=5)
CATALOG = load_catalog()


def rep(name: str) -> Scope:
    return Scope(team="emea", rep=name)


def test_reps_behind_a_goal_furthest_first() -> None:
    values = [(rep("anna"), 120.0), (rep("jan"), 60.0), (rep("lukas"), None), (rep("sofia"), 100.0)]
    behind = reps_behind(WEEKLY_CALLS, CATALOG.kpi("calls"), values)
    # sofia's 100 of 100 is the goal met; lukas has no value at all: furthest behind
    assert [(row.rep, row.value) for row in behind] == [("lukas", None), ("jan", 60.0)]
    assert behind[1] == BehindGoal("jan", "emea", "rep-weekly-calls", "Calls", "count", 60.0, 100.0)


def test_reps_behind_a_goal_where_down_is_good() -> None:
    values = [(rep("a"), 7.0), (rep("b"), 3.0), (rep("c"), None), (rep("d"), 9.0)]
    behind = reps_behind(FEW_LOSSES, CATALOG.kpi("deals_lost"), values)
    assert [(row.rep, row.value) for row in behind] == [("c", None), ("d", 9.0), ("a", 7.0)]


def test_the_period_of_a_digests_goals() -> None:
    assert (digest_period(DAILY), digest_period(WEEKLY)) == ("day", "week")
