"""The screens from Prometheus' results, against numbers worked out by hand."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from schemas.config import KpimonConfig, RepConfig, TeamConfig
from schemas.goals import Goal
from streams.board.screens import BoardData, Results, board_screens
from streams.board.ticker import Win
from streams.board.views import board_view

BERLIN = ZoneInfo("Europe/Berlin")
GOALS = (
    Goal(name="calls", kpi="calls", scope="rep", period="day", target=160, hours="09:00-17:00"),
    Goal(name="revenue", kpi="revenue", scope="team", team="emea", period="month", target=310_000),
)
CONFIG = KpimonConfig(
    timezone="UTC",
    teams={"emea": TeamConfig(timezone="Europe/Berlin", name="EMEA"), "amer": TeamConfig(name="Americas")},
    reps={
        "anna": RepConfig(team="emea", name="Anna"),
        "jan": RepConfig(team="emea", name="Jan"),
        "mike": RepConfig(team="amer", name="Mike"),
    },
    reporting_currency="EUR",
    goals=GOALS,
)
# Monday 14 December 2026, 13:00 in Berlin: half of the 09:00-17:00 day, 13 days and 13 hours of 31 in December
NOW = datetime(2026, 12, 14, 13, 0, tzinfo=BERLIN).timestamp()


def rep_samples(values: dict[str, float]) -> list[tuple[dict[str, str], float]]:
    return [({"team": CONFIG.reps[rep].team, "rep": rep}, value) for rep, value in values.items()]


def one(value: float) -> list[tuple[dict[str, str], float]]:
    return [({}, value)]


def stage_samples(values: dict[str, float]) -> list[tuple[dict[str, str], float]]:
    return [({"stage": stage}, value) for stage, value in values.items()]


RESULTS: Results = {
    "activity:calls": rep_samples({"anna": 40, "jan": 96, "mike": 10}),
    "activity:meetings_booked": rep_samples({"anna": 2}),
    "funnel:leads": one(40),
    "funnel:mqls": one(10),
    "funnel:opportunities_created": one(4),
    "funnel:deals_won": one(1),
    "funnel_last_week:leads": one(50),
    "funnel_last_week:mqls": one(20),
    "revenue:revenue": one(120_000),
    "revenue:deals_won": one(8),
    "revenue:open_pipeline_value": one(500_000),
    "win_history:deals_won": one(6),
    "win_history:deals_lost": one(4),
    "pipeline_stages:open_pipeline_value_by_stage": stage_samples(
        {"negotiation": 200_000, "proposal": 100_000, "discovery": 150_000, "unknown": 50_000}
    ),
    "win_history_stages:deals_won_by_stage": stage_samples({"negotiation": 4, "proposal": 2}),
    "win_history_stages:deals_lost_by_stage": stage_samples({"negotiation": 1, "proposal": 2, "discovery": 1}),
    "wins_today_total:deals_won": one(1),
    "wins_today_total:revenue": one(18_000),
    "marketing:marketing_spend": one(2_000),
    "marketing:leads": one(80),
    "marketing:attributed_revenue_linear": one(9_000),
    "email:email_campaign_sends": one(200),
    "email:email_deliveries": one(190),
    "email:email_unique_opens": one(57),
    "email:email_unique_clicks": one(19),
    "email:email_bounces": one(10),
    "email:email_unsubscribes": one(2),
}


def screens(team: str | None, wins: list[Win] | None = None) -> dict[str, list[dict[str, Any]]]:
    data = BoardData(RESULTS, wins or [], CONFIG, NOW)
    return {screen["id"]: screen["tiles"] for screen in board_screens(board_view(CONFIG, team), data)}


def items(tile: dict[str, Any]) -> dict[str, Any]:
    return {item["key"]: (item["value"], item["text"]) for item in tile["items"]}


def test_leaderboard_ranks_by_goal_attainment_with_the_pace_by_now() -> None:
    (tile,) = screens("emea")["activity"]
    assert tile["window"] == "today (Europe/Berlin)"
    assert [row["name"] for row in tile["rows"]] == ["Jan", "Anna"]  # Mike is in another team
    jan, anna = tile["rows"]
    assert jan["cells"][0] == {"value": 96, "text": "96/160", "target": 160}
    assert jan["progress"]["ratio"] == pytest.approx(0.6)
    assert jan["progress"]["pace"] == pytest.approx(0.5)  # 13:00 of a 09:00-17:00 day
    assert jan["progress"]["text"] == "60.0% ▲ ahead of pace"
    assert anna["progress"]["text"] == "25.0% ▼ behind pace"
    assert anna["cells"][2] == {"value": 2, "text": "2", "target": None}  # meetings: no goal
    assert anna["cells"][3] == {"value": None, "text": "-", "target": None}  # no demos series
    assert tile["progress_label"] == "Goal: calls today"


def test_the_companys_leaderboard_lists_every_rep_with_its_team() -> None:
    (tile,) = screens(None)["activity"]
    names = [(row["name"], row["team"]) for row in tile["rows"]]
    assert names == [("Jan", "EMEA"), ("Anna", "EMEA"), ("Mike", "Americas")]


def test_funnel_conversions_are_ratios_of_the_sums_with_the_change_in_points() -> None:
    (tile,) = screens("emea")["funnel"]
    assert [(stage["value"], stage["text"]) for stage in tile["stages"]] == [(40, "40"), (10, "10"), (4, "4"), (1, "1")]
    lead_to_mql, mql_to_opportunity, opportunity_to_won = tile["steps"]
    assert lead_to_mql["value"] == 0.25 and lead_to_mql["text"] == "25.0%"
    assert lead_to_mql["change"] == "▼ 15.0 pts vs last week"  # 20/50 = 40% a week ago
    assert mql_to_opportunity["value"] == 0.4 and mql_to_opportunity["change"] == "no data from last week"
    assert opportunity_to_won["value"] == 0.25


def test_revenue_against_the_teams_monthly_goal_and_pace() -> None:
    revenue, deals, _ = screens("emea")["revenue"]
    assert (revenue["value"], revenue["text"]) == (120_000, "€120k")
    assert revenue["goal"]["pace"] == pytest.approx((13 + 13 / 24) / 31)  # 13 days and 13 hours of December gone
    assert revenue["goal"]["text"] == "38.7% of €310k"
    # expected by now: 310,000 x 13.5417 / 31 = 135,416.67; behind it by 15,416.67
    assert revenue["goal"]["note"] == "Pace: €135k by now; ▼ behind pace by €15,417"
    assert items(deals) == {
        "deals_won": (8, "8"),
        "average_deal_size": (15_000, "€15,000"),
        "open_pipeline_value": (500_000, "€500k"),
    }
    assert screens(None)["revenue"][0]["goal"] is None  # no company goal in this config


def test_revenue_projected_by_month_end() -> None:
    """13 days and 13 hours of December's 31 gone: 120,000 x 31 / 13.5417 = 274,708 at this pace.

    30 days: 6 won, 4 lost (60%); from negotiation 4 won, 1 lost (80%), from proposal 2 and 2 (50%), from
    discovery 1 lost (0%). Open: 200,000 in negotiation, 100,000 in proposal, 150,000 in discovery and
    50,000 with no stage change (none closed from there: the overall 60%). 120,000 won
    + 200,000 x 0.8 + 100,000 x 0.5 + 150,000 x 0 + 50,000 x 0.6 = 120,000 + 240,000 = 360,000.
    """
    *_, forecast = screens("emea")["revenue"]
    assert forecast["title"] == "Projected by month end"
    assert forecast["window"] == "pace of this month so far; open deals at their stage's 30d win rate"
    assert items(forecast) == {
        "run_rate": (pytest.approx(120_000 * 31 / (13 + 13 / 24)), "€275k"),
        "weighted_pipeline": (pytest.approx(360_000), "€360k"),
        "win_rate": (0.6, "60.0%"),
    }


def test_marketing_ratios_from_summed_counts() -> None:
    money, email = screens("emea")["marketing"]
    assert items(money) == {
        "marketing_spend": (2_000, "€2,000"),
        "cost_per_lead": (25, "€25"),
        "romi": (3.5, "350.0%"),  # (9,000 - 2,000) / 2,000
    }
    assert items(email) == {
        "email_open": (0.3, "30.0%"),
        "email_click_through": (0.1, "10.0%"),
        "email_bounce": (0.05, "5.0%"),
        "email_unsubscribe": (2 / 190, "1.1%"),
    }


def test_ticker_entries_name_the_rep_and_team() -> None:
    wins = [Win(NOW, "emea", "jan", 1, 7_500.0), Win(NOW, "emea", "anna", 2, 36_000.0, earlier=True)]
    (tile,) = screens("emea", wins)["ticker"]
    assert tile["entries"] == [
        {"at": NOW, "text": "Jan (EMEA) won a deal: €7,500"},
        {"at": None, "text": "Anna (EMEA) won 2 deals today: €36,000"},
    ]
    assert items(tile) == {"deals_won": (1, "1"), "revenue": (18_000, "€18,000")}
