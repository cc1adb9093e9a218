from __future__ import annotations

from schemas.config import KpimonConfig, RepConfig, TeamConfig
from streams.board.queries import board_queries, split_samples, summed
from streams.board.views import board_view

CONFIG = KpimonConfig(
    teams={"emea": TeamConfig(timezone="Europe/Berlin", name="EMEA")},
    reps={"anna": RepConfig(team="emea", name="Anna")},
)


def test_every_query_sums_over_workers_one_sum_per_kpi() -> None:
    for view in (board_view(CONFIG, None), board_view(CONFIG, "emea")):
        queries = board_queries(view)
        assert len(queries) == 12
        for query in queries:
            assert query.expr.startswith(
                ("sum by (__name__) (", "sum by (__name__, team, rep) (", "sum by (__name__, stage) (")
            ), query


def test_a_teams_board_reads_its_team_and_the_companys_marketing() -> None:
    queries = [(query.key, query.expr) for query in board_queries(board_view(CONFIG, "emea"))]
    kpis = '__name__=~"kpimon_(calls|emails_sent|meetings_booked|demos_completed)",scope="rep"'
    assert queries[0] == ("activity", f'sum by (__name__, team, rep) ({{{kpis},window="today",team="emea"}})')
    funnel = '__name__=~"kpimon_(leads|mqls|opportunities_created|deals_won)",scope="team",window="7d",team="emea"'
    assert queries[1] == ("funnel", f"sum by (__name__) ({{{funnel}}})")
    assert queries[2] == ("funnel_last_week", f"sum by (__name__) ({{{funnel}}} offset 7d)")
    pipeline = '__name__=~"kpimon_(open_pipeline_value)",scope="team",team="emea"'
    assert ("revenue", f"sum by (__name__) ({{{pipeline}}})") in queries
    history = '__name__=~"kpimon_(deals_won|deals_lost)",scope="team",window="30d",team="emea"'
    assert ("win_history", f"sum by (__name__) ({{{history}}})") in queries  # the forecast's win rate
    # the weighted pipeline: the open value and the deals closed in 30 days per stage
    stages = '__name__=~"kpimon_(open_pipeline_value_by_stage)",scope="team",team="emea"'
    assert ("pipeline_stages", f"sum by (__name__, stage) ({{{stages}}})") in queries
    closed = '__name__=~"kpimon_(deals_won_by_stage|deals_lost_by_stage)",scope="team",window="30d",team="emea"'
    assert ("win_history_stages", f"sum by (__name__, stage) ({{{closed}}})") in queries
    marketing = '__name__=~"kpimon_(marketing_spend|leads|attributed_revenue_linear)",scope="all",window="month"'
    assert ("marketing", f"sum by (__name__) ({{{marketing}}})") in queries


def test_the_companys_board_reads_scope_all() -> None:
    queries = dict((query.key, query.expr) for query in board_queries(board_view(CONFIG, None)))
    assert queries["wins_today_total"] == (
        'sum by (__name__) ({__name__=~"kpimon_(deals_won|revenue)",scope="all",window="today"})'
    )


def test_label_values_are_quoted() -> None:
    assert summed(("calls",), "today", "team", 'a"b\\c') == (
        'sum by (__name__) ({__name__=~"kpimon_(calls)",scope="team",window="today",team="a\\"b\\\\c"})'
    )


def test_samples_are_split_by_kpi() -> None:
    samples = [
        ({"__name__": "kpimon_calls", "team": "emea", "rep": "anna"}, 3.0),
        ({"__name__": "kpimon_emails_sent", "team": "emea", "rep": "anna"}, 5.0),
    ]
    assert split_samples("activity", samples) == {
        "activity:calls": [({"team": "emea", "rep": "anna"}, 3.0)],
        "activity:emails_sent": [({"team": "emea", "rep": "anna"}, 5.0)],
    }
