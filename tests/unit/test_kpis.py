"""streams.kpis: window totals from hand-made buckets, and KPI samples from them."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from schemas.catalog import Catalog, WindowName, load_catalog
from schemas.config import KpimonConfig, RepConfig, TeamConfig
from streams.facts import Scope
from streams.folding import BucketGroup, GroupKey
from streams.kpis import KpiSample, ScopeTotals, kpi_samples, scope_timezone, window_totals
from streams.windows import HOUR, MINUTE, QUARTER, Resolution

NOW = 1_700_000_000  # 2023-11-14T22:13:20Z
# Window ranges at NOW (see test_windows): 1h minutes 1_699_996_440..1_699_999_980,
# 24h quarters 1_699_913_700..1_699_999_200, 7d hours 1_699_398_000..1_699_999_200,
# today quarters from local midnight: UTC 1_699_920_000, Europe/Berlin 1_699_916_400,
# America/New_York 1_699_938_000.
CONFIG = KpimonConfig(
    timezone="UTC",
    teams={"emea": TeamConfig(timezone="Europe/Berlin"), "amer": TeamConfig(timezone="America/New_York")},
    reps={"alice": RepConfig(team="emea")},
)

ALL = Scope()
EMEA = Scope(team="emea")
ALICE = Scope(team="emea", rep="alice")
AMER = Scope(team="amer")
BLOG = Scope(channel="blog")
CAROL = Scope(team="unassigned", rep="carol")


Row = tuple[int, Scope, Resolution, int, int, dict[str, float]]


def groups(*rows: Row) -> list[tuple[str, BucketGroup]]:
    """(partition, scope, resolution, group start, bucket start, counters) rows merged into stored groups."""
    result: dict[str, BucketGroup] = {}
    for partition, scope, resolution, group_start, start, counters in rows:
        value = result.setdefault(
            GroupKey(partition, scope, resolution, group_start).encode(), {"buckets": {}, "offsets": {"crm": 1}}
        )
        assert str(start) not in value["buckets"]
        value["buckets"][str(start)] = counters
    return list(result.items())


# Group starts: minutes by the hour, quarters and hours by the UTC day.
G_22H = 1_699_999_200  # 2023-11-14T22:00Z
G_21H = 1_699_995_600
G_19H = 1_699_988_400
D_14 = 1_699_920_000  # 2023-11-14T00:00Z
D_13 = 1_699_833_600
D_07 = 1_699_315_200

BUCKETS = groups(
    # overall, two partitions
    (0, ALL, MINUTE, G_22H, 1_699_999_980, {"calls": 2, "calls_connected": 1}),
    (1, ALL, MINUTE, G_22H, 1_699_999_920, {"calls": 3}),
    (1, ALL, MINUTE, G_21H, 1_699_996_440, {"calls": 1, "calls_connected": 1}),  # first minute of 1h
    (0, ALL, MINUTE, G_21H, 1_699_996_380, {"calls": 100}),  # just before 1h
    (0, ALL, QUARTER, D_14, 1_699_999_200, {"calls": 5, "calls_connected": 2}),
    (1, ALL, QUARTER, D_13, 1_699_913_700, {"calls": 7}),  # first quarter of 24h, before UTC midnight
    (1, ALL, QUARTER, D_14, 1_699_920_000, {"calls": 9}),  # the first quarter of today (UTC)
    (1, ALL, QUARTER, D_13, 1_699_912_800, {"calls": 1_000}),  # just before 24h
    (0, ALL, HOUR, D_07, 1_699_398_000, {"calls": 11}),  # first hour of 7d
    (1, ALL, HOUR, D_14, 1_699_999_200, {"calls": 12, "calls_connected": 6}),
    (0, ALL, HOUR, D_07, 1_699_394_400, {"calls": 10_000}),  # just before 7d
    # team emea (Europe/Berlin: today from 1_699_916_400)
    (0, EMEA, QUARTER, D_13, 1_699_916_400, {"calls": 4}),
    (1, EMEA, QUARTER, D_13, 1_699_915_500, {"calls": 40}),  # 24h but not today
    (0, ALICE, QUARTER, D_13, 1_699_916_400, {"calls": 1, "calls_connected": 1}),
    (0, ALICE, HOUR, D_07, 1_699_398_000, {"meetings_booked": 2}),
    # team amer (America/New_York: today from 1_699_938_000)
    (0, AMER, QUARTER, D_14, 1_699_937_100, {"calls": 3}),  # 24h but not today
    (0, AMER, QUARTER, D_14, 1_699_938_000, {"calls": 6}),
    # a channel (the config's UTC for today)
    (0, BLOG, QUARTER, D_13, 1_699_916_400, {"content_published": 2}),  # before UTC midnight
    (1, BLOG, QUARTER, D_14, 1_699_998_300, {"content_published": 1}),
    # a rep with data only outside every window
    (1, CAROL, MINUTE, G_19H, 1_699_989_960, {"emails_sent": 1}),
)

EXPECTED_TOTALS: dict[tuple[Scope, WindowName], dict[str, float]] = {
    (ALL, "1h"): {"calls": 6, "calls_connected": 2},
    (ALL, "24h"): {"calls": 21, "calls_connected": 2},
    (ALL, "today"): {"calls": 14, "calls_connected": 2},
    (ALL, "7d"): {"calls": 23, "calls_connected": 6},
    (EMEA, "24h"): {"calls": 44},
    (EMEA, "today"): {"calls": 4},
    (ALICE, "24h"): {"calls": 1, "calls_connected": 1},
    (ALICE, "today"): {"calls": 1, "calls_connected": 1},
    (ALICE, "7d"): {"meetings_booked": 2},
    (AMER, "24h"): {"calls": 9},
    (AMER, "today"): {"calls": 6},
    (BLOG, "24h"): {"content_published": 3},
    (BLOG, "today"): {"content_published": 1},
}


def totals() -> ScopeTotals:
    return window_totals(BUCKETS, NOW, CONFIG)


def nonempty(
    windows: dict[tuple[Scope, WindowName], dict[str, float]],
) -> dict[tuple[Scope, WindowName], dict[str, float]]:
    """Totals without the empty sums of groups that overlap a window by none of their stored buckets."""
    return {index: sums for index, sums in windows.items() if sums}


def test_window_totals() -> None:
    result = totals()
    assert nonempty(result.windows) == EXPECTED_TOTALS
    assert result.scopes == {ALL, EMEA, ALICE, AMER, BLOG, CAROL}


def test_window_totals_of_nothing() -> None:
    assert window_totals([], NOW, CONFIG) == ScopeTotals(windows={}, scopes=set())


def test_buckets_of_one_group_are_split_between_windows() -> None:
    # One quarter group (the UTC day 2023-11-14) in Europe/Berlin; NOW = 23:13 CET.
    data = groups(
        (0, EMEA, QUARTER, D_14, 1_699_920_000, {"calls": 1}),  # 00:00Z
        (0, EMEA, QUARTER, D_14, 1_699_999_200, {"calls": 2}),  # 22:00Z
        (0, EMEA, QUARTER, D_14, 1_700_000_100, {"calls": 4}),  # 22:15Z: after NOW's quarter
        (0, EMEA, MINUTE, G_22H, 1_699_999_980, {"calls": 8}),
        (0, EMEA, MINUTE, G_22H, 1_700_000_040, {"calls": 16}),  # the next minute
    )
    assert nonempty(window_totals(data, NOW, CONFIG).windows) == {
        (EMEA, "24h"): {"calls": 3},
        (EMEA, "today"): {"calls": 3},
        (EMEA, "1h"): {"calls": 8},
    }


def test_partitions_are_summed() -> None:
    one = groups((0, ALL, MINUTE, G_22H, 1_699_999_980, {"calls": 2}))
    two = groups(
        (0, ALL, MINUTE, G_22H, 1_699_999_980, {"calls": 2}),
        (1, ALL, MINUTE, G_22H, 1_699_999_980, {"calls": 3}),
        (5, ALL, MINUTE, G_22H, 1_699_999_980, {"calls": 4.5}),
    )
    assert window_totals(one, NOW, CONFIG).windows == {(ALL, "1h"): {"calls": 2}}
    assert window_totals(two, NOW, CONFIG).windows == {(ALL, "1h"): {"calls": 9.5}}


@pytest.mark.parametrize(
    ("timezone", "today_calls"),
    [
        ("UTC", 9 + 5),  # from 1_699_920_000
        ("Europe/Berlin", 9 + 5),  # from 1_699_916_400: nothing extra for the overall scope
        ("America/New_York", 5),  # from 1_699_938_000
        ("Asia/Kolkata", 5),  # from 1_699_986_600
        ("Pacific/Honolulu", 5),  # 12:13 HST: from 1_699_956_000 (10:00Z)
        ("Europe/Helsinki", 5),  # 00:13 EET on the 15th: from 1_699_999_200, today has just begun
    ],
)
def test_config_timezone_sets_today_of_the_overall_scope(timezone: str, today_calls: float) -> None:
    config = KpimonConfig(timezone=timezone)
    result = window_totals(BUCKETS, NOW, config)
    assert result.windows[(ALL, "today")]["calls"] == today_calls


@pytest.mark.parametrize(
    ("scope", "timezone"),
    [
        (ALL, "UTC"),
        (BLOG, "UTC"),
        (EMEA, "Europe/Berlin"),
        (ALICE, "Europe/Berlin"),
        (AMER, "America/New_York"),
        (CAROL, "UTC"),  # the unassigned team is not configured
        (Scope(team="apac"), "UTC"),
    ],
)
def test_scope_timezone(scope: Scope, timezone: str) -> None:
    assert scope_timezone(scope, CONFIG) == ZoneInfo(timezone)


CATALOG = load_catalog()


def samples(catalog: Catalog = CATALOG) -> dict[tuple[str, Scope, str], float]:
    result: dict[tuple[str, Scope, str], float] = {}
    for sample in kpi_samples(catalog, totals()):
        assert isinstance(sample, KpiSample)
        index = (sample.kpi.id, sample.scope, sample.window)
        assert index not in result
        result[index] = sample.value
    return result


@pytest.mark.parametrize(
    ("kpi", "scope", "window", "value"),
    [
        ("calls", ALL, "1h", 6.0),
        ("calls", ALL, "24h", 21.0),
        ("calls", ALL, "today", 14.0),
        ("calls", ALL, "7d", 23.0),
        ("call_connect_rate", ALL, "1h", 2 / 6),
        ("call_connect_rate", ALL, "7d", 6 / 23),
        ("call_connect_rate", ALICE, "today", 1.0),
        ("calls", EMEA, "today", 4.0),
        ("calls", EMEA, "24h", 44.0),
        ("calls", AMER, "today", 6.0),
        ("call_connect_rate", EMEA, "24h", 0.0),  # 0 connected of 44
        # a count KPI with no data in the window is 0 for a known scope
        ("calls", EMEA, "1h", 0.0),
        ("calls", EMEA, "7d", 0.0),
        ("calls", CAROL, "1h", 0.0),
        ("emails_sent", CAROL, "1h", 0.0),  # carol's only minute is before the 1h window
        ("meetings_booked", ALICE, "7d", 2.0),
        ("meetings_booked", ALICE, "today", 0.0),
        ("content_published", BLOG, "today", 1.0),
        ("content_published", BLOG, "24h", 3.0),
        ("content_published", BLOG, "1h", 0.0),
        ("content_published", ALL, "24h", 0.0),
        ("email_campaign_sends", AMER, "7d", 0.0),
    ],
)
def test_kpi_sample_values(kpi: str, scope: Scope, window: str, value: float) -> None:
    assert samples()[(kpi, scope, window)] == pytest.approx(value, rel=1e-12)


@pytest.mark.parametrize(
    ("kpi", "scope", "window"),
    [
        # a ratio over zero is left out
        ("call_connect_rate", EMEA, "1h"),
        ("call_connect_rate", CAROL, "7d"),
        ("email_response_rate", ALL, "1h"),
        ("call_connect_rate", ALICE, "7d"),  # alice has meetings in 7d, but no calls
        # scopes outside the KPI's `scopes`
        ("calls", BLOG, "1h"),  # calls: all, team, rep
        ("content_published", ALICE, "today"),  # content: all, team, channel
        ("content_published", CAROL, "24h"),
        ("email_campaign_sends", ALICE, "1h"),  # campaign sends: all, team
        ("email_campaign_sends", BLOG, "1h"),
        # scopes without any bucket are unknown
        ("calls", Scope(team="apac"), "1h"),
    ],
)
def test_kpi_samples_left_out(kpi: str, scope: Scope, window: str) -> None:
    assert (kpi, scope, window) not in samples()


def test_every_sample_scope_is_allowed_by_its_kpi() -> None:
    catalog = CATALOG
    by_id = {kpi.id: kpi for kpi in catalog.kpis}
    found = samples(catalog)
    assert found
    for kpi_id, scope, window in found:
        assert scope.kind in by_id[kpi_id].scopes
        assert window in by_id[kpi_id].windows
    # per KPI: 6 scopes, those of its kinds, in 4 windows (minus ratios over zero)
    count_kpis = [kpi for kpi in catalog.kpis if kpi.unit != "ratio"]
    expected_count = sum(
        4 * sum(1 for scope in (ALL, EMEA, ALICE, AMER, BLOG, CAROL) if scope.kind in kpi.scopes) for kpi in count_kpis
    )
    assert sum(1 for kpi_id, _, _ in found if by_id[kpi_id].unit != "ratio") == expected_count
