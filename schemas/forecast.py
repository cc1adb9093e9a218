"""Period-end projections of a goal's KPI: run rate to date, and won plus the weighted open pipeline. Pure.

Two projections stand next to a goal (``schemas.goals``), each of the whole scope (never one
worker's share: the inputs are sums across workers, see deploy/prometheus/generate_rules.py):

- **Run rate**: the value so far over the share of the period's counted time gone by (the
  goal's working ``hours`` and ``business_days``, in the scope's time zone; the share
  ``expected_by_now / target``). 30 deals by the 10th working day of 20 project to 60. At the
  period's start the share is 0 and the run rate has no value; below ``MIN_ELAPSED_SHARE`` (one
  twentieth of the counted time: a working day of a month of 20) one early deal would project
  to twenty, so no run rate is given either ("too early").
- **Weighted pipeline** (``revenue`` and ``deals_won`` only): what is won so far in the period,
  plus each open deal weighted by the historical win rate of its stage. Every open deal is at
  the same funnel stage in the catalog's counters (an opportunity that is neither won nor lost;
  the deal stages a CRM names, ``opportunity.stage_changed``, are not counted per stage), so
  the weight is the scope's win rate ``deals_won / (deals_won + deals_lost)`` over the last
  ``WIN_RATE_WINDOW`` (30 days, rolling, so it neither restarts with the period nor is empty in
  its first days). It assumes the open deals close within the period: an upper bound in a long
  sales cycle. A scope that closed no deal in the window has no win rate, hence no projection.
"""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo

from schemas.calendar import period_elapsed
from schemas.goals import Goal

ForecastMethod = Literal["run_rate", "weighted_pipeline"]
MIN_ELAPSED_SHARE = 0.05
WIN_RATE_WINDOW = "30d"
# The goal KPIs with a weighted-pipeline projection, and the open pipeline's family each weighs (its value, its count).
PIPELINE_KPIS = {"revenue": "kpimon_open_pipeline_value", "deals_won": "kpimon_open_deals"}


def run_rate_projection(value: float, elapsed_share: float) -> float | None:
    """``value / elapsed_share``: the period-end value at the pace so far; None before ``MIN_ELAPSED_SHARE``."""
    if elapsed_share < MIN_ELAPSED_SHARE:
        return None
    return value / min(elapsed_share, 1.0)


def goal_run_rate(goal: Goal, value: float, now: float, tz: ZoneInfo) -> float | None:
    """The run rate of ``value`` (the KPI so far in the goal's period) over the goal's counted time gone by."""
    return run_rate_projection(value, period_elapsed(goal.window, now, tz, goal.hours, goal.business_days))


def win_rate(deals_won: float, deals_lost: float) -> float | None:
    """The share of the closed deals that were won; None when none closed."""
    closed = deals_won + deals_lost
    return deals_won / closed if closed > 0 else None


def weighted_pipeline_projection(won: float, open_pipeline: float, rate: float | None) -> float | None:
    """``won + open_pipeline * rate``: what is won so far plus the open deals (value or count) weighted by the rate."""
    if rate is None:
        return None
    return won + open_pipeline * rate
