"""streams.readout.window_totals: totals kept incrementally equal ``kpis.window_totals`` summed from the buckets."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.catalog import WINDOW_NAMES, WindowName
from schemas.config import KpimonConfig, RepConfig, TeamConfig
from schemas.scopes import Scope
from streams.core.facts import scope_timezone
from streams.core.folding import BucketGroup, GroupKey
from streams.core.windows import MINUTE, MONTH, RESOLUTIONS
from streams.readout.exact_sums import ONE
from streams.readout.kpis import window_totals as reference_totals
from streams.readout.window_totals import WindowTotals
from tests.unit.readout.test_kpis import ALICE, ALL, BUCKETS, CAROL, CONFIG, EMEA, EXPECTED_TOTALS, G_22H, NOW

Store = dict[str, BucketGroup]
Exact = dict[tuple[Scope, WindowName], dict[str, Fraction]]


def built(groups: Iterable[tuple[str, BucketGroup]], now: int = NOW, config: KpimonConfig = CONFIG) -> WindowTotals:
    totals = WindowTotals(config, now)
    list(totals.reconcile(groups))
    return totals


def applied(totals: WindowTotals, changes: Mapping[str, BucketGroup | None]) -> WindowTotals:
    totals.apply(changes)
    list(totals.sync())
    return totals


def moved(totals: WindowTotals, now: int) -> WindowTotals:
    list(totals.advance(now))
    return totals


def kept(totals: WindowTotals) -> Exact:
    """The keeper's sums, exactly."""
    return {
        (scope, window): {name: Fraction(total, ONE) for name, total in totals.exact_sums(scope, window).items()}
        for scope in totals.scopes
        for window in WINDOW_NAMES
        if totals.exact_sums(scope, window)
    }


def reference(store: Mapping[str, BucketGroup], now: int, config: KpimonConfig = CONFIG) -> Exact:
    """``kpis.window_totals`` over the stored groups, summed as fractions (exact), zero sums left out."""
    exact_groups = [
        (key, {"buckets": {s: {n: Fraction(v) for n, v in c.items()} for s, c in g["buckets"].items()}, "offsets": {}})
        for key, g in store.items()
    ]
    windows = reference_totals(exact_groups, now, config).windows  # type: ignore[arg-type]
    result = {index: {n: Fraction(v) for n, v in sums.items() if v} for index, sums in windows.items()}
    return {index: sums for index, sums in result.items() if sums}


def test_built_from_stored_groups_equals_the_sums_of_their_buckets() -> None:
    totals = built(BUCKETS)
    assert totals.totals().windows == EXPECTED_TOTALS
    assert totals.scopes == {ALL, EMEA, ALICE, Scope(team="amer"), Scope(channel="blog"), CAROL}
    assert totals.take_changes() == dict.fromkeys(totals.scopes)  # every scope is new


@pytest.mark.parametrize(
    "now",
    [
        NOW + 40,  # the same minute
        NOW + 60,  # the first minute of 1h left
        NOW + 3_600,
        NOW + 3_580 + 900,  # a quarter later
        1_700_002_800,  # midnight in Berlin: a new day and a new week for emea
        1_700_006_400,  # midnight UTC: tomorrow's bucket (written in advance) is today
        1_700_438_400,  # Monday 2023-11-20 UTC: a new week
        1_701_388_800,  # 2023-12-01 UTC: a new month, same quarter
        1_704_067_200,  # 2024-01-01 UTC: a new quarter
        NOW + 200 * 86_400,  # far later: every window empty
    ],
)
def test_the_clock_moves_the_windows(now: int) -> None:
    store = dict(BUCKETS)
    assert kept(moved(built(BUCKETS), now)) == reference(store, now)


def test_a_minute_later_the_first_minute_of_1h_has_left() -> None:
    totals = built(BUCKETS)
    totals.take_changes()
    moved(totals, NOW + 60)
    assert totals.view(ALL, "1h") == {"calls": 5, "calls_connected": 1}
    assert totals.take_changes()[ALL] == {"calls", "calls_connected"}  # the minute 1_699_996_440 left


def test_changes_name_the_counters_that_moved() -> None:
    totals = built(BUCKETS)
    totals.take_changes()
    key = GroupKey(0, ALL, MINUTE, G_22H).encode()
    stored = dict(BUCKETS)[key]
    new: BucketGroup = {
        "buckets": {**stored["buckets"], "1699999980": {"calls": 3, "calls_connected": 1}},
        "offsets": {},
    }
    totals.apply({key: new})
    assert totals.view(ALL, "1h") == {"calls": 6, "calls_connected": 2}  # not before the next sync
    list(totals.sync())
    assert totals.view(ALL, "1h") == {"calls": 7, "calls_connected": 2}
    assert totals.take_changes() == {ALL: {"calls"}}
    applied(totals, {key: {**new, "buckets": dict(new["buckets"])}})
    assert totals.take_changes() == {}  # the same values again: nothing changed
    moved(totals, NOW + 1)
    assert totals.take_changes() == {}  # the same minute


def test_deleted_groups_leave_the_totals_and_a_scope_without_groups_goes() -> None:
    store = dict(BUCKETS)
    totals = built(BUCKETS)
    totals.take_changes()
    carol = [key for key in store if GroupKey.decode(key).scope == CAROL]
    alice = [key for key in store if GroupKey.decode(key).scope == ALICE]
    applied(totals, dict.fromkeys(alice[:1]))
    for key in alice[:1]:
        del store[key]
    assert kept(totals) == reference(store, NOW)
    assert ALICE in totals.scopes
    applied(totals, dict.fromkeys(carol))
    assert CAROL not in totals.scopes
    assert totals.take_changes() == {ALICE: {"calls", "calls_connected"}, CAROL: None}


def test_sums_stay_exact_however_often_a_value_comes_and_goes() -> None:
    key = GroupKey(0, ALL, MINUTE, G_22H).encode()
    totals = built([])
    values = []
    for number in range(1, 301):
        values.append(0.1 * number)
        buckets = {str(1_699_999_200 + 60 * i): {"revenue": v} for i, v in enumerate(values[-10:])}
        applied(totals, {key: {"buckets": buckets, "offsets": {}}})
        assert totals.value(ALL, "1h", "revenue") == math.fsum(buckets[s]["revenue"] for s in buckets)
    applied(totals, {key: None})
    assert totals.exact_sums(ALL, "1h") == {}


def test_reconcile_keeps_what_was_applied_after_its_snapshot() -> None:
    """A recovery's snapshot, with batches written between its steps: the groups written later win."""
    store = dict(BUCKETS)
    totals = WindowTotals(CONFIG, NOW)
    steps = totals.reconcile(list(store.items()))
    newer: BucketGroup = {"buckets": {"1699999980": {"calls": 50}}, "offsets": {}}
    first, last = GroupKey(0, ALL, MINUTE, G_22H).encode(), GroupKey(1, ALL, MINUTE, G_22H).encode()
    assert {first, last} <= set(store)
    totals.apply({last: newer, first: None})  # before the reconcile reached either
    store[last] = newer
    del store[first]
    list(steps)
    list(totals.sync())
    assert kept(totals) == reference(store, NOW)


def test_a_sync_stopped_early_leaves_the_rest_for_the_next() -> None:
    store = dict(BUCKETS)
    totals = WindowTotals(CONFIG, NOW)
    totals.apply(store)
    steps = totals.sync()
    next(steps)  # one group
    newer: BucketGroup = {"buckets": {"1699999980": {"calls": 50}}, "offsets": {}}
    key = GroupKey(0, ALL, MINUTE, G_22H).encode()
    totals.apply({key: newer})  # applied again meanwhile: the newer value wins
    store[key] = newer
    steps.close()
    list(totals.sync())
    assert kept(totals) == reference(store, NOW)


def test_reconcile_after_a_rebalance_drops_the_groups_gone_and_takes_the_new_ones() -> None:
    store = dict(BUCKETS)
    totals = built(BUCKETS)
    partition_one = [key for key in store if GroupKey.decode(key).partition == 1]
    for key in partition_one:  # the partition moved to another worker
        del store[key]
    replaced = next(iter(store))
    store[replaced] = {"buckets": {"1699999980": {"calls": 1}}, "offsets": {}}
    list(totals.reconcile(list(store.items())))
    assert kept(totals) == reference(store, NOW)


# -- the property: any folds, clock moves, evictions and recoveries give the reference's totals ---------------------

ZONED = KpimonConfig(
    timezone="America/New_York",
    teams={"emea": TeamConfig(timezone="Europe/Berlin"), "apac": TeamConfig(timezone="Asia/Kathmandu")},
    reps={"ana": RepConfig(team="emea"), "dev": RepConfig(team="apac")},
)
SCOPES = (
    Scope(),
    Scope(team="emea"),
    Scope(team="emea", rep="ana"),
    Scope(team="apac", rep="dev"),
    Scope(channel="web"),
    Scope(campaign="spring|sale"),
)
STARTS = (
    1_698_537_000,  # 2023-10-28T23:50Z: Berlin falls back at 01:00Z (a 25-hour Sunday), then a Monday
    1_699_163_400,  # 2023-11-05T05:50Z: New York falls back at 06:00Z
    1_706_741_400,  # 2024-01-31T22:50Z: the end of January in Berlin and New York
    1_711_925_400,  # 2024-03-31T22:50Z: a quarter ends in Berlin (and it sprang forward that night)
    1_704_059_400,  # 2023-12-31T21:50Z: the year ends in Berlin and Kathmandu first
)
COUNTERS = ("calls", "revenue", "cycle_sample:d1", "stock_mrr_cents")  # a stock: read over every retained bucket
VALUES = st.one_of(
    st.integers(-3, 5),
    st.sampled_from([0.1, 0.25, 1.5, 2.2, -0.1, 1e-9, 12_345.67]),
)
STEPS = st.sampled_from([1, 30, 59, 60, 899, 900, 3_600, 4_000, 86_400, 3 * 86_400, 8 * 86_400, 40 * 86_400])
AGES = st.sampled_from(
    [0, 30, 61, 600, 3_500, 3_700, 86_000, 87_000, 5 * 86_400, 29 * 86_400, 32 * 86_400, 200 * 86_400, -250]
)

write = st.tuples(
    st.just("write"),
    st.integers(0, len(SCOPES) - 1),
    st.integers(0, 1),
    st.integers(0, len(RESOLUTIONS) - 1),
    AGES,
    st.sampled_from(COUNTERS),
    VALUES,
)
operation = st.one_of(
    write,
    write,
    write,
    st.tuples(st.just("clock"), STEPS),
    st.tuples(st.just("evict"), st.integers(0, 1_000)),
    st.tuples(st.just("recover"), st.integers(0, 1_000)),
    st.just(("check",)),
    st.just(("check",)),
)


def written(store: Store, scope: Scope, partition: int, resolution_index: int, timestamp: int) -> tuple[str, str]:
    resolution = RESOLUTIONS[resolution_index]
    tz = scope_timezone(scope, ZONED)
    start = resolution.bucket_start(timestamp, tz)
    key = GroupKey(partition, scope, resolution, resolution.group_start(start, tz)).encode()
    return key, str(start)


def folded(stored: BucketGroup | None, bucket: str, counter: str, delta: float) -> BucketGroup:
    """A new group as the fold writes it: a new object, the changed bucket copied, the others shared."""
    buckets = dict(stored["buckets"]) if stored else {}
    counters = dict(buckets.get(bucket, {}))
    value = counters.get(counter, 0) + delta
    if value == 0 and ":" in counter:
        counters.pop(counter, None)
    else:
        counters[counter] = value
    buckets[bucket] = counters
    return {"buckets": buckets, "offsets": {}}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(STARTS), st.lists(operation, min_size=1, max_size=40))
def test_any_folds_clock_moves_evictions_and_recoveries_give_the_reference_totals(
    start: int, operations: list[tuple[object, ...]]
) -> None:
    now, store = start, {}
    totals = WindowTotals(ZONED, now)
    for op in operations:
        match op:
            case ("write", int(scope), int(partition), int(resolution), int(age), str(counter), delta):
                key, bucket = written(store, SCOPES[scope], partition, resolution, now - age)
                store[key] = folded(store.get(key), bucket, counter, delta)  # type: ignore[arg-type]
                totals.apply({key: store[key]})  # taken in by the next sync: several writes and moves between
            case ("clock", int(seconds)):
                now += seconds
                list(totals.advance(now))  # before the sync: the windows move on the groups synced
            case ("evict", int(index)) if store:
                key = sorted(store)[index % len(store)]
                del store[key]
                totals.apply({key: None})
            case ("recover", int(index)) if store:
                # The store changed behind the keeper's back (a partition restored, another gone), and a
                # batch is written while the reconcile runs.
                keys = sorted(store)
                del store[keys[index % len(keys)]]
                changed = keys[(index + 1) % len(keys)]
                if changed in store:
                    store[changed] = {"buckets": {b: dict(c) for b, c in store[changed]["buckets"].items()}}
                    for counters in store[changed]["buckets"].values():
                        counters["calls"] = counters.get("calls", 0) + 1
                steps = totals.reconcile(list(store.items()))
                next(steps, None)
                key, bucket = written(store, SCOPES[index % len(SCOPES)], 0, index % len(RESOLUTIONS), now)
                store[key] = folded(store.get(key), bucket, "calls", 1)
                totals.apply({key: store[key]})
                list(steps)
            case ("check",):
                list(totals.sync())
                assert kept(totals) == reference(store, now, ZONED)
    list(totals.sync())
    assert kept(totals) == reference(store, now, ZONED)
    assert totals.scopes == {GroupKey.decode(key).scope for key in store}


def test_a_stock_is_read_over_every_retained_bucket_in_every_window() -> None:
    now, store = STARTS[2], {}
    for age, counter in ((200 * 86_400, "stock_mrr_cents"), (200 * 86_400, "calls"), (0, "stock_mrr_cents")):
        key, bucket = written(store, Scope(), 0, RESOLUTIONS.index(MONTH), now - age)
        store[key] = folded(store.get(key), bucket, counter, 5)
    totals = WindowTotals(ZONED, now)
    list(totals.reconcile(list(store.items())))
    constants = ZONED.constants()  # read with the stocks
    assert dict(totals.view(Scope(), "today")) == {"stock_mrr_cents": 10} | constants
    assert dict(totals.view(Scope(), "quarter")) == {"stock_mrr_cents": 10} | constants
    assert kept(totals) == reference(store, now, ZONED)
    list(totals.advance(now + 900 * 86_400))  # every bucket left the retention
    assert dict(totals.view(Scope(), "month")) == {}
