"""tests.reference.offline_demo: the offline funnel over a window and the activity of a day, checked by hand."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.reference.offline_demo import activity_on, calendar_days_start, funnel_between

BERLIN, NEW_YORK = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")


def event(event_id: str, kind: str, occurred_at: str, **fields: Any) -> dict[str, Any]:
    return {"event_id": event_id, "type": kind, "occurred_at": occurred_at, "source": "test", **fields}


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


FUNNEL = [
    event("l1", "lead.created", "2026-12-01T10:00:00Z", lead_id="a"),
    event("l2", "lead.qualified", "2026-12-02T10:00:00Z", lead_id="a", stage="mql"),
    event("l2", "lead.qualified", "2026-12-02T10:00:00Z", lead_id="a", stage="mql"),  # a copy: once
    event("l3", "lead.qualified", "2026-12-03T10:00:00Z", lead_id="a", stage="mql"),  # again: the first counts
    event("l4", "lead.created", "2026-11-01T10:00:00Z", lead_id="b"),  # before the window
    event("l5", "lead.qualified", "2026-12-02T11:00:00Z", lead_id="b", stage="sql"),
    event("d1", "opportunity.created", "2026-12-04T10:00:00Z", deal_id="x"),
    event("d2", "deal.won", "2026-12-05T10:00:00Z", deal_id="x", amount=1000.10, currency="USD"),
    event("d3", "opportunity.created", "2026-12-04T11:00:00Z", deal_id="y"),
    event("d4", "deal.lost", "2026-12-05T11:00:00Z", deal_id="y"),
    event("d5", "deal.won", "2026-12-06T11:00:00Z", deal_id="y", amount=50.0, currency="EUR"),  # won later
    event("d6", "deal.lost", "2026-12-05T12:00:00Z", deal_id="z"),
    event("d7", "deal.won", "2026-12-08T12:00:00Z", deal_id="w", amount=7.0, currency="EUR"),  # after the window
]


def test_the_funnel_of_a_window_counts_first_times_and_latest_outcomes() -> None:
    rates = {"EUR": Decimal(1), "USD": Decimal("0.92")}
    funnel = funnel_between(FUNNEL, at("2026-11-20T00:00:00Z"), at("2026-12-07T00:00:00Z"), rates)
    assert funnel == {
        "leads": 1,
        "mqls": 1,
        "sqls": 1,
        "opportunities_created": 2,
        "deals_won": 2,
        "deals_lost": 1,
        "revenue": Decimal("1000.10") * Decimal("0.92") + Decimal(50),
        "win_rate": 2 / 3,
    }
    assert funnel_between([], 0, 1, rates)["win_rate"] is None


@pytest.mark.parametrize(
    ("now", "zone", "start"),
    [
        ("2026-12-07T10:41:00+00:00", ZoneInfo("UTC"), "2026-11-08T00:00:00+00:00"),
        ("2026-12-07T02:00:00+00:00", NEW_YORK, "2026-11-07T00:00:00-05:00"),  # still the 6th in New York
        ("2026-04-05T12:00:00+02:00", BERLIN, "2026-03-07T00:00:00+01:00"),  # across the change to summer time
    ],
)
def test_thirty_calendar_days_start_at_local_midnight(now: str, zone: ZoneInfo, start: str) -> None:
    assert calendar_days_start(at(now), 30, zone) == at(start)


def test_activity_counts_each_rep_s_events_of_the_day_in_the_team_s_zone() -> None:
    events = [
        event("c1", "call.logged", "2026-12-07T09:00:00Z", team="emea", rep_id="anna"),
        event("c1", "call.logged", "2026-12-07T09:00:00Z", team="emea", rep_id="anna"),  # a copy
        event("c2", "call.logged", "2026-12-06T23:30:00Z", team="emea", rep_id="anna"),  # 00:30 in Berlin
        event("c3", "call.logged", "2026-12-07T04:00:00Z", team="amer", rep_id="mike"),  # the 6th in New York
        event("e1", "email.sent", "2026-12-07T15:00:00Z", team="amer", rep_id="mike"),
        event("r1", "email.replied", "2026-12-07T15:00:00Z", team="amer", rep_id="mike"),  # not activity asked
    ]
    day = {"emea": date(2026, 12, 7), "amer": date(2026, 12, 7)}
    zones = {"emea": BERLIN, "amer": NEW_YORK}
    assert activity_on(events, day, zones) == {("anna", "call.logged"): 2, ("mike", "email.sent"): 1}
