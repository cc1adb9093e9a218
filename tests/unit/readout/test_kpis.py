"""streams.readout.kpis: window totals from hand-made buckets, and KPI samples from them."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from schemas.catalog import WINDOW_NAMES, Catalog, WindowName, load_catalog
from schemas.config import KpimonConfig, RepConfig, TeamConfig
from schemas.scopes import Scope
from streams.core.facts import scope_timezone
from streams.core.folding import BucketGroup, GroupKey
from streams.core.windows import DAY, HOUR, MINUTE, MONTH, QUARTER, Resolution
from streams.readout.kpis import (
    KpiSample,
    ScopeTotals,
    kpi_samples,
    monthly_report,
    monthly_totals,
    quantile,
    window_totals,
)

NOW = 1_700_000_000  # 2023-11-14T22:13:20Z, a Tuesday (23:13 CET, 17:13 EST)
# Window ranges at NOW (see test_windows): 1h minutes 1_699_996_440..1_699_999_980,
# 24h quarters 1_699_913_700..1_699_999_200, 7d hours 1_699_398_000..1_699_999_200.
# Day buckets (local midnights):  today        week from (Mon 13th)  30d from (Oct 16th)
#   UTC                           1_699_920_000  1_699_833_600        1_697_414_400
#   Europe/Berlin                 1_699_916_400  1_699_830_000        1_697_407_200
#   America/New_York              1_699_938_000  1_699_851_600        1_697_428_800
# Month buckets:                  month (Nov)    quarter from (Oct)
#   UTC                           1_698_796_800  1_696_118_400
#   Europe/Berlin                 1_698_793_200  1_696_111_200
#   America/New_York              1_698_811_200  1_696_132_800
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


# Group starts: minutes by the hour, quarters and hours by the UTC day, days by the local month,
# months by the local year.
G_22H = 1_699_999_200  # 2023-11-14T22:00Z
G_21H = 1_699_995_600
G_19H = 1_699_988_400
D_14 = 1_699_920_000  # 2023-11-14T00:00Z
D_13 = 1_699_833_600
D_07 = 1_699_315_200
NOV_UTC, OCT_UTC, SEP_UTC, DEC22_UTC = 1_698_796_800, 1_696_118_400, 1_693_526_400, 1_669_852_800
NOV_BER, OCT_BER = 1_698_793_200, 1_696_111_200
NOV_NY = 1_698_811_200
Y23_UTC, Y22_UTC, Y23_BER, Y23_NY = 1_672_531_200, 1_640_995_200, 1_672_527_600, 1_672_549_200

BUCKETS = groups(
    # overall, two partitions
    (0, ALL, MINUTE, G_22H, 1_699_999_980, {"calls": 2, "calls_connected": 1}),
    (1, ALL, MINUTE, G_22H, 1_699_999_920, {"calls": 3}),
    (1, ALL, MINUTE, G_21H, 1_699_996_440, {"calls": 1, "calls_connected": 1}),  # first minute of 1h
    (0, ALL, MINUTE, G_21H, 1_699_996_380, {"calls": 100}),  # just before 1h
    (0, ALL, QUARTER, D_14, 1_699_999_200, {"calls": 5, "calls_connected": 2}),
    (1, ALL, QUARTER, D_13, 1_699_913_700, {"calls": 7}),  # first quarter of 24h, before UTC midnight
    (1, ALL, QUARTER, D_14, 1_699_920_000, {"calls": 9}),
    (1, ALL, QUARTER, D_13, 1_699_912_800, {"calls": 1_000}),  # just before 24h
    (0, ALL, HOUR, D_07, 1_699_398_000, {"calls": 11}),  # first hour of 7d
    (1, ALL, HOUR, D_14, 1_699_999_200, {"calls": 12, "calls_connected": 6}),
    (0, ALL, HOUR, D_07, 1_699_394_400, {"calls": 10_000}),  # just before 7d
    (0, ALL, DAY, NOV_UTC, 1_699_920_000, {"calls": 14, "calls_connected": 2}),  # today (UTC)
    (1, ALL, DAY, NOV_UTC, 1_699_920_000, {"calls": 1}),
    (0, ALL, DAY, NOV_UTC, 1_699_833_600, {"calls": 20}),  # Monday: the first day of the week
    (0, ALL, DAY, NOV_UTC, 1_699_747_200, {"calls": 300}),  # Sunday: 30d, not the week
    (1, ALL, DAY, OCT_UTC, 1_697_414_400, {"calls": 4_000}),  # the first day of 30d
    (1, ALL, DAY, OCT_UTC, 1_697_328_000, {"calls": 50_000}),  # just before 30d
    (0, ALL, DAY, NOV_UTC, 1_700_006_400, {"calls": 600_000}),  # tomorrow: in no window at NOW
    (0, ALL, MONTH, Y23_UTC, NOV_UTC, {"calls": 7}),  # this month
    (1, ALL, MONTH, Y23_UTC, NOV_UTC, {"calls": 3}),
    (0, ALL, MONTH, Y23_UTC, OCT_UTC, {"calls": 100}),  # the first month of the quarter
    (0, ALL, MONTH, Y23_UTC, SEP_UTC, {"calls": 1_000}),  # the quarter before
    (1, ALL, MONTH, Y22_UTC, DEC22_UTC, {"calls": 10_000}),  # history only
    # team emea (Europe/Berlin)
    (0, EMEA, QUARTER, D_13, 1_699_916_400, {"calls": 4}),
    (1, EMEA, QUARTER, D_13, 1_699_915_500, {"calls": 40}),
    (0, EMEA, DAY, NOV_BER, 1_699_916_400, {"calls": 4}),  # today
    (1, EMEA, DAY, NOV_BER, 1_699_830_000, {"calls": 40}),  # Monday
    (0, EMEA, DAY, OCT_BER, 1_697_407_200, {"calls": 400}),  # the first day of 30d, 2023-10-16 CEST
    (0, EMEA, MONTH, Y23_BER, NOV_BER, {"calls": 44}),
    (1, EMEA, MONTH, Y23_BER, OCT_BER, {"calls": 400}),
    (0, ALICE, QUARTER, D_13, 1_699_916_400, {"calls": 1, "calls_connected": 1}),
    (0, ALICE, HOUR, D_07, 1_699_398_000, {"meetings_booked": 2}),
    (0, ALICE, DAY, NOV_BER, 1_699_916_400, {"calls": 1, "calls_connected": 1}),
    (0, ALICE, DAY, NOV_BER, 1_699_398_000, {"meetings_booked": 2}),  # 2023-11-08 00:00 CET
    (0, ALICE, MONTH, Y23_BER, NOV_BER, {"calls": 1, "calls_connected": 1, "meetings_booked": 2}),
    # team amer (America/New_York)
    (0, AMER, QUARTER, D_14, 1_699_937_100, {"calls": 3}),
    (0, AMER, QUARTER, D_14, 1_699_938_000, {"calls": 6}),
    (0, AMER, DAY, NOV_NY, 1_699_851_600, {"calls": 3}),  # Monday
    (0, AMER, DAY, NOV_NY, 1_699_938_000, {"calls": 6}),  # today
    (0, AMER, MONTH, Y23_NY, NOV_NY, {"calls": 9}),
    # a channel (the config's UTC)
    (0, BLOG, QUARTER, D_13, 1_699_916_400, {"content_published": 2}),
    (1, BLOG, QUARTER, D_14, 1_699_998_300, {"content_published": 1}),
    (0, BLOG, DAY, NOV_UTC, 1_699_747_200, {"content_published": 2}),  # Sunday
    (1, BLOG, DAY, NOV_UTC, 1_699_920_000, {"content_published": 1}),
    (0, BLOG, MONTH, Y23_UTC, NOV_UTC, {"content_published": 3}),
    # a rep with data only outside every window
    (1, CAROL, MINUTE, G_19H, 1_699_989_960, {"emails_sent": 1}),
)

ALICE_CALL = {"calls": 1, "calls_connected": 1}
EXPECTED_TOTALS: dict[tuple[Scope, WindowName], dict[str, float]] = {
    (ALL, "1h"): {"calls": 6, "calls_connected": 2},
    (ALL, "24h"): {"calls": 21, "calls_connected": 2},
    (ALL, "7d"): {"calls": 23, "calls_connected": 6},
    (ALL, "today"): {"calls": 15, "calls_connected": 2},
    (ALL, "week"): {"calls": 35, "calls_connected": 2},
    (ALL, "30d"): {"calls": 4_335, "calls_connected": 2},
    (ALL, "month"): {"calls": 10},
    (ALL, "quarter"): {"calls": 110},
    (EMEA, "24h"): {"calls": 44},
    (EMEA, "today"): {"calls": 4},
    (EMEA, "week"): {"calls": 44},
    (EMEA, "30d"): {"calls": 444},
    (EMEA, "month"): {"calls": 44},
    (EMEA, "quarter"): {"calls": 444},
    (ALICE, "24h"): ALICE_CALL,
    (ALICE, "7d"): {"meetings_booked": 2},
    (ALICE, "today"): ALICE_CALL,
    (ALICE, "week"): ALICE_CALL,
    (ALICE, "30d"): {**ALICE_CALL, "meetings_booked": 2},
    (ALICE, "month"): {**ALICE_CALL, "meetings_booked": 2},
    (ALICE, "quarter"): {**ALICE_CALL, "meetings_booked": 2},
    (AMER, "24h"): {"calls": 9},
    (AMER, "today"): {"calls": 6},
    (AMER, "week"): {"calls": 9},
    (AMER, "30d"): {"calls": 9},
    (AMER, "month"): {"calls": 9},
    (AMER, "quarter"): {"calls": 9},
    (BLOG, "24h"): {"content_published": 3},
    (BLOG, "today"): {"content_published": 1},
    (BLOG, "week"): {"content_published": 1},
    (BLOG, "30d"): {"content_published": 3},
    (BLOG, "month"): {"content_published": 3},
    (BLOG, "quarter"): {"content_published": 3},
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
    # One quarter group (the UTC day 2023-11-14) and one day group (November in Berlin); NOW = 23:13 CET.
    data = groups(
        (0, EMEA, QUARTER, D_14, 1_699_920_000, {"calls": 1}),  # 00:00Z
        (0, EMEA, QUARTER, D_14, 1_699_999_200, {"calls": 2}),  # 22:00Z
        (0, EMEA, QUARTER, D_14, 1_700_000_100, {"calls": 4}),  # 22:15Z: after NOW's quarter
        (0, EMEA, MINUTE, G_22H, 1_699_999_980, {"calls": 8}),
        (0, EMEA, MINUTE, G_22H, 1_700_000_040, {"calls": 16}),  # the next minute
        (0, EMEA, DAY, NOV_BER, 1_699_916_400, {"calls": 32}),  # Tuesday 14th
        (0, EMEA, DAY, NOV_BER, 1_699_830_000, {"calls": 64}),  # Monday 13th
        (0, EMEA, DAY, NOV_BER, 1_699_743_600, {"calls": 128}),  # Sunday 12th
        (0, EMEA, DAY, NOV_BER, 1_700_002_800, {"calls": 256}),  # Wednesday 15th: after NOW's day
    )
    assert nonempty(window_totals(data, NOW, CONFIG).windows) == {
        (EMEA, "24h"): {"calls": 3},
        (EMEA, "1h"): {"calls": 8},
        (EMEA, "today"): {"calls": 32},
        (EMEA, "week"): {"calls": 96},
        (EMEA, "30d"): {"calls": 224},
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


# Day buckets of several zones' local days in one group (as if the zone had changed each day).
ZONE_DAYS = groups(
    (0, ALL, DAY, NOV_UTC - 86_400, 1_699_920_000, {"calls": 1}),  # 2023-11-14 in UTC
    (0, ALL, DAY, NOV_UTC - 86_400, 1_699_916_400, {"calls": 2}),  # 2023-11-14 in Berlin
    (0, ALL, DAY, NOV_UTC - 86_400, 1_699_938_000, {"calls": 4}),  # 2023-11-14 in New York
    (0, ALL, DAY, NOV_UTC - 86_400, 1_699_986_600, {"calls": 8}),  # 2023-11-15 in Kolkata (+05:30)
    (0, ALL, DAY, NOV_UTC - 86_400, 1_699_956_000, {"calls": 16}),  # 2023-11-14 in Honolulu (10:00Z)
    (0, ALL, DAY, NOV_UTC - 86_400, 1_699_999_200, {"calls": 32}),  # 2023-11-15 in Helsinki (22:00Z)
    (0, ALL, DAY, NOV_UTC - 86_400, 1_699_985_700, {"calls": 64}),  # 2023-11-15 in Kathmandu (+05:45)
    (0, ALL, MINUTE, G_22H, 1_699_999_980, {"calls": 128}),
)


@pytest.mark.parametrize(
    ("timezone", "today_calls"),
    [
        ("UTC", 1),
        ("Europe/Berlin", 2),
        ("America/New_York", 4),
        ("Asia/Kolkata", 8),
        ("Pacific/Honolulu", 16),  # 12:13 HST
        ("Europe/Helsinki", 32),  # 00:13 EET on the 15th: today has just begun
        ("Asia/Kathmandu", 64),
    ],
)
def test_config_timezone_sets_today_of_the_overall_scope(timezone: str, today_calls: float) -> None:
    config = KpimonConfig(timezone=timezone)
    result = window_totals(ZONE_DAYS, NOW, config)
    assert result.windows[(ALL, "today")] == {"calls": today_calls}
    assert result.windows[(ALL, "1h")] == {"calls": 128}  # rolling windows do not depend on the zone


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
        ("calls", ALL, "today", 15.0),
        ("calls", ALL, "7d", 23.0),
        ("calls", ALL, "week", 35.0),
        ("calls", ALL, "30d", 4_335.0),
        ("calls", ALL, "month", 10.0),
        ("calls", ALL, "quarter", 110.0),
        ("call_connect_rate", ALL, "30d", 2 / 4_335),
        ("call_connect_rate", ALICE, "quarter", 1.0),
        ("meetings_booked", ALICE, "month", 2.0),
        ("meetings_booked", ALICE, "week", 0.0),
        ("calls", EMEA, "quarter", 444.0),
        ("calls", AMER, "week", 9.0),
        ("content_published", BLOG, "week", 1.0),
        ("content_published", BLOG, "30d", 3.0),
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
    # per KPI that is a plain counter: 6 scopes, those of its kinds, in its windows (other KPIs may divide by zero)
    count_kpis = [kpi for kpi in catalog.kpis if kpi.formula.source in catalog.counters]
    assert len(WINDOW_NAMES) == 8
    expected_count = sum(
        len(kpi.windows) * sum(1 for scope in (ALL, EMEA, ALICE, AMER, BLOG, CAROL) if scope.kind in kpi.scopes)
        for kpi in count_kpis
    )
    assert sum(1 for kpi_id, _, _ in found if by_id[kpi_id] in count_kpis) == expected_count


def test_monthly_totals() -> None:
    # Months labelled in each scope's zone, partitions summed; Berlin's November starts at
    # 2023-10-31T23:00Z, which is still October in UTC.
    result = monthly_totals(BUCKETS, CONFIG)
    assert result == {
        (AMER, "2023-11"): {"calls": 9},
        (ALICE, "2023-11"): {"calls": 1, "calls_connected": 1, "meetings_booked": 2},
        (EMEA, "2023-10"): {"calls": 400},
        (EMEA, "2023-11"): {"calls": 44},
        (ALL, "2022-12"): {"calls": 10_000},
        (ALL, "2023-09"): {"calls": 1_000},
        (ALL, "2023-10"): {"calls": 100},
        (ALL, "2023-11"): {"calls": 10},
        (BLOG, "2023-11"): {"content_published": 3},
    }
    assert list(result) == sorted(result, key=lambda index: (index[0].key, index[1]))


def test_monthly_totals_across_partitions_and_zones() -> None:
    data = groups(
        (0, EMEA, MONTH, Y23_BER, NOV_BER, {"calls": 1, "calls_connected": 1}),
        (1, EMEA, MONTH, Y23_BER, NOV_BER, {"calls": 2}),
        (3, EMEA, MONTH, Y23_BER, OCT_BER, {"calls": 4}),
        (0, ALL, MONTH, Y23_UTC, NOV_UTC, {"calls": 8}),
        (2, ALL, MONTH, Y23_UTC, NOV_UTC, {"calls": 16.5}),
        (0, ALL, DAY, NOV_UTC, 1_699_920_000, {"calls": 1_000}),  # not a month bucket
        (0, ALL, HOUR, D_14, 1_699_999_200, {"calls": 1_000}),
    )
    assert monthly_totals(data, CONFIG) == {
        (EMEA, "2023-10"): {"calls": 4},
        (EMEA, "2023-11"): {"calls": 3, "calls_connected": 1},
        (ALL, "2023-11"): {"calls": 24.5},
    }
    # the same Berlin month starts, labelled in UTC, are the last days of the month before
    in_utc = monthly_totals(data, KpimonConfig(timezone="UTC"))
    assert in_utc[(EMEA, "2023-10")] == {"calls": 3, "calls_connected": 1}
    assert in_utc[(EMEA, "2023-09")] == {"calls": 4}
    assert monthly_totals([], CONFIG) == {}


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([], 0.5, None),
        ([7.0], 0.9, 7.0),
        ([1.0, 2.0, 3.0, 4.0], 0.5, 2.5),  # rank 1.5: halfway between 2 and 3
        ([10.0, 20.0, 30.0], 0.9, 28.0),  # rank 1.8: 20 + 0.8 x 10
        ([30.0, 10.0, 20.0], 0.5, 20.0),  # unsorted input
    ],
)
def test_quantile_by_linear_interpolation(values: list[float], q: float, expected: float | None) -> None:
    assert quantile(values, q) == expected


def test_monthly_report_has_counters_kpis_and_cycle_quantiles() -> None:
    catalog = load_catalog()
    team = Scope(team="emea")
    totals = {
        (team, "2017-03"): {
            "opportunities_created": 4,
            "deals_won": 2,
            "deals_lost": 2,
            "revenue": 300.0,
            "deals_won_timed": 2,
            "cycle_seconds": 4 * 86400,
            "cycle_sample:d1": 86400.0,
            "cycle_sample:d2": 3 * 86400.0,
            "lost_reason:price": 2,
        }
    }
    [row] = monthly_report(catalog, totals)
    assert (row["month"], row["scope"], row["team"], row["rep"], row["channel"], row["campaign"]) == (
        "2017-03",
        "team",
        "emea",
        "",
        "",
        "",
    )
    assert "cycle_sample:d1" not in row["counters"] and row["counters"]["revenue"] == 300.0  # type: ignore[index]
    kpis = row["kpis"]
    assert isinstance(kpis, dict)
    assert kpis["win_rate"] == 0.5 and kpis["average_deal_size"] == 150.0 and kpis["sales_cycle"] == 2 * 86400
    assert kpis["sales_cycle_p50_seconds"] == 2 * 86400
    assert kpis["sales_cycle_p90_seconds"] == pytest.approx(2.8 * 86400)  # 1 day + 0.9 x 2 days
    assert kpis["pipeline_velocity"] == 4 * 150.0 * 0.5 / 2  # opportunities x deal size x win rate / cycle days
    assert "leads" in kpis and "lead_to_mql" not in kpis  # a count of nothing is 0; a ratio over 0 is absent


def test_monthly_report_rows_of_a_campaign_keep_only_the_kpis_kept_per_campaign() -> None:
    campaign = Scope(campaign="spring")
    totals = {(campaign, "2024-03"): {"leads": 4, "mqls": 1, "campaigns_launched": 1, "calls": 3}}
    [row] = monthly_report(load_catalog(), totals)
    assert (row["scope"], row["team"], row["rep"], row["channel"], row["campaign"]) == (
        "campaign",
        "",
        "",
        "",
        "spring",
    )
    kpis = row["kpis"]
    assert isinstance(kpis, dict)
    assert kpis["leads"] == 4 and kpis["lead_to_mql"] == 0.25 and kpis["campaigns_launched"] == 1
    assert "calls" not in kpis and "content_published" not in kpis  # not kept per campaign
