"""streams.windows: bucket arithmetic, rolling windows, `today` across time zones and DST, lateness."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from schemas.catalog import WindowName
from streams.windows import (
    HOUR,
    MINUTE,
    QUARTER,
    RESOLUTION_BY_NAME,
    RESOLUTIONS,
    WINDOWS_BY_RESOLUTION,
    Resolution,
    is_late,
    local_midnight,
    window_bucket_range,
)

# 1_700_000_000 is 2023-11-14T22:13:20Z: 20 s into a minute, 13 min 20 s into an hour and a quarter.
NOW = 1_700_000_000
UTC = ZoneInfo("UTC")


def test_resolution_table() -> None:
    assert [(r.name, r.seconds, r.retention_seconds, r.group_seconds) for r in RESOLUTIONS] == [
        ("1m", 60, 7_200, 3_600),
        ("15m", 900, 172_800, 86_400),
        ("1h", 3_600, 691_200, 86_400),
    ]
    assert RESOLUTION_BY_NAME == {"1m": MINUTE, "15m": QUARTER, "1h": HOUR}
    assert WINDOWS_BY_RESOLUTION == {"1m": ("1h",), "15m": ("24h", "today"), "1h": ("7d",)}


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
def test_bucket_start(resolution: Resolution, timestamp: int, expected: int) -> None:
    assert resolution.bucket_start(timestamp) == expected


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
def test_group_start(resolution: Resolution, timestamp: int, expected: int) -> None:
    assert resolution.group_start(timestamp) == expected


# A bucket is live while its end is after watermark - retention.
# At watermark 1_700_000_000: 1m cut 1_699_992_800, 15m cut 1_699_827_200, 1h cut 1_699_308_800.
@pytest.mark.parametrize(
    ("resolution", "start", "watermark", "live"),
    [
        (MINUTE, 1_699_999_980, NOW, True),  # the current minute
        (MINUTE, 1_699_992_780, NOW, True),  # ends at 1_699_992_840 > cut
        (MINUTE, 1_699_992_740, NOW, False),  # unaligned start, ends exactly at the cut
        (MINUTE, 1_699_992_720, NOW, False),  # ends at 1_699_992_780 <= cut
        (MINUTE, 1_699_992_741, NOW, True),  # unaligned start one second past the edge
        (QUARTER, 1_699_826_400, NOW, True),  # ends 1_699_827_300 > 1_699_827_200
        (QUARTER, 1_699_826_300, NOW, False),  # ends exactly at the cut
        (QUARTER, 1_699_825_500, NOW, False),
        (HOUR, 1_699_308_000, NOW, True),  # ends 1_699_311_600
        (HOUR, 1_699_305_200, NOW, False),  # ends exactly at the cut
        (HOUR, 1_699_304_400, NOW, False),
        (HOUR, 1_800_000_000, NOW, True),  # a bucket ahead of the watermark is live
        (MINUTE, 0, 0, True),
        (MINUTE, 0, 7_260, False),  # ends at 60 == 7_260 - 7_200
        (MINUTE, 0, 7_259, True),
    ],
)
def test_is_live(resolution: Resolution, start: int, watermark: int, live: bool) -> None:
    assert resolution.is_live(start, watermark) is live


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


@pytest.mark.parametrize(
    ("window", "buckets"),
    [("1h", 60), ("24h", 96), ("7d", 168)],
)
@pytest.mark.parametrize("now", [1_700_000_000, 1_699_999_200, 1_699_999_199, 1_699_999_260])
def test_rolling_window_bucket_count(window: WindowName, buckets: int, now: int) -> None:
    resolution, first, last = window_bucket_range(window, now, UTC)
    assert (last - first) // resolution.seconds + 1 == buckets
    assert last <= now < last + resolution.seconds


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


def test_local_midnight_in_a_repeated_hour_after_midnight() -> None:
    # America/Havana 2026-11-01: 01:00 CDT (-04) falls back to 00:00 CST (-05), so 00:00-01:00 happens twice.
    # The local day 2026-11-01 starts at the first 00:00 = 04:00Z (1_793_505_600); later that day
    # (12:00Z) local_midnight says so too. At 05:30Z (00:30 CST, second pass) it returns 05:00Z instead.
    havana = ZoneInfo("America/Havana")
    assert local_midnight(1_793_505_600 + 8 * 3_600, havana) == 1_793_505_600
    assert local_midnight(1_793_511_000, havana) == 1_793_505_600


@pytest.mark.parametrize(
    ("tz_name", "now", "first", "last"),
    [
        ("UTC", 1_700_000_000, 1_699_920_000, 1_699_999_200),
        ("Europe/Berlin", 1_700_000_000, 1_699_916_400, 1_699_999_200),
        ("America/New_York", 1_700_000_000, 1_699_938_000, 1_699_999_200),
        ("Asia/Kolkata", 1_700_000_000, 1_699_986_600, 1_699_999_200),
        ("Asia/Kathmandu", 1_700_000_000, 1_699_985_700, 1_699_999_200),
        ("Europe/Berlin", 1_774_821_599, 1_774_738_800, 1_774_820_700),  # 92 quarters on a 23-hour day
        ("America/New_York", 1_793_595_540, 1_793_505_600, 1_793_594_700),  # 100 quarters on a 25-hour day
        ("America/New_York", 1_793_595_600, 1_793_595_600, 1_793_595_600),  # first quarter of the next day
    ],
)
def test_today_bucket_range(tz_name: str, now: int, first: int, last: int) -> None:
    assert window_bucket_range("today", now, ZoneInfo(tz_name)) == (QUARTER, first, last)


# The 1h bucket of an event must still be live: at watermark 1_700_000_000 the oldest live hour
# starts at 1_699_308_000 (8 days + 800 s before the watermark, the hour is aligned).
@pytest.mark.parametrize(
    ("timestamp", "watermark", "late"),
    [
        (1_700_000_000, 1_700_000_000, False),
        (1_699_308_800, 1_700_000_000, False),  # exactly 8 days old
        (1_699_308_000, 1_700_000_000, False),  # first second of the oldest live hour
        (1_699_307_999, 1_700_000_000, True),  # last second of the hour before it
        (1_699_304_400, 1_700_000_000, True),
        (1_800_000_000, 1_700_000_000, False),  # ahead of the watermark
        (1_699_308_000, 1_700_002_799, False),  # the same hour stays live until the watermark's hour ends
        (1_699_308_000, 1_700_002_800, True),
    ],
)
def test_is_late(timestamp: int, watermark: int, late: bool) -> None:
    assert is_late(timestamp, watermark) is late
