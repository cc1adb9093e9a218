from __future__ import annotations

from schemas.config import KpimonConfig, RepConfig, TeamConfig
from streams.board.queries import board_queries, selector
from streams.board.views import board_view

CONFIG = KpimonConfig(
    teams={"emea": TeamConfig(timezone="Europe/Berlin", name="EMEA")},
    reps={"anna": RepConfig(team="emea", name="Anna")},
)


def test_every_query_sums_over_workers() -> None:
    for view in (board_view(CONFIG, None), board_view(CONFIG, "emea")):
        for query in board_queries(view):
            assert query.expr.startswith("sum(") or query.expr.startswith("sum by (team, rep) ("), query


def test_a_teams_board_reads_its_team_and_the_companys_marketing() -> None:
    queries = {query.key: query.expr for query in board_queries(board_view(CONFIG, "emea"))}
    assert queries["activity:calls"] == 'sum by (team, rep) (kpimon_calls{scope="rep",window="today",team="emea"})'
    assert queries["funnel:leads"] == 'sum(kpimon_leads{scope="team",window="7d",team="emea"})'
    assert queries["funnel_last_week:leads"] == 'sum(kpimon_leads{scope="team",window="7d",team="emea"} offset 7d)'
    assert queries["revenue:open_pipeline_value"] == 'sum(kpimon_open_pipeline_value{scope="team",team="emea"})'
    assert queries["marketing:marketing_spend"] == 'sum(kpimon_marketing_spend{scope="all",window="month"})'


def test_the_companys_board_reads_scope_all() -> None:
    queries = {query.key: query.expr for query in board_queries(board_view(CONFIG, None))}
    assert queries["revenue:revenue"] == 'sum(kpimon_revenue{scope="all",window="month"})'
    assert queries["activity:calls"] == 'sum by (team, rep) (kpimon_calls{scope="rep",window="today"})'


def test_label_values_are_quoted() -> None:
    assert selector("calls", "today", "team", 'a"b\\c') == 'kpimon_calls{scope="team",window="today",team="a\\"b\\\\c"}'
