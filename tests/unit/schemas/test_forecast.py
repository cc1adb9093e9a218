"""Period-end projections, checked by hand (schemas.forecast)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from schemas.forecast import (
    MIN_ELAPSED_SHARE,
    goal_run_rate,
    run_rate_projection,
    stage_win_rates,
    weighted_open_pipeline,
    weighted_pipeline_projection,
    win_rate,
)
from schemas.goals import Goal

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("value", "share", "expected"),
    [
        (40_000.0, 0.4, 100_000.0),
        (30.0, 0.5, 60.0),
        (12.0, 1.0, 12.0),  # the period is over: the value is final
        (0.0, 0.5, 0.0),
        (3.0, 0.0, None),  # the period's start: no time counted yet
        (3.0, MIN_ELAPSED_SHARE / 2, None),  # too early: one deal would project to forty
        (3.0, MIN_ELAPSED_SHARE, 60.0),
    ],
)
def test_run_rate(value: float, share: float, expected: float | None) -> None:
    assert run_rate_projection(value, share) == expected


GOAL = Goal.model_validate(
    {
        "name": "monthly-deals",
        "kpi": "deals_won",
        "period": "month",
        "target": 40,
        "hours": "09:00-17:00",
        "business_days": ["mon", "tue", "wed", "thu", "fri"],
    }
)


def test_run_rate_counts_working_time_only() -> None:
    """June 2026 starts on a Monday: 22 working days of 8 hours (176 h). On Wednesday the 10th at 13:00, 7 days
    (1-5, 8, 9) and 4 hours are gone: 60 h. 15 deals won by then project to 15 x 176 / 60 = 44."""
    now = datetime(2026, 6, 10, 13, 0, tzinfo=BERLIN).timestamp()
    assert goal_run_rate(GOAL, 15.0, now, BERLIN) == pytest.approx(44.0)


def test_run_rate_at_the_period_start() -> None:
    """Monday 1 June 2026 before 9:00 nothing is counted yet; at 12:00, 3 h of 176 (1.7%) is too early."""
    assert goal_run_rate(GOAL, 0.0, datetime(2026, 6, 1, 8, 0, tzinfo=BERLIN).timestamp(), BERLIN) is None
    assert goal_run_rate(GOAL, 2.0, datetime(2026, 6, 1, 12, 0, tzinfo=BERLIN).timestamp(), BERLIN) is None


# The acceptance event set of the forecast (tests/reference/offline_forecast.py, acceptance_events; replayed
# through a real worker and Prometheus in tests/integration/test_prometheus_scrape.py): 12 deals of one team,
# every outcome in the last hour, so in this month and in the last 30 days.
#   negotiation: won 30,000, 20,000 and 10,000, lost 1; open 40,000
#   proposal:    won 15,000, lost 1;                    open 20,000
#   discovery:   lost 2;                                open 30,000
#   no stage change ("unknown"): nothing closed;        open 10,000
WON_BY_STAGE = {"negotiation": 3.0, "proposal": 1.0}
LOST_BY_STAGE = {"negotiation": 1.0, "proposal": 1.0, "discovery": 2.0}
OPEN_VALUE = {"negotiation": 40_000.0, "proposal": 20_000.0, "discovery": 30_000.0, "unknown": 10_000.0}
OPEN_COUNT = {"negotiation": 1.0, "proposal": 1.0, "discovery": 1.0, "unknown": 1.0}


def test_stage_win_rates_of_the_last_30_days() -> None:
    """negotiation 3 of 4 won, proposal 1 of 2, discovery 0 of 2; no deal closed from "unknown": no rate of its own."""
    assert stage_win_rates(WON_BY_STAGE, LOST_BY_STAGE) == {"negotiation": 0.75, "proposal": 0.5, "discovery": 0.0}
    assert win_rate(sum(WON_BY_STAGE.values()), sum(LOST_BY_STAGE.values())) == 0.5  # 4 of 8


def test_weighted_pipeline_of_one_month() -> None:
    """Won this month: 30,000 + 20,000 + 10,000 + 15,000 = 75,000 in 4 deals. Open, each at its stage's rate
    ("unknown", where no deal closed, at the overall 4 of 8 = 0.5):

        value: 40,000 x 0.75 + 20,000 x 0.5 + 30,000 x 0 + 10,000 x 0.5 = 30,000 + 10,000 + 0 + 5,000 = 45,000
        count: 0.75 + 0.5 + 0 + 0.5 = 1.75

    Projected by month end: revenue 75,000 + 45,000 = 120,000; deals won 4 + 1.75 = 5.75. One rate for all
    (0.5) would give 75,000 + 100,000 x 0.5 = 125,000, counting half the discovery deals that never close won.
    """
    assert weighted_open_pipeline(OPEN_VALUE, WON_BY_STAGE, LOST_BY_STAGE) == pytest.approx(45_000)
    assert weighted_pipeline_projection(75_000, OPEN_VALUE, WON_BY_STAGE, LOST_BY_STAGE) == pytest.approx(120_000)
    assert weighted_pipeline_projection(4, OPEN_COUNT, WON_BY_STAGE, LOST_BY_STAGE) == pytest.approx(5.75)


def test_a_stage_with_no_closed_deal_takes_the_scopes_win_rate() -> None:
    """Only negotiation closed deals (3 won, 1 lost): 0.75 weighs the open proposal deals too."""
    won, lost = {"negotiation": 3.0}, {"negotiation": 1.0}
    assert weighted_open_pipeline({"proposal": 8_000.0, "negotiation": 4_000.0}, won, lost) == pytest.approx(9_000)
    assert weighted_open_pipeline({}, won, lost) == 0  # nothing open: won so far is the projection


def test_no_projection_without_closed_deals() -> None:
    assert win_rate(0, 0) is None
    assert weighted_pipeline_projection(5_000, {"proposal": 20_000}, {}, {}) is None
    assert win_rate(0, 3) == 0.0
    assert weighted_pipeline_projection(5_000, {"proposal": 20_000}, {}, {"proposal": 3}) == 5_000
