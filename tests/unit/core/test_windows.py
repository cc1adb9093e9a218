"""streams.core.windows: bucket arithmetic, rolling and calendar windows across time zones and DST, lateness."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import pytest

from schemas.catalog import WINDOW_NAMES, WindowName
from streams.core.windows import (
    DAY,
    HOUR,
    LONGEST_RETENTION,
    MINUTE,
    MONTH,
    QUARTER,
    RESOLUTION_BY_NAME,
    RESOLUTIONS,
    Resolution,
    day_start,
    is_late,
    local_midnight,
    month_label,
    window_bucket_range,
)

# 1_700_000_000 is 2023-11-14T22:13:20Z, a Tuesday: 20 s into a minute, 13 min 20 s into an hour and a quarter.
NOW = 1_700_000_000
UTC = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
KATHMANDU = ZoneInfo("Asia/Kathmandu")  # +05:45
KOLKATA = ZoneInfo("Asia/Kolkata")  # +05:30

# Europe/Berlin 2024 by hand (CET +01, CEST +02 from 2024-03-31 01:00Z to 2024-10-27 01:00Z)
BERLIN_2024_01_01 = 1_704_063_600  # 2023-12-31T23:00Z
BERLIN_2024_03_01 = 1_709_247_600  # 2024-02-29T23:00Z
BERLIN_2024_03_25 = 1_711_321_200  # Monday, 2024-03-24T23:00Z
BERLIN_2024_03_31 = 1_711_839_600  # 2024-03-30T23:00Z: 02:00 CET jumps to 03:00 CEST, a 23-hour day
BERLIN_2024_04_01 = 1_711_922_400  # 2024-03-31T22:00Z, a Monday
BERLIN_2024_10_01 = 1_727_733_600  # 2024-09-30T22:00Z
BERLIN_2024_10_27 = 1_729_980_000  # 2024-10-26T22:00Z: 03:00 CEST falls back to 02:00 CET, a 25-hour day
BERLIN_2024_10_28 = 1_730_070_000  # 2024-10-27T23:00Z
BERLIN_2024_11_01 = 1_730_415_600  # 2024-10-31T23:00Z
BERLIN_2024_12_01 = 1_733_007_600  # 2024-11-30T23:00Z
BERLIN_2025_01_01 = 1_735_686_000  # 2024-12-31T23:00Z


def test_resolution_table() -> None:
    assert [(r.name, r.retention_seconds) for r in RESOLUTIONS] == [
        ("1m", 7_200),
        ("15m", 172_800),
        ("1h", 691_200),
        ("1d", 8_640_000),  # 100 days
        ("1mo", 69_120_000),  # 800 days
    ]
    assert [(r.seconds, r.group_seconds) for r in (MINUTE, QUARTER, HOUR)] == [
        (60, 3_600),
        (900, 86_400),
        (3_600, 86_400),
    ]
    assert [(r.unit, r.group_unit) for r in (DAY, MONTH)] == [("day", "month"), ("month", "year")]
    assert RESOLUTION_BY_NAME == {"1m": MINUTE, "15m": QUARTER, "1h": HOUR, "1d": DAY, "1mo": MONTH}
    assert LONGEST_RETENTION == MONTH
    served = {window: window_bucket_range(window, 1_700_000_000, ZoneInfo("UTC"))[0].name for window in WINDOW_NAMES}
    assert served == {
        "1h": "1m",
        "24h": "15m",
        "7d": "1h",
        "30d": "1d",
        "today": "1d",
        "week": "1d",
        "month": "1mo",
        "quarter": "1mo",
    }


@pytest.mark.parametrize(
    ("resolution", "timestamp", "expected"),
    [
        (MINUTE, 0, 0),
        (MINUTE, 59, 0),
        (MINUTE, 60, 60),
        (MINUTE, 1_700_000_000, 1_699_999_980),
        (MINUTE, 1_699_999_980, 1_699_999_980),
        (MINUTE, 1_699_999_979, 1_699_999_920),
        (QUARTER, 899, 0),
        (QUARTER, 900, 900),
        (QUARTER, 1_700_000_000, 1_699_999_200),
        (QUARTER, 1_699_999_199, 1_699_998_300),
        (QUARTER, 1_700_000_099, 1_699_999_200),
        (QUARTER, 1_700_000_100, 1_700_000_100),
        (HOUR, 3_599, 0),
        (HOUR, 3_600, 3_600),
        (HOUR, 1_700_000_000, 1_699_999_200),
        (HOUR, 1_700_002_799, 1_699_999_200),
        (HOUR, 1_700_002_800, 1_700_002_800),
    ],
)
@pytest.mark.parametrize("tz", [UTC, KATHMANDU], ids=["UTC", "Kathmandu"])
def test_fixed_bucket_start_ignores_the_zone(
    resolution: Resolution, timestamp: int, expected: int, tz: ZoneInfo
) -> None:
    assert resolution.bucket_start(timestamp, tz) == expected


@pytest.mark.parametrize(
    ("resolution", "timestamp", "expected"),
    [
        (MINUTE, 1_700_000_000, 1_699_999_200),  # the hour 22:00Z
        (MINUTE, 1_699_999_200, 1_699_999_200),
        (MINUTE, 1_699_999_199, 1_699_995_600),
        (QUARTER, 1_700_000_000, 1_699_920_000),  # the UTC day 2023-11-14
        (QUARTER, 1_699_919_999, 1_699_833_600),
        (HOUR, 1_700_000_000, 1_699_920_000),
        (HOUR, 1_699_920_000, 1_699_920_000),
        (HOUR, 0, 0),
    ],
)
def test_fixed_group_start(resolution: Resolution, timestamp: int, expected: int) -> None:
    assert resolution.group_start(timestamp, BERLIN) == expected


# (zone, timestamp, day bucket start, its end)
@pytest.mark.parametrize(
    ("tz", "timestamp", "start", "end"),
    [
        (UTC, NOW, 1_699_920_000, 1_700_006_400),
        (BERLIN, NOW, 1_699_916_400, 1_700_002_800),  # 23:13 CET
        (NEW_YORK, NOW, 1_699_938_000, 1_700_024_400),  # 17:13 EST
        (KOLKATA, NOW, 1_699_986_600, 1_700_073_000),  # 03:43 on the 15th; midnight 18:30Z
        (KATHMANDU, NOW, 1_699_985_700, 1_700_072_100),  # 03:58 on the 15th; midnight 18:15Z
        (KATHMANDU, 1_699_985_700, 1_699_985_700, 1_700_072_100),  # exactly at midnight
        (KATHMANDU, 1_699_985_699, 1_699_899_300, 1_699_985_700),  # one second earlier: the day before
        # Berlin 2024-03-31, 23 hours
        (BERLIN, BERLIN_2024_03_31, BERLIN_2024_03_31, BERLIN_2024_04_01),
        (BERLIN, 1_711_846_799, BERLIN_2024_03_31, BERLIN_2024_04_01),  # 00:59:59Z = 01:59:59 CET
        (BERLIN, 1_711_846_800, BERLIN_2024_03_31, BERLIN_2024_04_01),  # 01:00Z = 03:00 CEST
        (BERLIN, 1_711_922_399, BERLIN_2024_03_31, BERLIN_2024_04_01),  # 21:59:59Z = 23:59:59 CEST
        (BERLIN, BERLIN_2024_04_01, BERLIN_2024_04_01, 1_712_008_800),
        # Berlin 2024-10-27, 25 hours
        (BERLIN, 1_729_979_999, 1_729_893_600, BERLIN_2024_10_27),
        (BERLIN, 1_729_989_000, BERLIN_2024_10_27, BERLIN_2024_10_28),  # 00:30Z = 02:30 CEST (first pass)
        (BERLIN, 1_729_992_600, BERLIN_2024_10_27, BERLIN_2024_10_28),  # 01:30Z = 02:30 CET (second pass)
        (BERLIN, 1_730_069_999, BERLIN_2024_10_27, BERLIN_2024_10_28),  # 22:59:59Z = 23:59:59 CET
        (BERLIN, BERLIN_2024_10_28, BERLIN_2024_10_28, 1_730_156_400),
    ],
)
def test_day_bucket(tz: ZoneInfo, timestamp: int, start: int, end: int) -> None:
    assert DAY.bucket_start(timestamp, tz) == start
    assert DAY.bucket_end(start, tz) == end


def test_dst_days_last_23_and_25_hours() -> None:
    assert BERLIN_2024_04_01 - BERLIN_2024_03_31 == 23 * 3_600
    assert BERLIN_2024_10_28 - BERLIN_2024_10_27 == 25 * 3_600


@pytest.mark.parametrize(
    ("tz", "timestamp", "start", "end"),
    [
        (UTC, NOW, 1_698_796_800, 1_701_388_800),  # 2023-11
        (BERLIN, NOW, 1_698_793_200, 1_701_385_200),  # from 2023-10-31T23:00Z
        (NEW_YORK, NOW, 1_698_811_200, 1_701_406_800),  # from 04:00Z (EDT) to 05:00Z (EST)
        (KOLKATA, NOW, 1_698_777_000, 1_701_369_000),
        (KATHMANDU, NOW, 1_698_776_100, 1_701_368_100),  # from 2023-10-31T18:15Z
        (KATHMANDU, 1_698_776_099, 1_696_097_700, 1_698_776_100),  # one second earlier: October
        # Berlin March 2024 has 30 days 23 hours, October 31 days 1 hour
        (BERLIN, BERLIN_2024_03_31, BERLIN_2024_03_01, BERLIN_2024_04_01),
        (BERLIN, BERLIN_2024_04_01 - 1, BERLIN_2024_03_01, BERLIN_2024_04_01),
        (BERLIN, BERLIN_2024_04_01, BERLIN_2024_04_01, 1_714_514_400),
        (BERLIN, 1_729_992_600, BERLIN_2024_10_01, BERLIN_2024_11_01),
        (BERLIN, BERLIN_2024_11_01 - 1, BERLIN_2024_10_01, BERLIN_2024_11_01),
    ],
)
def test_month_bucket(tz: ZoneInfo, timestamp: int, start: int, end: int) -> None:
    assert MONTH.bucket_start(timestamp, tz) == start
    assert MONTH.bucket_end(start, tz) == end


def test_month_lengths_across_dst() -> None:
    assert BERLIN_2024_04_01 - BERLIN_2024_03_01 == 31 * 86_400 - 3_600
    assert BERLIN_2024_11_01 - BERLIN_2024_10_01 == 31 * 86_400 + 3_600


# Day buckets are stored by the local month, month buckets by the local year.
@pytest.mark.parametrize(
    ("resolution", "tz", "timestamp", "group_start", "group_end", "last_bucket"),
    [
        (DAY, BERLIN, 1_711_846_800, BERLIN_2024_03_01, BERLIN_2024_04_01, BERLIN_2024_03_31),
        (DAY, BERLIN, BERLIN_2024_10_27, BERLIN_2024_10_01, BERLIN_2024_11_01, 1_730_329_200),  # Oct 31 00:00 CET
        (DAY, UTC, NOW, 1_698_796_800, 1_701_388_800, 1_701_302_400),
        (DAY, KATHMANDU, NOW, 1_698_776_100, 1_701_368_100, 1_701_281_700),
        (MONTH, BERLIN, BERLIN_2024_10_27, BERLIN_2024_01_01, BERLIN_2025_01_01, BERLIN_2024_12_01),
        (MONTH, BERLIN, BERLIN_2024_01_01 - 1, 1_672_527_600, BERLIN_2024_01_01, 1_701_385_200),
        (MONTH, UTC, NOW, 1_672_531_200, 1_704_067_200, 1_701_388_800),
        (MONTH, KATHMANDU, NOW, 1_672_510_500, 1_704_046_500, 1_701_368_100),
    ],
)
def test_calendar_groups(
    resolution: Resolution, tz: ZoneInfo, timestamp: int, group_start: int, group_end: int, last_bucket: int
) -> None:
    assert resolution.group_start(timestamp, tz) == group_start
    assert resolution.group_end(group_start, tz) == group_end
    assert resolution.last_bucket_start(group_start, tz) == last_bucket
    assert group_end <= resolution.latest_group_end(group_start) <= group_end + 4 * 86_400


def test_calendar_group_end_of_a_group_stored_under_another_zone() -> None:
    # A team moved from Asia/Kathmandu to America/New_York: its 2023 month group started at
    # 2022-12-31T18:15Z, which is still 2022 in New York. It ends with New York's 2023, not 2022.
    assert MONTH.group_end(1_672_510_500, NEW_YORK) == 1_704_085_200  # 2024-01-01T05:00Z
    assert DAY.group_end(1_698_776_100, NEW_YORK) == 1_701_406_800  # 2023-12-01T05:00Z


# A bucket is live while its end is after watermark - retention.
# At watermark NOW: 1m cut 1_699_992_800, 15m cut 1_699_827_200, 1h cut 1_699_308_800,
# 1d cut 1_691_360_000 (2023-08-06T22:13:20Z), 1mo cut 1_630_880_000 (2021-09-05T22:13:20Z).
@pytest.mark.parametrize(
    ("resolution", "tz", "start", "watermark", "live"),
    [
        (MINUTE, UTC, 1_699_999_980, NOW, True),  # the current minute
        (MINUTE, UTC, 1_699_992_780, NOW, True),  # ends at 1_699_992_840 > cut
        (MINUTE, UTC, 1_699_992_740, NOW, False),  # unaligned start, ends exactly at the cut
        (MINUTE, UTC, 1_699_992_720, NOW, False),  # ends at 1_699_992_780 <= cut
        (MINUTE, UTC, 1_699_992_741, NOW, True),  # unaligned start one second past the edge
        (QUARTER, UTC, 1_699_826_400, NOW, True),  # ends 1_699_827_300 > 1_699_827_200
        (QUARTER, UTC, 1_699_826_300, NOW, False),  # ends exactly at the cut
        (QUARTER, UTC, 1_699_825_500, NOW, False),
        (HOUR, UTC, 1_699_308_000, NOW, True),  # ends 1_699_311_600
        (HOUR, UTC, 1_699_305_200, NOW, False),  # ends exactly at the cut
        (HOUR, UTC, 1_699_304_400, NOW, False),
        (HOUR, UTC, 1_800_000_000, NOW, True),  # a bucket ahead of the watermark is live
        (MINUTE, UTC, 0, 0, True),
        (MINUTE, UTC, 0, 7_260, False),  # ends at 60 == 7_260 - 7_200
        (MINUTE, UTC, 0, 7_259, True),
        # days: 2023-08-06 ends at 2023-08-07T00:00Z in UTC, at 2023-08-06T22:00Z in Berlin
        (DAY, UTC, 1_691_280_000, NOW, True),
        (DAY, UTC, 1_691_193_600, NOW, False),  # 2023-08-05 ends 1_691_280_000
        (DAY, BERLIN, 1_691_272_800, NOW, False),  # 2023-08-06 (Berlin) ends 1_691_359_200 <= cut
        (DAY, BERLIN, 1_691_359_200, NOW, True),  # 2023-08-07 (Berlin)
        (DAY, KATHMANDU, 1_691_345_700, NOW, True),  # 2023-08-07 (Kathmandu) ends 1_691_432_100
        (DAY, KATHMANDU, 1_691_259_300, NOW, False),  # 2023-08-06 (Kathmandu) ends 1_691_345_700
        (DAY, UTC, 1_691_280_000, 1_700_006_399, True),  # 2023-08-06 ends 1_691_366_400 = 1_700_006_400 - 100 d
        (DAY, UTC, 1_691_280_000, 1_700_006_400, False),
        # months: 2021-09 is live at NOW, 2021-08 is not
        (MONTH, UTC, 1_630_454_400, NOW, True),
        (MONTH, UTC, 1_627_776_000, NOW, False),  # 2021-08 ends 1_630_454_400 <= cut
        (MONTH, BERLIN, 1_630_447_200, NOW, True),  # 2021-09 (Berlin) ends 1_633_039_200
        (MONTH, BERLIN, 1_630_447_200, 1_702_159_199, True),  # ends 1_633_039_200 = 1_702_159_200 - 800 d
        (MONTH, BERLIN, 1_630_447_200, 1_702_159_200, False),
        (MONTH, UTC, 1_630_454_400, 1_702_166_400, False),  # UTC's September ends two hours later
        (MONTH, UTC, 1_630_454_400, 1_702_166_399, True),
    ],
)
def test_is_live(resolution: Resolution, tz: ZoneInfo, start: int, watermark: int, live: bool) -> None:
    assert resolution.is_live(start, watermark, tz) is live


@pytest.mark.parametrize(
    ("window", "now", "resolution", "first", "last"),
    [
        # mid-bucket: 22:13:20Z
        ("1h", 1_700_000_000, MINUTE, 1_699_996_440, 1_699_999_980),
        ("24h", 1_700_000_000, QUARTER, 1_699_913_700, 1_699_999_200),
        ("7d", 1_700_000_000, HOUR, 1_699_398_000, 1_699_999_200),
        # exactly on an hour (and quarter and minute) boundary: 22:00:00Z
        ("1h", 1_699_999_200, MINUTE, 1_699_995_660, 1_699_999_200),
        ("24h", 1_699_999_200, QUARTER, 1_699_913_700, 1_699_999_200),
        ("7d", 1_699_999_200, HOUR, 1_699_398_000, 1_699_999_200),
        # one second before that boundary: 21:59:59Z
        ("1h", 1_699_999_199, MINUTE, 1_699_995_600, 1_699_999_140),
        ("24h", 1_699_999_199, QUARTER, 1_699_912_800, 1_699_998_300),
        ("7d", 1_699_999_199, HOUR, 1_699_394_400, 1_699_995_600),
    ],
)
def test_rolling_window_bucket_range(
    window: WindowName, now: int, resolution: Resolution, first: int, last: int
) -> None:
    assert window_bucket_range(window, now, UTC) == (resolution, first, last)
    assert window_bucket_range(window, now, KATHMANDU) == (resolution, first, last)  # rolling: no zone


def bucket_count(resolution: Resolution, first: int, last: int, tz: ZoneInfo) -> int:
    count, start = 1, first
    while start < last:
        start = resolution.bucket_end(start, tz)
        count += 1
    assert start == last
    return count


@pytest.mark.parametrize(
    ("window", "buckets"),
    [("1h", 60), ("24h", 96), ("7d", 168)],
)
@pytest.mark.parametrize("now", [1_700_000_000, 1_699_999_200, 1_699_999_199, 1_699_999_260])
def test_rolling_window_bucket_count(window: WindowName, buckets: int, now: int) -> None:
    resolution, first, last = window_bucket_range(window, now, UTC)
    assert bucket_count(resolution, first, last, UTC) == buckets
    assert last <= now < resolution.bucket_end(last, UTC)


@pytest.mark.parametrize(
    ("tz_name", "now", "midnight"),
    [
        # 2023-11-14T22:13:20Z in several zones
        ("UTC", 1_700_000_000, 1_699_920_000),  # 2023-11-14T00:00Z
        ("Europe/Berlin", 1_700_000_000, 1_699_916_400),  # 23:13 CET; midnight 2023-11-13T23:00Z
        ("America/New_York", 1_700_000_000, 1_699_938_000),  # 17:13 EST; midnight 2023-11-14T05:00Z
        ("Asia/Kolkata", 1_700_000_000, 1_699_986_600),  # 03:43 on the 15th (+05:30); midnight 18:30Z
        ("Asia/Kathmandu", 1_700_000_000, 1_699_985_700),  # 03:58 on the 15th (+05:45); midnight 18:15Z
        # exactly at local midnight
        ("UTC", 1_699_920_000, 1_699_920_000),
        ("Asia/Kathmandu", 1_699_985_700, 1_699_985_700),
        ("Asia/Kathmandu", 1_699_985_699, 1_699_899_300),  # one second earlier: the previous day
        # Europe/Berlin 2026-03-29: 02:00 CET jumps to 03:00 CEST; the day starts 2026-03-28T23:00Z
        ("Europe/Berlin", 1_774_744_200, 1_774_738_800),  # 00:30Z = 01:30 CET
        ("Europe/Berlin", 1_774_746_000, 1_774_738_800),  # 01:00Z = 03:00 CEST
        ("Europe/Berlin", 1_774_785_600, 1_774_738_800),  # 12:00Z = 14:00 CEST
        ("Europe/Berlin", 1_774_821_599, 1_774_738_800),  # 21:59:59Z = 23:59:59 CEST (a 23-hour day)
        ("Europe/Berlin", 1_774_821_600, 1_774_821_600),  # 22:00Z = 2026-03-30 00:00 CEST
        # America/New_York 2026-11-01: 02:00 EDT falls back to 01:00 EST; the day starts 04:00Z
        ("America/New_York", 1_793_505_599, 1_793_419_200),  # 03:59:59Z = 2026-10-31 23:59:59 EDT
        ("America/New_York", 1_793_505_600, 1_793_505_600),  # 04:00Z = 00:00 EDT
        ("America/New_York", 1_793_511_000, 1_793_505_600),  # 05:30Z = 01:30 EDT (first pass)
        ("America/New_York", 1_793_514_600, 1_793_505_600),  # 06:30Z = 01:30 EST (second pass)
        ("America/New_York", 1_793_595_540, 1_793_505_600),  # 2026-11-02T04:59Z = 23:59 EST (a 25-hour day)
        ("America/New_York", 1_793_595_600, 1_793_595_600),  # 05:00Z = 2026-11-02 00:00 EST
        # America/Santiago 2026-09-06: 00:00 -04 jumps to 01:00 -03, so 00:00 does not exist;
        # the day starts at the transition, 04:00Z
        ("America/Santiago", 1_788_696_000, 1_788_667_200),
    ],
)
def test_local_midnight(tz_name: str, now: int, midnight: int) -> None:
    assert local_midnight(now, ZoneInfo(tz_name)) == midnight
    assert DAY.bucket_start(now, ZoneInfo(tz_name)) == midnight


def test_local_midnight_in_a_repeated_hour_after_midnight() -> None:
    # America/Havana 2026-11-01: 01:00 CDT (-04) falls back to 00:00 CST (-05), so 00:00-01:00 happens twice.
    # The local day 2026-11-01 starts at the first 00:00 = 04:00Z (1_793_505_600), also for a moment
    # in the second pass (05:30Z = 00:30 CST).
    havana = ZoneInfo("America/Havana")
    assert local_midnight(1_793_505_600 + 8 * 3_600, havana) == 1_793_505_600
    assert local_midnight(1_793_511_000, havana) == 1_793_505_600


def test_a_day_the_zone_skipped() -> None:
    # Pacific/Apia went from 2011-12-29 23:59:59 (-10) to 2011-12-31 00:00 (+14) at 2011-12-30T10:00Z.
    apia = ZoneInfo("Pacific/Apia")
    assert day_start(date(2011, 12, 29), apia) == 1_325_152_800  # 2011-12-29T10:00Z
    assert day_start(date(2011, 12, 30), apia) == 1_325_239_200  # no such day: the next one's start
    assert day_start(date(2011, 12, 31), apia) == 1_325_239_200
    assert DAY.bucket_start(1_325_239_199, apia) == 1_325_152_800
    assert DAY.bucket_end(1_325_152_800, apia) == 1_325_239_200  # a day of 24 hours, then the 31st


@pytest.mark.parametrize(
    ("tz", "first"),
    [
        (UTC, {"today": 1_699_920_000, "week": 1_699_833_600, "30d": 1_697_414_400}),
        # Berlin: Monday 2023-11-13 00:00 CET; 2023-10-16 00:00 CEST (22:00Z)
        (BERLIN, {"today": 1_699_916_400, "week": 1_699_830_000, "30d": 1_697_407_200}),
        # New York: 05:00Z (EST); 2023-10-16 00:00 EDT (04:00Z)
        (NEW_YORK, {"today": 1_699_938_000, "week": 1_699_851_600, "30d": 1_697_428_800}),
        # Kathmandu: it is already Wednesday 2023-11-15 there; 2023-10-17 00:00 +05:45
        (KATHMANDU, {"today": 1_699_985_700, "week": 1_699_812_900, "30d": 1_697_480_100}),
    ],
    ids=["UTC", "Berlin", "New_York", "Kathmandu"],
)
def test_day_windows_at_now(tz: ZoneInfo, first: dict[WindowName, int]) -> None:
    for window, start in first.items():
        assert window_bucket_range(window, NOW, tz) == (DAY, start, first["today"]), window


@pytest.mark.parametrize(
    ("tz", "month", "quarter"),
    [
        (UTC, 1_698_796_800, 1_696_118_400),  # 2023-11-01, 2023-10-01
        (BERLIN, 1_698_793_200, 1_696_111_200),  # 2023-10-31T23:00Z (CET), 2023-09-30T22:00Z (CEST)
        (NEW_YORK, 1_698_811_200, 1_696_132_800),  # 04:00Z (EDT) both
        (KATHMANDU, 1_698_776_100, 1_696_097_700),  # 18:15Z the day before
    ],
    ids=["UTC", "Berlin", "New_York", "Kathmandu"],
)
def test_month_windows_at_now(tz: ZoneInfo, month: int, quarter: int) -> None:
    assert window_bucket_range("month", NOW, tz) == (MONTH, month, month)
    assert window_bucket_range("quarter", NOW, tz) == (MONTH, quarter, month)


@pytest.mark.parametrize(
    ("window", "now", "resolution", "first", "last"),
    [
        # the week starts on Monday: Monday 2024-04-01 00:00 CEST holds only itself
        ("week", BERLIN_2024_04_01, DAY, BERLIN_2024_04_01, BERLIN_2024_04_01),
        ("week", BERLIN_2024_04_01 + 86_399, DAY, BERLIN_2024_04_01, BERLIN_2024_04_01),
        # one second earlier it is Sunday 23:59:59 CEST: Monday 2024-03-25 to Sunday 2024-03-31, 7 days
        ("week", BERLIN_2024_04_01 - 1, DAY, BERLIN_2024_03_25, BERLIN_2024_03_31),
        ("week", 1_712_527_199, DAY, BERLIN_2024_04_01, 1_712_440_800),  # Sunday 2024-04-07 23:59:59 CEST
        # quarters start on the 1st of January, April, July and October
        ("quarter", BERLIN_2024_04_01, MONTH, BERLIN_2024_04_01, BERLIN_2024_04_01),
        ("quarter", BERLIN_2024_04_01 - 1, MONTH, BERLIN_2024_01_01, BERLIN_2024_03_01),
        ("quarter", BERLIN_2024_01_01, MONTH, BERLIN_2024_01_01, BERLIN_2024_01_01),
        ("quarter", BERLIN_2024_01_01 - 1, MONTH, 1_696_111_200, 1_701_385_200),  # Q4 2023, from 00:00 CEST
        ("quarter", BERLIN_2025_01_01 - 1, MONTH, BERLIN_2024_10_01, BERLIN_2024_12_01),
        ("quarter", BERLIN_2024_10_27, MONTH, BERLIN_2024_10_01, BERLIN_2024_10_01),
        ("month", BERLIN_2024_11_01 - 1, MONTH, BERLIN_2024_10_01, BERLIN_2024_10_01),
        ("month", BERLIN_2024_11_01, MONTH, BERLIN_2024_11_01, BERLIN_2024_11_01),
        # today on the DST days
        ("today", 1_711_846_800, DAY, BERLIN_2024_03_31, BERLIN_2024_03_31),
        ("today", 1_729_992_600, DAY, BERLIN_2024_10_27, BERLIN_2024_10_27),
        # 30d on 2024-04-15 (12:00 CEST) starts on 2024-03-17 00:00 CET, before the 23-hour day
        ("30d", 1_713_175_200, DAY, 1_710_630_000, 1_713_132_000),
    ],
)
def test_calendar_window_boundaries_in_berlin(
    window: WindowName, now: int, resolution: Resolution, first: int, last: int
) -> None:
    assert window_bucket_range(window, now, BERLIN) == (resolution, first, last)


@pytest.mark.parametrize(
    "now",
    [
        NOW,
        BERLIN_2024_03_31 + 7_200,
        BERLIN_2024_04_01 - 1,
        BERLIN_2024_10_27 + 3 * 3_600,
        1_735_685_999,
        1_713_175_200,
    ],
)
@pytest.mark.parametrize("tz", [UTC, BERLIN, NEW_YORK, KATHMANDU], ids=["UTC", "Berlin", "New_York", "Kathmandu"])
def test_calendar_window_bucket_count(now: int, tz: ZoneInfo) -> None:
    resolution, first, last = window_bucket_range("30d", now, tz)
    assert bucket_count(resolution, first, last, tz) == 30
    _, _, today = window_bucket_range("today", now, tz)
    assert today <= now < DAY.bucket_end(today, tz)
    resolution, first, last = window_bucket_range("week", now, tz)
    weekday = bucket_count(resolution, first, last, tz) - 1  # Monday = 0
    assert 0 <= weekday <= 6
    resolution, first, last = window_bucket_range("quarter", now, tz)
    month = int(month_label(last, tz)[5:])
    assert bucket_count(resolution, first, last, tz) == (month - 1) % 3 + 1
    assert int(month_label(first, tz)[5:]) in (1, 4, 7, 10)


@pytest.mark.parametrize(
    ("start", "tz", "label"),
    [
        (1_698_793_200, BERLIN, "2023-11"),
        (1_698_793_200, UTC, "2023-10"),  # the same moment is still October in UTC
        (1_698_776_100, KATHMANDU, "2023-11"),
        (BERLIN_2024_01_01, BERLIN, "2024-01"),
        (1_325_239_200, ZoneInfo("Pacific/Apia"), "2011-12"),
    ],
)
def test_month_label(start: int, tz: ZoneInfo, label: str) -> None:
    assert month_label(start, tz) == label


# Late means older than 800 days (the 1mo retention), to the second: at watermark NOW before 1_630_880_000.
@pytest.mark.parametrize(
    ("timestamp", "watermark", "late"),
    [
        (1_700_000_000, 1_700_000_000, False),
        (1_699_308_000, 1_700_000_000, False),  # 8 days old: no longer late
        (1_698_272_000, 1_700_000_000, False),  # 20 days old
        (1_691_360_000, 1_700_000_000, False),  # 100 days old
        (1_630_880_000, 1_700_000_000, False),  # exactly 800 days old
        (1_630_879_999, 1_700_000_000, True),  # one second more
        (1_622_240_000, 1_700_000_000, True),  # 900 days old
        (1_800_000_000, 1_700_000_000, False),  # ahead of the watermark
        (1_630_880_000, 1_700_000_001, True),
    ],
)
def test_is_late(timestamp: int, watermark: int, late: bool) -> None:
    assert is_late(timestamp, watermark) is late


@pytest.mark.parametrize("age", [0, 20 * 86_400, 100 * 86_400, 799 * 86_400, 800 * 86_400, 800 * 86_400 + 1])
@pytest.mark.parametrize(
    "tz_name", ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kathmandu", "Pacific/Kiritimati", "Etc/GMT+12"]
)
def test_an_event_that_is_not_late_has_a_live_month_bucket_in_every_zone(age: int, tz_name: str) -> None:
    tz = ZoneInfo(tz_name)
    timestamp = NOW - age
    if not is_late(timestamp, NOW):
        assert MONTH.is_live(MONTH.bucket_start(timestamp, tz), NOW, tz)
    assert is_late(timestamp, NOW) is (age > 800 * 86_400)
