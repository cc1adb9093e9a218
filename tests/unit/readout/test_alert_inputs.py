"""streams.readout.alert_inputs: the counter sums alert rules read, per partition and added up."""

from __future__ import annotations

from schemas.scopes import Scope
from streams.core.windows import DAY, MONTH
from streams.readout.alert_inputs import Need, merge_sums, partition_sums, scopes_in, span_of, sums_key
from tests.unit.readout.test_kpis import ALICE, ALL, CONFIG, EMEA, NOW, groups

BERLIN_TODAY = 1_699_916_400  # 2023-11-14 00:00 Europe/Berlin
BERLIN_YESTERDAY = 1_699_830_000
BERLIN_NOVEMBER = 1_698_793_200  # the day group (a local month) holding both
BERLIN_2023 = 1_672_527_600  # 2023-01-01 00:00 Europe/Berlin: the month group (a local year) of 2023
VARIANTS = ("now", "previous_period")


def teams(labels: Scope) -> bool:
    return labels.kind == "team"


NEEDS = (
    Need(teams, "today", "now", frozenset({"leads", "opportunities_created"})),
    Need(teams, "today", "previous_period", frozenset({"leads", "opportunities_created"})),
)
PARTITION_0 = groups(
    (0, EMEA, DAY, BERLIN_NOVEMBER, BERLIN_TODAY, {"leads": 10, "opportunities_created": 2, "calls": 7}),
    (0, EMEA, DAY, BERLIN_NOVEMBER, BERLIN_YESTERDAY, {"leads": 20, "opportunities_created": 8}),
    (0, ALICE, DAY, BERLIN_NOVEMBER, BERLIN_TODAY, {"leads": 4}),
)
PARTITION_1 = groups(
    (1, EMEA, DAY, BERLIN_NOVEMBER, BERLIN_TODAY, {"leads": 5, "opportunities_created": 1}),
    (1, ALL, DAY, BERLIN_NOVEMBER, BERLIN_TODAY, {"leads": 99}),
)


def test_a_partition_keeps_only_the_needed_counters_of_matching_scopes() -> None:
    assert partition_sums(PARTITION_0, NEEDS, NOW, CONFIG) == {
        sums_key(EMEA, "today", "now"): {"leads": 10, "opportunities_created": 2},
        sums_key(EMEA, "today", "previous_period"): {"leads": 20, "opportunities_created": 8},
    }


def test_a_scope_without_data_in_the_span_is_present_and_empty() -> None:
    assert partition_sums(PARTITION_1, NEEDS, NOW, CONFIG) == {
        sums_key(EMEA, "today", "now"): {"leads": 5, "opportunities_created": 1},
        sums_key(EMEA, "today", "previous_period"): {},
    }


def test_partitions_add_up_to_the_whole_scope() -> None:
    merged = merge_sums(
        [partition_sums(PARTITION_0, NEEDS, NOW, CONFIG), partition_sums(PARTITION_1, NEEDS, NOW, CONFIG)]
    )
    assert merged == partition_sums(PARTITION_0 + PARTITION_1, NEEDS, NOW, CONFIG)
    assert merged[sums_key(EMEA, "today", "now")] == {"leads": 15, "opportunities_created": 3}
    assert scopes_in(merged) == {EMEA}


def test_the_period_before_the_previous_one() -> None:
    tz = CONFIG.timezone_of("emea")
    assert span_of("today", "period_before", NOW, tz) == (DAY, BERLIN_YESTERDAY - 86_400, BERLIN_YESTERDAY - 86_400)
    assert span_of("today", "now", NOW, tz) == (DAY, BERLIN_TODAY, BERLIN_TODAY)


def test_a_stock_is_read_over_every_retained_bucket_now_and_never_in_a_baseline() -> None:
    old_month = 1_688_162_400  # 2023-07-01 00:00 Europe/Berlin: four months before NOW, in the 2023 month group
    stock = groups(
        (0, EMEA, MONTH, BERLIN_2023, old_month, {"stock_customers": 3, "customers_new": 1}),
        (0, EMEA, DAY, BERLIN_NOVEMBER, BERLIN_TODAY, {"customers_new": 2, "stock_customers": 1}),
        (0, EMEA, MONTH, BERLIN_2023, 1_698_793_200, {"customers_new": 2, "stock_customers": 1}),
    )
    needs = [Need(teams, "today", variant, frozenset({"stock_customers", "customers_new"})) for variant in VARIANTS]
    assert partition_sums(stock, needs, NOW, CONFIG) == {
        sums_key(EMEA, "today", "now"): {"stock_customers": 4, "customers_new": 2},
        sums_key(EMEA, "today", "previous_period"): {},
    }
