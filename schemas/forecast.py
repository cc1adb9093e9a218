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
  plus each open deal (its value, or 1 for the count) weighted by the historical win rate of the
  CRM stage it is in now (``opportunity.stage_changed``; ``unknown`` before any change):

      projection = won so far + sum over stages s of (open at s) x (win rate of s)

  The **win rate of a stage** is, of the deals closed (won or lost) in the last ``WIN_RATE_WINDOW``
  (30 days, rolling, so it neither restarts with the period nor is empty in its first days) that
  were in stage s when they closed (their last stage change before the win or loss), the share
  won. That is the question a forecast asks of an open deal in s: of the deals that left s by
  closing, how many were won. The alternative, "of the deals that ever reached s, the share won",
  needs every stage a deal passed through kept with it and counts a deal lost in a later stage
  against each earlier one; the deal's stage at its close needs only its stage changes, which it
  keeps anyway. A deal that skips a stage, or that a CRM closes straight from its first stage,
  counts where it closed.

  A stage in which no deal closed in the window (a new stage, or one deals only pass through)
  weighs its open deals with the scope's overall win rate ``deals_won / (deals_won + deals_lost)``
  in the window; a scope that closed no deal at all in the window has no win rate, hence no
  projection. It assumes the open deals close within the period: an upper bound in a long sales
  cycle.

  For example, in 30 days a team won 3 and lost 1 from negotiation (0.75), won 1 and lost 1 from
  proposal (0.5), and lost 2 from discovery (0): overall 4 of 8 (0.5). Open now: 40,000 in
  negotiation, 20,000 in proposal, 30,000 in discovery and 10,000 with no stage change (no deal
  closed from there: the overall 0.5). Weighted: 40,000 x 0.75 + 20,000 x 0.5 + 30,000 x 0 +
  10,000 x 0.5 = 45,000; with 75,000 won so far this month, the month projects to 120,000 (one
  rate for all, 75,000 + 100,000 x 0.5 = 125,000, would ignore that discovery deals never close won).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal
from zoneinfo import ZoneInfo

from schemas.calendar import period_elapsed
from schemas.goals import Goal

ForecastMethod = Literal["run_rate", "weighted_pipeline"]
MIN_ELAPSED_SHARE = 0.05
WIN_RATE_WINDOW = "30d"
# The goal KPIs with a weighted-pipeline projection, and the open pipeline per stage each weighs (its value, its count).
PIPELINE_KPIS = {"revenue": "kpimon_open_pipeline_value_by_stage", "deals_won": "kpimon_open_deals_by_stage"}
# The deals won and lost in a window per stage they closed from: the per-stage win rates.
STAGE_OUTCOMES = ("kpimon_deals_won_by_stage", "kpimon_deals_lost_by_stage")
# The forecast's series recorded by Prometheus (deploy/prometheus/generate_rules.py writes the rules, the Grafana
# dashboards read them): the per-stage win rate, and each open pipeline family weighted by it (``weighted_record``).
STAGE_WIN_RATE_RECORD = "kpimon:win_rate_by_stage:ratio"
GOAL_PROJECTION = "kpimon_goal_projection"


def weighted_record(open_family: str) -> str:
    """``kpimon:open_deals_by_stage:weighted``: the recorded series of an open pipeline family times the win rate."""
    return f"kpimon:{open_family.removeprefix('kpimon_')}:weighted"


StageValues = Mapping[str, float]  # stage -> a number (open deals or their value; deals won or lost)


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


def stage_win_rates(won_by_stage: StageValues, lost_by_stage: StageValues) -> dict[str, float]:
    """The win rate of each stage some deal closed from (won or lost there): won / (won + lost)."""
    rates = {}
    for stage in {*won_by_stage, *lost_by_stage}:
        rate = win_rate(won_by_stage.get(stage, 0.0), lost_by_stage.get(stage, 0.0))
        if rate is not None:
            rates[stage] = rate
    return rates


def weighted_open_pipeline(
    open_by_stage: StageValues, won_by_stage: StageValues, lost_by_stage: StageValues
) -> float | None:
    """Sum over stages of what is open there x the stage's win rate (the overall one where none closed there).

    None when no deal closed at all (no win rate).
    """
    overall = win_rate(sum(won_by_stage.values()), sum(lost_by_stage.values()))
    if overall is None:
        return None
    rates = stage_win_rates(won_by_stage, lost_by_stage)
    return sum(value * rates.get(stage, overall) for stage, value in open_by_stage.items())


def weighted_pipeline_projection(
    won: float, open_by_stage: StageValues, won_by_stage: StageValues, lost_by_stage: StageValues
) -> float | None:
    """``won + weighted_open_pipeline(...)``: what is won so far plus the open deals (value or count) weighted."""
    weighted = weighted_open_pipeline(open_by_stage, won_by_stage, lost_by_stage)
    return None if weighted is None else won + weighted
