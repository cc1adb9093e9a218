"""streams.metrics.exposition.KpiExposition: the cached text equals KpiCollector's output, after any changes."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from schemas.scopes import Scope
from streams.core.folding import BucketGroup, GroupKey
from streams.core.windows import DAY, MINUTE, QUARTER
from streams.entities.registry import EntityState
from streams.metrics.exposition import KpiExposition, label_text
from streams.metrics.kpi_collector import KpiCollector, ProgressCollector
from streams.readout.open_pipeline import OpenPipeline
from streams.readout.window_totals import WindowTotals
from tests.unit.metrics.test_kpi_collector import (
    ALL,
    BLOG,
    BUCKETS,
    CATALOG,
    CONFIG,
    HOUR_22,
    NOV_UTC,
    NOW,
    SPRING,
    deal,
    group,
)

ODD = Scope(channel='we"ird\\chan\nnel')  # label values are escaped
FUNNEL = group(2, ALL, MINUTE, HOUR_22, {1_699_999_980: {"cycle_sample:d1": 100.0, "lost_reason:price": 2}})
ENTITIES: list[tuple[str, EntityState]] = [
    ("0|deal:a", deal(1000.0, "ann", campaign="spring")),
    ("1|deal:b", deal(500.0, "ann", outcome_at=1_699_100_000)),
    ("3|deal:d", deal(0.1, "cy")),
    ("3|lead:l", {"created_at": 1, "mql_at": None, "sql_at": None, "attributes": {}, "event_ids": []}),
]


class Cached:
    """The worker's side: incremental totals and the cached text, fed like the pipeline feeds them."""

    def __init__(self, buckets: Iterable[tuple[str, BucketGroup]], entities: Iterable[tuple[str, EntityState]]):
        self.totals = WindowTotals(CONFIG, int(NOW))
        self.pipeline = OpenPipeline(CONFIG)
        list(self.totals.reconcile(buckets))
        list(self.pipeline.reconcile(entities))
        self.exposition = KpiExposition(CATALOG, self.totals, self.pipeline)

    def text(self, now: float = NOW) -> bytes:
        list(self.totals.sync())
        list(self.totals.advance(int(now)))
        list(self.exposition.render())
        return self.exposition.body()


def expected(buckets: list[tuple[str, BucketGroup]], entities: list[tuple[str, EntityState]], now: float) -> bytes:
    """KpiCollector's text, without the ingest counters that follow the KPI families."""
    registry = CollectorRegistry()
    registry.register(
        KpiCollector(
            CATALOG, CONFIG, buckets=lambda: buckets, progress=list, clock=lambda: now, entities=lambda: entities
        )
    )
    progress = CollectorRegistry()
    progress.register(ProgressCollector(list))
    text, tail = generate_latest(registry), generate_latest(progress)
    assert text.endswith(tail)
    return text[: len(text) - len(tail)]


def test_the_cached_text_is_the_collectors_byte_for_byte() -> None:
    buckets = [*BUCKETS, FUNNEL, group(0, ODD, QUARTER, 1_699_920_000, {1_699_999_200: {"content_published": 1}})]
    assert Cached(buckets, ENTITIES).text() == expected(buckets, ENTITIES, NOW)


def test_nothing_stored_gives_every_family_without_samples() -> None:
    text = Cached([], []).text()
    assert text == expected([], [], NOW)
    families = list(text_string_to_metric_families(text.decode()))
    assert len(families) == len(CATALOG.kpis) + 10 and not any(family.samples for family in families)


def test_the_text_parses_as_prometheus_text() -> None:
    text = Cached([*BUCKETS, FUNNEL], ENTITIES).text().decode()
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    labels = {"window": "1h", "scope": "all", "team": "", "rep": "", "channel": "", "campaign": ""}
    assert samples[("kpimon_calls", tuple(sorted(labels.items())))] == 5.0
    assert samples[("kpimon_deals_lost_by_reason", tuple(sorted({**labels, "reason": "price"}.items())))] == 2.0
    open_labels = {"scope": "campaign", "team": "", "rep": "", "channel": "", "campaign": "spring"}
    assert samples[("kpimon_open_pipeline_value", tuple(sorted(open_labels.items())))] == 1000.0


def test_label_text_sorts_and_escapes_like_prometheus_client() -> None:
    assert label_text(("b", "a"), ('x"y', "1\\2\n3")) == '{a="1\\\\2\\n3",b="x\\"y"}'


def test_only_the_families_reading_a_changed_counter_are_rendered_again() -> None:
    cached = Cached(BUCKETS, ENTITIES)
    before = cached.text()
    key = GroupKey(1, BLOG, QUARTER, 1_699_920_000).encode()
    stored = dict(BUCKETS)[key]
    cached.totals.apply(
        {key: {"buckets": {**stored["buckets"], "1699999200": {"content_published": 5}}, "offsets": {}}}
    )
    rendered: list[str] = []
    original = cached.exposition._window_lines

    def spy(family, scope, view):  # type: ignore[no-untyped-def]
        rendered.append(family.name)
        return original(family, scope, view)

    cached.exposition._window_lines = spy  # type: ignore[method-assign]
    after = cached.text()
    assert rendered == ["kpimon_content_published"]
    assert after != before
    line = b'kpimon_content_published{campaign="",channel="blog",rep="",scope="channel",team="",window="24h"} '
    assert line + b"5.0\n" in after and after.replace(line + b"5.0", line + b"2.0") == before  # the bucket: 2 -> 5


def test_a_scope_that_goes_leaves_no_lines_and_one_that_comes_is_sorted_in() -> None:
    cached = Cached(BUCKETS, ENTITIES)
    cached.text()
    blog = [key for key, _ in BUCKETS if GroupKey.decode(key).scope == BLOG]
    cached.totals.apply(dict.fromkeys(blog))
    newcomer = group(0, Scope(channel="aardvark"), DAY, NOV_UTC, {1_699_920_000: {"content_published": 1}})
    cached.totals.apply(dict([newcomer]))
    cached.pipeline.apply({"0|deal:a": None, "4|deal:z": deal(7.0, "zed")})
    final = [(key, value) for key, value in BUCKETS if key not in blog] + [newcomer]
    entities = [*ENTITIES[1:], ("4|deal:z", deal(7.0, "zed"))]
    assert cached.text() == expected(final, entities, NOW)
    assert b'channel="blog"' not in cached.text() and b'campaign="spring",' not in cached.text()  # deal a went


# -- the property: whatever is written and however the clock moves, the text is the collector's --------------------

SCOPES = (ALL, BLOG, Scope(team="emea"), Scope(team="emea", rep="alice"), SPRING)
COUNTERS = ("calls", "calls_connected", "content_published", "leads", "revenue", "cycle_sample:d2", "lost_reason:x")
change = st.one_of(
    st.tuples(
        st.just("write"),
        st.sampled_from(SCOPES),
        st.sampled_from(COUNTERS),
        st.integers(-120, 3_000),  # seconds before the clock
        st.sampled_from([1, 2, -1, 0.5, 1e3]),
    ),
    st.tuples(st.just("clock"), st.sampled_from([20, 60, 900, 3_600, 86_400])),
    st.tuples(st.just("deal"), st.sampled_from(["ann", "bob"]), st.sampled_from([None, 10.0, 2.5])),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(change, min_size=1, max_size=12))
def test_after_any_changes_the_text_is_the_collectors(changes: list[tuple[object, ...]]) -> None:
    store: dict[str, BucketGroup] = dict(BUCKETS)
    entities: dict[str, EntityState] = dict(ENTITIES)
    cached, now = Cached(store.items(), entities.items()), NOW
    cached.text(now)
    for step in changes:
        match step:
            case ("write", Scope() as scope, str(counter), int(age), delta):
                start = MINUTE.bucket_start(int(now) - age, None)  # type: ignore[arg-type]
                key = GroupKey(0, scope, MINUTE, start - start % 3600).encode()
                buckets = dict(store[key]["buckets"]) if key in store else {}
                counters = dict(buckets.get(str(start), {}))
                counters[counter] = counters.get(counter, 0) + delta  # type: ignore[operator]
                buckets[str(start)] = counters
                store[key] = {"buckets": buckets, "offsets": {}}
                cached.totals.apply({key: store[key]})
            case ("clock", int(seconds)):
                now += seconds
            case ("deal", str(rep), amount):
                key = f"5|deal:{rep}"
                entities[key] = deal(amount, rep) if amount is not None else deal(1.0, rep, outcome_at=1)
                cached.pipeline.apply({key: entities[key]})
        assert cached.text(now) == expected(list(store.items()), list(entities.items()), now)


@pytest.mark.parametrize("steps_taken", [0, 1, 3])
def test_steps_can_be_taken_one_by_one_with_writes_between(steps_taken: int) -> None:
    cached = Cached(BUCKETS, ENTITIES)
    cached.text()
    key = GroupKey(0, ALL, MINUTE, HOUR_22).encode()
    store = dict(BUCKETS)
    for calls in range(1, 5):
        store[key] = {"buckets": {"1699999980": {"calls": calls}}, "offsets": {}}
        cached.totals.apply({key: store[key]})
        other = GroupKey(0, Scope(team="emea", rep=f"r{calls}"), MINUTE, HOUR_22).encode()
        store[other] = {"buckets": {"1699999980": {"calls": 1}}, "offsets": {}}
        cached.totals.apply({other: store[other]})
    steps = cached.exposition.render()
    for _ in range(steps_taken):
        next(steps, None)
    store[key] = {"buckets": {"1699999980": {"calls": 9}}, "offsets": {}}
    cached.totals.apply({key: store[key]})  # between two steps: the next render takes it
    list(steps)
    assert cached.text() == expected(list(store.items()), ENTITIES, NOW)
