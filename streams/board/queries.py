"""The PromQL each board asks Prometheus: sums across workers, never one worker's share. Pure.

Every worker exports only the scopes of its partitions, so each query sums over the workers'
series (``sum`` or ``sum by (team, rep)``), and ratios are computed afterwards from the summed
numerator and denominator (``streams.board.screens``), never averaged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from schemas.forecast import WIN_RATE_WINDOW
from streams.board.essentials import EssentialKpi
from streams.board.views import BoardView

ACTIVITY_KPIS = ("calls", "emails_sent", "meetings_booked", "demos_completed")
FUNNEL_COUNTERS = ("leads", "mqls", "opportunities_created", "deals_won")
STAGE_OUTCOMES = ("deals_won_by_stage", "deals_lost_by_stage")
FUNNEL_WINDOW = "7d"
LAST_WEEK = "7d"  # Prometheus' offset for "the same window a week ago"
REVENUE_WINDOW = "month"
MARKETING_WINDOW = "month"
EMAIL_WINDOW = "30d"
MARKETING_COUNTERS = ("marketing_spend", "leads", "attributed_revenue_linear")
EMAIL_COUNTERS = (
    "email_campaign_sends",
    "email_deliveries",
    "email_unique_opens",
    "email_unique_clicks",
    "email_bounces",
    "email_unsubscribes",
)


@dataclass(frozen=True)
class Query:
    """One instant query over several KPIs at once; its samples are read as ``<key>:<kpi>`` (``split_samples``)."""

    key: str
    expr: str


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def summed(
    kpis: Sequence[str],
    window: str | None,
    scope: str,
    team: str | None = None,
    by: str = "",
    offset: str = "",
    aggregate: str = "sum",
) -> str:
    """``sum by (__name__[, by]) ({__name__=~"kpimon_(a|b)",scope=...,window=...,team=...})``: one sum per KPI.

    ``window`` None for the series without one (the open pipeline); ``offset`` a Prometheus duration;
    ``aggregate`` ``count`` for the number of workers serving each series.
    """
    matchers = [f'__name__=~"kpimon_({"|".join(kpis)})"', f"scope={_quoted(scope)}"]
    if window is not None:
        matchers.append(f"window={_quoted(window)}")
    if team is not None:
        matchers.append(f"team={_quoted(team)}")
    shift = f" offset {offset}" if offset else ""
    return f"{aggregate} by (__name__{', ' + by if by else ''}) ({{{','.join(matchers)}}}{shift})"


def team_scope(view: BoardView) -> str:
    """The scope of a board's team-wide numbers: ``team`` on a team's board, ``all`` on the company's."""
    return "all" if view.team is None else "team"


def board_queries(view: BoardView, essentials: Sequence[EssentialKpi] = ()) -> tuple[Query, ...]:
    """Every query one refresh of ``view`` runs; ``streams.board.screens`` reads their results by key."""
    scope, team = team_scope(view), view.team
    return *_main_queries(view, scope, team), *essentials_queries(view, essentials)


def essentials_queries(view: BoardView, essentials: Sequence[EssentialKpi]) -> tuple[Query, ...]:
    """Per window of the Essentials screen: its counters summed, and the gauges of the KPIs no sum rebuilds.

    Company-wide (scope ``all``) and per team (the view's team, or every team on the company's board).
    """
    queries = []
    for window in sorted({kpi.window for kpi in essentials}):
        kpis = [kpi for kpi in essentials if kpi.window == window]
        counters = sorted({metric.removeprefix("kpimon_") for kpi in kpis for metric, _ in (kpi.series or {}).values()})
        gauges = sorted(kpi.spec.metric.removeprefix("kpimon_") for kpi in kpis if kpi.series is None)
        for scope, team, by in (("all", None, ""), ("team", view.team, "team")):
            key = f"{window}:{scope}"
            if counters:
                queries.append(Query(f"essentials:{key}", summed(counters, window, scope, team, by)))
            if gauges:
                queries.append(Query(f"essentials:{key}", summed(gauges, window, scope, team, by)))
                workers = summed(gauges, window, scope, team, by, aggregate="count")
                queries.append(Query(f"essentials_workers:{key}", workers))
    return tuple(queries)


def _main_queries(view: BoardView, scope: str, team: str | None) -> tuple[Query, ...]:
    return (
        Query("activity", summed(ACTIVITY_KPIS, "today", "rep", team, by="team, rep")),
        Query("funnel", summed(FUNNEL_COUNTERS, FUNNEL_WINDOW, scope, team)),
        Query("funnel_last_week", summed(FUNNEL_COUNTERS, FUNNEL_WINDOW, scope, team, offset=LAST_WEEK)),
        Query("revenue", summed(("revenue", "deals_won"), REVENUE_WINDOW, scope, team)),
        Query("revenue", summed(("open_pipeline_value",), None, scope, team)),
        Query("win_history", summed(("deals_won", "deals_lost"), WIN_RATE_WINDOW, scope, team)),
        # the weighted pipeline: each stage's open value at the stage's win rate (schemas.forecast)
        Query("pipeline_stages", summed(("open_pipeline_value_by_stage",), None, scope, team, by="stage")),
        Query("win_history_stages", summed(STAGE_OUTCOMES, WIN_RATE_WINDOW, scope, team, by="stage")),
        Query("wins_today", summed(("deals_won", "revenue"), "today", "rep", team, by="team, rep")),
        Query("wins_today_total", summed(("deals_won", "revenue"), "today", scope, team)),
        # spend, web and email have no team: the marketing screen is the company's on every board
        Query("marketing", summed(MARKETING_COUNTERS, MARKETING_WINDOW, "all")),
        Query("email", summed(EMAIL_COUNTERS, EMAIL_WINDOW, "all")),
    )


def split_samples(
    key: str, samples: Iterable[tuple[Mapping[str, str], float]]
) -> dict[str, list[tuple[dict[str, str], float]]]:
    """A query's samples by ``<key>:<kpi>`` (the metric name without ``kpimon_``), without ``__name__``."""
    split: dict[str, list[tuple[dict[str, str], float]]] = {}
    for metric, value in samples:
        labels = dict(metric)
        kpi = labels.pop("__name__", "").removeprefix("kpimon_")
        split.setdefault(f"{key}:{kpi}", []).append((labels, value))
    return split
