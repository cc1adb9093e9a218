"""The PromQL each board asks Prometheus: sums across workers, never one worker's share. Pure.

Every worker exports only the scopes of its partitions, so each query sums over the workers'
series (``sum`` or ``sum by (team, rep)``), and ratios are computed afterwards from the summed
numerator and denominator (``streams.board.screens``), never averaged.
"""

from __future__ import annotations

from dataclasses import dataclass

from streams.board.views import BoardView

ACTIVITY_KPIS = ("calls", "emails_sent", "meetings_booked", "demos_completed")
FUNNEL_COUNTERS = ("leads", "mqls", "opportunities_created", "deals_won")
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
    key: str
    expr: str


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def selector(kpi: str, window: str | None, scope: str, team: str | None = None) -> str:
    """``kpimon_<kpi>{scope="...",window="...",team="..."}`` (no window for the open pipeline)."""
    matchers = [f"scope={_quoted(scope)}"]
    if window is not None:
        matchers.append(f"window={_quoted(window)}")
    if team is not None:
        matchers.append(f"team={_quoted(team)}")
    return f"kpimon_{kpi}{{{','.join(matchers)}}}"


def team_scope(view: BoardView) -> str:
    """The scope of a board's team-wide numbers: ``team`` on a team's board, ``all`` on the company's."""
    return "all" if view.team is None else "team"


def board_queries(view: BoardView) -> tuple[Query, ...]:
    """Every query one refresh of ``view`` runs; ``streams.board.screens`` reads their results by key."""
    scope = team_scope(view)
    queries = [
        Query(f"activity:{kpi}", f"sum by (team, rep) ({selector(kpi, 'today', 'rep', view.team)})")
        for kpi in ACTIVITY_KPIS
    ]
    for counter in FUNNEL_COUNTERS:
        series = selector(counter, FUNNEL_WINDOW, scope, view.team)
        queries.append(Query(f"funnel:{counter}", f"sum({series})"))
        queries.append(Query(f"funnel_last_week:{counter}", f"sum({series} offset {LAST_WEEK})"))
    queries += [
        Query(f"revenue:{kpi}", f"sum({selector(kpi, REVENUE_WINDOW, scope, view.team)})")
        for kpi in ("revenue", "deals_won")
    ]
    pipeline = selector("open_pipeline_value", None, scope, view.team)
    queries.append(Query("revenue:open_pipeline_value", f"sum({pipeline})"))
    queries += [
        Query(f"wins_today:{kpi}", f"sum by (team, rep) ({selector(kpi, 'today', 'rep', view.team)})")
        for kpi in ("deals_won", "revenue")
    ]
    queries += [
        Query(f"wins_today_total:{kpi}", f"sum({selector(kpi, 'today', scope, view.team)})")
        for kpi in ("deals_won", "revenue")
    ]
    # spend, web and email have no team: the marketing screen is the company's on every board
    queries += [
        Query(f"marketing:{counter}", f"sum({selector(counter, MARKETING_WINDOW, 'all')})")
        for counter in MARKETING_COUNTERS
    ]
    queries += [
        Query(f"email:{counter}", f"sum({selector(counter, EMAIL_WINDOW, 'all')})") for counter in EMAIL_COUNTERS
    ]
    return tuple(queries)
