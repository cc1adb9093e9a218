"""The Essentials screen: the essentials KPI set rebuilt from summed counters, by hand."""

from __future__ import annotations

import pytest

from schemas.catalog import load_catalog
from schemas.config import KpimonConfig, TeamConfig
from streams.board.essentials import essential_kpis, essentials_tile, value_text
from streams.board.queries import essentials_queries, split_samples
from streams.board.screens import BoardData, board_screens
from streams.board.views import board_view

CATALOG = load_catalog()
CONFIG = KpimonConfig(
    teams={"emea": TeamConfig(name="EMEA"), "amer": TeamConfig(name="Americas")}, reporting_currency="EUR"
)
ESSENTIALS = essential_kpis(CONFIG, CATALOG)


def sample(metric: str, value: float, team: str = "") -> tuple[dict[str, str], float]:
    return {"__name__": metric, "team": team}, value


def results_of(key: str, *samples: tuple[dict[str, str], float]) -> dict[str, list[tuple[dict[str, str], float]]]:
    return split_samples(key, samples)


# Last 30 days: the company won 10 deals for 150,000 (emea 4 for 80,000); the CLV gauge comes from one worker
# for the company and from two for emea (no worker has emea's whole value).
RESULTS = {
    **results_of(
        "essentials:30d:all",
        sample("kpimon_revenue", 150_000),
        sample("kpimon_deals_won", 10),
        sample("kpimon_customer_lifetime_value", 5_400),
    ),
    **results_of(
        "essentials:30d:team",
        sample("kpimon_revenue", 80_000, "emea"),
        sample("kpimon_deals_won", 4, "emea"),
        sample("kpimon_customer_lifetime_value", 7_000, "emea"),
    ),
    **results_of("essentials_workers:30d:all", sample("kpimon_customer_lifetime_value", 1)),
    **results_of("essentials_workers:30d:team", sample("kpimon_customer_lifetime_value", 2, "emea")),
}


def test_the_built_in_set_in_its_windows_with_how_each_is_rebuilt() -> None:
    by_id = {kpi.spec.id: kpi for kpi in ESSENTIALS}
    assert list(by_id) == list(CONFIG.all_kpi_sets()["essentials"])
    assert {kpi.window for kpi in ESSENTIALS} == {"30d"}
    assert by_id["average_deal_size"].series == {
        "revenue": ("kpimon_revenue", 1.0),
        "deals_won": ("kpimon_deals_won", 1.0),
    }
    assert by_id["customer_retention_rate"].series is not None  # its counters are exported as KPIs of their own
    assert by_id["customer_lifetime_value"].series is None  # the configured margin has no series
    assert {kpi.spec.indicator for kpi in ESSENTIALS} == {"leading", "lagging"}


def test_queries_sum_the_counters_and_count_the_workers_of_the_gauges() -> None:
    queries = dict((query.key, query.expr) for query in essentials_queries(board_view(CONFIG, "emea"), ESSENTIALS))
    assert set(queries) == {"essentials:30d:all", "essentials:30d:team", "essentials_workers:30d:all",
                            "essentials_workers:30d:team"}  # fmt: skip
    assert queries["essentials_workers:30d:team"] == (
        'count by (__name__, team) ({__name__=~"kpimon_(customer_lifetime_value|lead_cohort_to_customer_ratio)",'
        'scope="team",window="30d",team="emea"})'
    )


def cells(tile: dict[str, object]) -> dict[str, tuple[float | None, str, str]]:
    rows = tile["rows"]
    assert isinstance(rows, list)
    return {cell["key"]: (cell["value"], cell["text"], cell["note"]) for row in rows for cell in row["cells"]}


def test_values_company_wide_and_per_team() -> None:
    tile = essentials_tile(ESSENTIALS, RESULTS, [("emea", "EMEA")], "EUR", "EMEA")
    assert [column["label"] for column in tile["columns"]] == ["Company", "EMEA"]
    found = cells(tile)
    assert found["average_deal_size:all"] == (15_000, "€15,000", "")  # 150,000 / 10
    assert found["average_deal_size:emea"] == (20_000, "€20,000", "")  # 80,000 / 4
    assert found["customer_lifetime_value:all"] == (5_400, "€5,400", "")
    assert found["customer_lifetime_value:emea"] == (None, "-", "over 2 workers")
    assert found["customer_acquisition_cost:emea"] == (None, "-", "not kept per team")
    assert found["sales_cycle:all"] == (None, "-", "no data")
    marks = {row["kpi"]: row["mark"] for row in tile["rows"]}
    assert marks["pipeline_velocity"] == "▲ leading" and marks["average_deal_size"] == "● lagging"


def test_the_company_board_has_a_column_per_team() -> None:
    data = BoardData(RESULTS, [], CONFIG, 0.0, ESSENTIALS)
    screen = board_screens(board_view(CONFIG, None), data)[-1]
    assert screen["id"] == "essentials"
    assert [column["label"] for column in screen["tiles"][0]["columns"]] == ["Company", "EMEA", "Americas"]


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [(0.25, "ratio", "25.0%"), (86400 * 21.5, "seconds", "21.5 days"), (1234.0, "currency_per_day", "€1,234/day")],
)
def test_value_text(value: float, unit: str, text: str) -> None:
    assert value_text(value, unit, "EUR") == text


def test_a_counter_exported_over_a_number_is_scaled_back() -> None:
    """A set naming MRR (``stock_mrr_cents / 100``): its series is in the currency, its counter in cents."""
    config = CONFIG.model_copy(update={"kpi_sets": {"essentials": ("mrr",)}})
    (mrr,) = essential_kpis(config, CATALOG)
    assert mrr.series == {"stock_mrr_cents": ("kpimon_mrr", 100.0)}
    results = results_of("essentials:30d:all", sample("kpimon_mrr", 1234.5))
    found = cells(essentials_tile([mrr], results, [], "EUR", "All teams"))
    assert found["mrr:all"] == (pytest.approx(1234.5), "€1,234", "")
