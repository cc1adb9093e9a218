"""streams.metrics.kpi_collector.KpiCollector: what /metrics shows for hand-made tables."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest

from schemas.catalog import WINDOW_NAMES, load_catalog
from schemas.config import KpimonConfig, TeamConfig
from schemas.scopes import Scope
from streams.core.folding import BucketGroup, GroupKey, ProgressValue
from streams.core.windows import DAY, HOUR, MINUTE, MONTH, QUARTER, Resolution
from streams.entities.deals_leads import DealState
from streams.entities.registry import EntityState
from streams.metrics.kpi_collector import FUNNEL_DETAILS, UNIQUE_VISITORS, KpiCollector

CATALOG = load_catalog()
NOW = 1_700_000_000.75  # 2023-11-14T22:13:20.75Z; the collector truncates to whole seconds
CONFIG = KpimonConfig(timezone="UTC", teams={"emea": TeamConfig(timezone="Europe/Berlin")})

ALL = Scope()
EMEA = Scope(team="emea")
ALICE = Scope(team="emea", rep="alice")
BLOG = Scope(channel="blog")
SPRING = Scope(campaign="spring|sale")  # a campaign id may hold the key separator


def group(
    partition: int, scope: Scope, resolution: Resolution, group_start: int, buckets: dict[int, dict[str, float]]
) -> tuple[str, BucketGroup]:
    key = GroupKey(partition, scope, resolution, group_start).encode()
    return key, {"buckets": {str(start): counters for start, counters in buckets.items()}, "offsets": {"crm": 9}}


HOUR_22 = 1_699_999_200  # the minute group (an hour) of NOW
DAY_14 = 1_699_920_000  # the quarter and hour group (a UTC day) of NOW: 2023-11-14
DAY_13 = 1_699_833_600
NOV_UTC, OCT_UTC, Y23_UTC = 1_698_796_800, 1_696_118_400, 1_672_531_200  # the day and month groups in UTC
NOV_BER, Y23_BER = 1_698_793_200, 1_672_527_600  # in Europe/Berlin

BUCKETS = [
    group(0, ALL, MINUTE, HOUR_22, {1_699_999_980: {"calls": 2, "calls_connected": 1, "call_duration_seconds": 150.5}}),
    group(1, ALL, MINUTE, HOUR_22, {1_699_999_920: {"calls": 3, "calls_connected": 2, "call_duration_seconds": 49.5}}),
    group(0, ALL, QUARTER, DAY_14, {1_699_999_200: {"calls": 5, "calls_connected": 3}}),
    group(0, ALL, HOUR, DAY_14, {1_699_999_200: {"calls": 5, "calls_connected": 3}}),
    group(0, ALICE, MINUTE, HOUR_22, {1_699_999_980: {"calls": 2, "calls_connected": 1}}),
    group(0, EMEA, MINUTE, HOUR_22, {1_699_999_980: {"calls": 2, "calls_connected": 1}}),
    group(0, EMEA, QUARTER, DAY_13, {1_699_916_400: {"calls": 4}}),  # today in Berlin only
    group(1, BLOG, QUARTER, DAY_14, {1_699_999_200: {"content_published": 2}}),
    group(0, ALL, DAY, NOV_UTC, {1_699_920_000: {"calls": 5, "calls_connected": 3}}),  # today (UTC)
    group(1, ALL, MONTH, Y23_UTC, {NOV_UTC: {"calls": 5, "calls_connected": 3}, OCT_UTC: {"calls": 7}}),
    group(0, EMEA, DAY, NOV_BER, {1_699_916_400: {"calls": 4}}),  # today in Berlin
    group(0, EMEA, MONTH, Y23_BER, {NOV_BER: {"calls": 4}}),
    group(1, BLOG, DAY, NOV_UTC, {1_699_747_200: {"content_published": 2}}),  # Sunday: 30d, not this week
    group(0, SPRING, MINUTE, HOUR_22, {1_699_999_980: {"leads": 4, "mqls": 1, "campaigns_launched": 1}}),
    group(1, SPRING, MINUTE, HOUR_22, {1_699_999_920: {"leads": 1, "deals_won": 1, "revenue": 900.0}}),
]


def progress(watermark: int, **counts: dict[str, int]) -> ProgressValue:
    value: ProgressValue = {
        "watermark": watermark,
        "offsets": {"crm": 9},
        "events": {},
        "duplicates": {},
        "late": {},
        "rejected": {},
    }
    value.update(counts)  # type: ignore[typeddict-item]
    return value


PROGRESS = [
    ("0", progress(1_700_000_000, events={"call.logged": 7, "email.sent": 2}, rejected={"invalid_json": 1})),
    (
        "1",
        progress(
            1_699_999_990,
            events={"call.logged": 3},
            duplicates={"call.logged": 2},
            late={"email.sent": 4},
            rejected={"invalid_json": 2, "unknown_type": 5},
        ),
    ),
]


def registry_with_collector() -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(
        KpiCollector(CATALOG, CONFIG, buckets=lambda: BUCKETS, progress=lambda: PROGRESS, clock=lambda: NOW)
    )
    return registry


def scope_labels(scope: Scope) -> dict[str, str]:
    return {
        "scope": scope.kind,
        "team": scope.team,
        "rep": scope.rep,
        "channel": scope.channel,
        "campaign": scope.campaign,
    }


def labels(window: str, scope: Scope) -> dict[str, str]:
    return {"window": window, **scope_labels(scope)}


@pytest.mark.parametrize(
    ("metric", "window", "scope", "value"),
    [
        ("kpimon_calls", "1h", ALL, 5.0),  # two partitions summed
        ("kpimon_calls", "24h", ALL, 5.0),
        ("kpimon_calls", "today", ALL, 5.0),
        ("kpimon_calls", "7d", ALL, 5.0),
        ("kpimon_calls", "week", ALL, 5.0),
        ("kpimon_calls", "30d", ALL, 5.0),
        ("kpimon_calls", "month", ALL, 5.0),
        ("kpimon_calls", "quarter", ALL, 12.0),  # October and November
        ("kpimon_call_connect_ratio", "quarter", ALL, 0.25),
        ("kpimon_call_connect_ratio", "1h", ALL, 0.6),
        ("kpimon_call_duration_seconds", "1h", ALL, 200.0),
        ("kpimon_call_duration_seconds", "7d", ALL, 0.0),
        ("kpimon_calls", "1h", ALICE, 2.0),
        ("kpimon_call_connect_ratio", "1h", ALICE, 0.5),
        ("kpimon_calls", "1h", EMEA, 2.0),
        ("kpimon_calls", "today", EMEA, 4.0),  # the team's own time zone
        ("kpimon_calls", "24h", EMEA, 4.0),
        ("kpimon_calls", "7d", EMEA, 0.0),
        ("kpimon_calls", "quarter", EMEA, 4.0),
        ("kpimon_content_published", "today", BLOG, 0.0),
        ("kpimon_content_published", "24h", BLOG, 2.0),
        ("kpimon_content_published", "week", BLOG, 0.0),
        ("kpimon_content_published", "30d", BLOG, 2.0),
        ("kpimon_content_published", "month", BLOG, 0.0),  # no month bucket stored for the channel
        ("kpimon_content_published", "1h", BLOG, 0.0),
        ("kpimon_emails_sent", "1h", ALL, 0.0),
        ("kpimon_email_campaign_sends", "7d", EMEA, 0.0),
        ("kpimon_leads", "1h", SPRING, 5.0),  # a campaign: its leads, summed over partitions
        ("kpimon_lead_to_mql_ratio", "1h", SPRING, 0.2),
        ("kpimon_revenue", "1h", SPRING, 900.0),
        ("kpimon_campaigns_launched", "1h", SPRING, 1.0),
        ("kpimon_email_campaign_sends", "1h", SPRING, 0.0),
        ("kpimon_deals_lost", "today", SPRING, 0.0),
        # absent: a ratio over zero, and a scope the KPI does not have
        ("kpimon_call_connect_ratio", "7d", EMEA, None),
        ("kpimon_email_response_ratio", "1h", ALL, None),
        ("kpimon_calls", "1h", BLOG, None),
        ("kpimon_content_published", "1h", ALICE, None),
        ("kpimon_email_campaign_sends", "1h", ALICE, None),
        ("kpimon_calls", "1h", Scope(team="apac"), None),
        ("kpimon_calls", "1h", SPRING, None),  # activity done by reps is not kept per campaign
        ("kpimon_content_published", "1h", SPRING, None),
        ("kpimon_win_rate_ratio", "1h", SPRING, 1.0),
    ],
)
def test_kpi_gauges(metric: str, window: str, scope: Scope, value: float | None) -> None:
    assert registry_with_collector().get_sample_value(metric, labels(window, scope)) == value


@pytest.mark.parametrize(
    ("sample", "sample_labels", "value"),
    [
        ("kpimon_events_total", {"type": "call.logged"}, 10.0),
        ("kpimon_events_total", {"type": "email.sent"}, 2.0),
        ("kpimon_events_total", {"type": "deal.won"}, None),
        ("kpimon_events_duplicate_total", {"type": "call.logged"}, 2.0),
        ("kpimon_events_late_dropped_total", {"type": "email.sent"}, 4.0),
        ("kpimon_events_rejected_total", {"reason": "invalid_json"}, 3.0),
        ("kpimon_events_rejected_total", {"reason": "unknown_type"}, 5.0),
        ("kpimon_events_rejected_total", {"reason": "too_large"}, None),
        ("kpimon_watermark_timestamp_seconds", {"partition": "0"}, 1_700_000_000.0),
        ("kpimon_watermark_timestamp_seconds", {"partition": "1"}, 1_699_999_990.0),
        ("kpimon_watermark_timestamp_seconds", {"partition": "2"}, None),
    ],
)
def test_progress_counters_and_watermark(sample: str, sample_labels: dict[str, str], value: float | None) -> None:
    assert registry_with_collector().get_sample_value(sample, sample_labels) == value


def test_every_window_is_exported() -> None:
    registry = registry_with_collector()
    windows = {
        sample.labels["window"]
        for family in registry.collect()
        if family.name == "kpimon_calls"
        for sample in family.samples
        if sample.labels["scope"] == "all"
    }
    assert windows == set(WINDOW_NAMES) == {"1h", "24h", "7d", "30d", "today", "week", "month", "quarter"}


def test_late_help_names_the_longest_retention() -> None:
    families = {family.name: family for family in registry_with_collector().collect()}
    assert families["kpimon_events_late_dropped"].documentation == (
        "Events older than the longest retention (800 days), not counted."
    )


def test_families_and_types() -> None:
    registry = registry_with_collector()
    families = {family.name: family.type for family in registry.collect()}
    catalog = CATALOG
    assert families == {
        **{kpi.metric: "gauge" for kpi in catalog.kpis},
        "kpimon_events": "counter",
        "kpimon_events_duplicate": "counter",
        "kpimon_events_late_dropped": "counter",
        "kpimon_events_rejected": "counter",
        "kpimon_labels_folded": "counter",
        "kpimon_watermark_timestamp_seconds": "gauge",
        **{name: "gauge" for name, _, _ in FUNNEL_DETAILS},
        UNIQUE_VISITORS[0]: "gauge",
    }


def test_empty_tables_expose_families_without_samples() -> None:
    registry = CollectorRegistry()
    registry.register(KpiCollector(CATALOG, CONFIG, buckets=list, progress=list, clock=lambda: NOW))
    families = list(registry.collect())
    assert len(families) == len(CATALOG.kpis) + len(FUNNEL_DETAILS) + 7
    assert all(family.samples == [] for family in families)
    text = generate_latest(registry).decode()
    assert "# TYPE kpimon_calls gauge" in text
    assert "# TYPE kpimon_events_total counter" in text
    assert "# TYPE kpimon_watermark_timestamp_seconds gauge" in text


def test_tables_are_read_at_every_scrape() -> None:
    buckets: list[tuple[str, BucketGroup]] = []
    registry = CollectorRegistry()
    registry.register(KpiCollector(CATALOG, CONFIG, buckets=lambda: buckets, progress=list, clock=lambda: NOW))
    assert registry.get_sample_value("kpimon_calls", labels("1h", ALL)) is None
    buckets.append(group(0, ALL, MINUTE, HOUR_22, {1_699_999_980: {"calls": 1}}))
    assert registry.get_sample_value("kpimon_calls", labels("1h", ALL)) == 1.0


def test_clock_moves_the_windows() -> None:
    registry = CollectorRegistry()
    clock = [NOW]
    registry.register(KpiCollector(CATALOG, CONFIG, buckets=lambda: BUCKETS, progress=list, clock=lambda: clock[0]))
    assert registry.get_sample_value("kpimon_calls", labels("1h", ALL)) == 5.0
    clock[0] = 1_700_003_520  # one hour after the minute 1_699_999_920: only 1_699_999_980 is left
    assert registry.get_sample_value("kpimon_calls", labels("1h", ALL)) == 2.0
    clock[0] = 1_700_003_580
    assert registry.get_sample_value("kpimon_calls", labels("1h", ALL)) == 0.0


def test_registering_twice_raises() -> None:
    registry = registry_with_collector()
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        registry.register(
            KpiCollector(CATALOG, CONFIG, buckets=lambda: BUCKETS, progress=lambda: PROGRESS, clock=lambda: NOW)
        )


def test_clash_with_an_existing_metric_raises() -> None:
    registry = CollectorRegistry()
    Counter("kpimon_events", "another", registry=registry)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        registry.register(KpiCollector(CATALOG, CONFIG, buckets=list, progress=list, clock=lambda: NOW))


def deal(
    amount: float, rep: str, outcome_at: int | None = None, stage_at: int | None = None, campaign: str = ""
) -> DealState:
    attributes: dict[str, list[str | int]] = {"team": ["emea", 1, "e"], "rep": [rep, 1, "e"]}
    if campaign:
        attributes["campaign"] = [campaign, 1, "e"]
    return {
        "created_at": 1_699_000_000,
        "amount": amount,
        "attributes": attributes,
        "stage": None if stage_at is None else ["negotiation", stage_at, "s"],
        "outcome": None
        if outcome_at is None
        else {"kind": "won", "at": outcome_at, "event_id": "w", "amount": amount, "reason": "", "opened_at": None},
        "event_ids": [],
    }


def test_funnel_details_cycle_quantiles_lost_reasons_and_open_pipeline() -> None:
    counters = {
        "cycle_sample:d1": 100.0,
        "cycle_sample:d2": 300.0,
        "cycle_sample:d3": 200.0,
        "lost_reason:price": 2,
        "lost_reason:timing": 0,  # retracted: no series
        "won_stage:negotiation": 3,
        "lost_stage:negotiation": 1,
        "lost_stage:discovery": 2,
    }
    buckets = [group(0, ALL, MINUTE, HOUR_22, {1_699_999_980: counters})]
    entities: list[tuple[str, EntityState]] = [
        ("0|deal:a", deal(1000.0, "ann", campaign="spring")),  # open
        ("1|deal:b", deal(500.0, "ann", outcome_at=1_699_100_000)),  # won: closed
        ("2|deal:c", deal(250.0, "bob", outcome_at=1_699_100_000, stage_at=1_699_200_000)),  # re-opened, no campaign
        ("2|lead:l", {"created_at": 1, "mql_at": None, "sql_at": None, "attributes": {}, "event_ids": []}),
    ]
    registry = CollectorRegistry()
    registry.register(
        KpiCollector(
            CATALOG, CONFIG, buckets=lambda: buckets, progress=list, clock=lambda: NOW, entities=lambda: entities
        )
    )
    assert registry.get_sample_value("kpimon_sales_cycle_p50_seconds", labels("1h", ALL)) == 200.0
    assert registry.get_sample_value("kpimon_sales_cycle_p90_seconds", labels("1h", ALL)) == 280.0  # 200 + 0.8 x 100
    assert registry.get_sample_value("kpimon_deals_lost_by_reason", {**labels("1h", ALL), "reason": "price"}) == 2
    assert registry.get_sample_value("kpimon_deals_lost_by_reason", {**labels("1h", ALL), "reason": "timing"}) is None
    overall = scope_labels(ALL)
    ann = scope_labels(Scope(team="emea", rep="ann"))
    assert registry.get_sample_value("kpimon_open_deals", overall) == 2
    assert registry.get_sample_value("kpimon_open_pipeline_value", overall) == 1250.0
    assert registry.get_sample_value("kpimon_open_pipeline_value", ann) == 1000.0
    assert registry.get_sample_value("kpimon_open_deals", {**overall, "scope": "channel", "channel": "unknown"}) == 2
    spring = scope_labels(Scope(campaign="spring"))
    assert registry.get_sample_value("kpimon_open_deals", spring) == 1  # deal c has no campaign
    assert registry.get_sample_value("kpimon_open_pipeline_value", spring) == 1000.0
    # per stage: deal a has no stage change, deal c is re-opened in negotiation
    by_stage = {
        f"{family}:{stage}": registry.get_sample_value(family, {**overall, "stage": stage})
        for family in ("kpimon_open_deals_by_stage", "kpimon_open_pipeline_value_by_stage")
        for stage in ("unknown", "negotiation")
    }
    assert by_stage == {
        "kpimon_open_deals_by_stage:unknown": 1,
        "kpimon_open_deals_by_stage:negotiation": 1,
        "kpimon_open_pipeline_value_by_stage:unknown": 1000.0,
        "kpimon_open_pipeline_value_by_stage:negotiation": 250.0,
    }
    closed = {**labels("1h", ALL), "stage": "negotiation"}
    assert registry.get_sample_value("kpimon_deals_won_by_stage", closed) == 3
    assert registry.get_sample_value("kpimon_deals_lost_by_stage", closed) == 1
    assert registry.get_sample_value("kpimon_deals_lost_by_stage", {**closed, "stage": "discovery"}) == 2
    assert registry.get_sample_value("kpimon_deals_won_by_stage", {**closed, "stage": "discovery"}) is None
