"""Period-end projections, checked by hand (schemas.forecast)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from schemas.forecast import (
    MIN_ELAPSED_SHARE,
    goal_run_rate,
    run_rate_projection,
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


def test_weighted_pipeline_of_one_month() -> None:
    """Won this month 40000 in 4 deals; 30 days: 6 won, 4 lost (rate 0.6); open: 3 deals of 30000, 25000, 20000."""
    rate = win_rate(6, 4)
    assert rate == 0.6
    open_value = 30_000 + 25_000 + 20_000
    assert weighted_pipeline_projection(40_000, open_value, rate) == pytest.approx(40_000 + 0.6 * 75_000)
    assert weighted_pipeline_projection(4, 3, rate) == pytest.approx(5.8)


def test_no_win_rate_without_closed_deals() -> None:
    assert win_rate(0, 0) is None
    assert weighted_pipeline_projection(5_000, 20_000, None) is None
    assert win_rate(0, 3) == 0.0
    assert weighted_pipeline_projection(5_000, 20_000, 0.0) == 5_000
