"""Goals and their forecast: each goal of the config next to its attainment and period-end projections, and the
per-stage win rates that weigh the open pipeline. Pure: PromQL and panels, no Grafana.

**From the config, not the dashboard.** The goals table has one row per goal the workers serve
(``kpimon_goal``: the config's ``goals:``, per scope and period), so a goal added to the config shows
without touching the dashboard. Its values are shares of the goal, comparable across KPIs:

* attainment: ``kpimon_goal_attainment_ratio``, recorded by Prometheus from the KPI summed across workers;
* expected by now: ``kpimon_goal_expected / kpimon_goal``, the pace (the share of the period's counted
  time gone by);
* the two period-end projections (``kpimon_goal_projection``, recorded from sums across workers,
  ``schemas/forecast.py``) over the goal: ``run_rate`` (none before 5% of the period) and
  ``weighted_pipeline`` (revenue and deals won: won so far plus the open pipeline weighted by each
  stage's win rate).

``kpimon_goal`` and ``kpimon_goal_expected`` are the same on every worker: taken once (``max``). The
recorded series are already whole (one per goal, no worker label).

**The stages** table shows, per CRM stage of the whole organisation, the 30-day win rate of the deals
that closed from it, the open deals and pipeline in it now, and both weighted by that win rate
(the scope's overall win rate where no deal closed from the stage): the weighted pipeline projection's
parts, as the recording rules compute them (``deploy/prometheus/generate_rules.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

from schemas.forecast import GOAL_PROJECTION, PIPELINE_KPIS, STAGE_WIN_RATE_RECORD, WIN_RATE_WINDOW, weighted_record
from streams.tools.dashboards._sdk import table
from streams.tools.dashboards.panels import TableColumn, merged_table
from streams.tools.dashboards.queries import AGGREGATE

GOAL_ATTAINMENT = "kpimon_goal_attainment_ratio"
# The goal's own labels stay (its name, KPI and period): one row per goal and scope.
GOAL_SERIES_AGGREGATE = "max without (instance, pod, job)"
GOAL_KEYS = (
    ("kpi", "KPI"),
    ("goal", "Goal"),
    ("period", "Period"),
    ("scope", "Scope"),
    ("team", "Team"),
    ("rep", "Rep"),
    ("channel", "Channel"),
    ("campaign", "Campaign"),
)
PROJECTION_METHODS = (("run_rate", "run rate"), ("weighted_pipeline", "weighted pipeline"))
STAGE_SCOPE = 'scope="all"'


def _matchers(filters: Sequence[tuple[str, str]], *more: str) -> str:
    return ", ".join([*more, *(f'{label}=~"{pattern}"' for label, pattern in filters)])


def goals_table(filters: Sequence[tuple[str, str]]) -> table.Panel:
    """Every goal served in the scopes ``filters`` select: target, attainment, pace and both projections."""
    goal = f"{GOAL_SERIES_AGGREGATE} (kpimon_goal{{{_matchers(filters)}}})"
    share_of_goal = f"/ ({goal} > 0)"
    expected = f"{GOAL_SERIES_AGGREGATE} (kpimon_goal_expected{{{_matchers(filters)}}}) {share_of_goal}"
    columns = [
        TableColumn(goal, "Target", "short"),
        TableColumn(f"{GOAL_ATTAINMENT}{{{_matchers(filters)}}}", "Attainment", "percentunit", 0),
        TableColumn(expected, "Expected by now", "percentunit", 0),
    ]
    for method, words in PROJECTION_METHODS:
        method_matcher = f'method="{method}"'
        projection = f"{GOAL_PROJECTION}{{{_matchers(filters, method_matcher)}}}"
        # ignoring (method): the projection and the goal share every other label; the result drops ``method``.
        columns.append(
            TableColumn(f"{projection} / ignoring (method) ({goal} > 0)", f"Projected · {words}", "percentunit", 0)
        )
    description = (
        "One row per goal of the config (kpimon_goal), in its scope and period. Attainment: the KPI so far over the "
        "goal. Expected by now: the share of the goal the pace asks for now (the share of the period's working "
        "time gone by). Projected: the period-end value over the goal, by run rate (the value so far over the "
        "share of time gone; none in the first 5% of the period) and, for revenue and deals won, by weighted "
        "pipeline (won so far plus each open deal weighted by its stage's 30-day win rate). Empty: no goal in the "
        "config. Goals and pace are the same on every worker (max, exact); attainment and projections are "
        "recorded by Prometheus from the KPIs summed across workers (deploy/prometheus/rules): exact."
    )
    return merged_table("Goals · attainment and forecast", description, GOAL_KEYS, columns)


def stages_table(currency_unit: str) -> table.Panel:
    """Per stage of the whole organisation: its win rate, the open pipeline in it, and that weighted by the rate."""
    deals_family, value_family = PIPELINE_KPIS["deals_won"], PIPELINE_KPIS["revenue"]
    win_rate = f'{STAGE_WIN_RATE_RECORD}{{{STAGE_SCOPE}, window="{WIN_RATE_WINDOW}"}}'
    columns = [
        # The only window of the record: dropped, so the row has the labels of the open pipeline's.
        TableColumn(f"max without (window) ({win_rate})", f"Win rate · {WIN_RATE_WINDOW}", "percentunit", 1),
        TableColumn(f"{AGGREGATE} ({deals_family}{{{STAGE_SCOPE}}})", "Open deals", "short"),
        TableColumn(f"{AGGREGATE} ({value_family}{{{STAGE_SCOPE}}})", "Open pipeline", currency_unit),
        TableColumn(f"{weighted_record(deals_family)}{{{STAGE_SCOPE}}}", "Weighted open deals", "short", 2),
        TableColumn(f"{weighted_record(value_family)}{{{STAGE_SCOPE}}}", "Weighted open pipeline", currency_unit),
    ]
    description = (
        f"Per CRM stage (the deal's latest stage change; unknown: none yet), the whole organisation: the win rate "
        f"of the deals closed in the last {WIN_RATE_WINDOW} from the stage, the deals open in it now and their "
        "value, and both weighted by that win rate (by the overall win rate where no deal closed from the "
        "stage; no weight at all where no deal closed in the window). The weighted pipeline projection adds "
        "their sum to what is won so far. Open deals summed over workers: exact; win rates and weighted "
        "values are recorded by Prometheus from sums across workers (deploy/prometheus/rules): exact."
    )
    return merged_table("Forecast by stage · open pipeline weighted", description, (("stage", "Stage"),), columns)
