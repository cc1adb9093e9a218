"""Baseline periods, checked against dates written out by hand."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from alerts.rule_checks import SAME_HOUR_LAST_WEEK_WINDOWS
from schemas.catalog import WINDOW_NAMES, WindowName
from streams.core.windows import DAY, HOUR, MINUTE, MONTH, QUARTER
from streams.readout.baselines import Baseline, baseline_range

UTC = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")


def at(text: str, tz: ZoneInfo = UTC) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=tz).timestamp())


NOW = at("2026-11-25 14:20")  # a Wednesday


@pytest.mark.parametrize(
    ("window", "baseline", "resolution", "first", "last"),
    [
        ("1h", "previous_period", MINUTE, "2026-11-25 12:21", "2026-11-25 13:20"),
        ("24h", "previous_period", QUARTER, "2026-11-23 14:30", "2026-11-24 14:15"),
        ("7d", "previous_period", DAY, "2026-11-12", "2026-11-18"),
        ("30d", "previous_period", DAY, "2026-09-27", "2026-10-26"),
        ("today", "previous_period", DAY, "2026-11-24", "2026-11-24"),
        ("week", "previous_period", DAY, "2026-11-16", "2026-11-22"),
        ("month", "previous_period", MONTH, "2026-10-01", "2026-10-01"),
        ("quarter", "previous_period", MONTH, "2026-07-01", "2026-09-01"),
        ("1h", "same_hour_last_week", HOUR, "2026-11-18 13:00", "2026-11-18 13:00"),
        ("24h", "same_hour_last_week", HOUR, "2026-11-17 14:00", "2026-11-18 13:00"),
        ("today", "same_hour_last_week", DAY, "2026-11-18", "2026-11-18"),
    ],
)
def test_baseline_ranges(window: WindowName, baseline: Baseline, resolution: object, first: str, last: str) -> None:
    assert baseline_range(window, baseline, NOW, UTC) == (resolution, at(first), at(last))


def test_same_hour_last_week_takes_the_nearest_clock_hour() -> None:
    # the clock hour whose middle is nearest to the middle of the last 60 minutes, 7 days back
    early = at("2026-11-25 14:10")  # window 13:11-14:10, middle 13:40 -> hour 13:00-14:00
    late = at("2026-11-25 14:40")  # window 13:41-14:40, middle 14:10 -> hour 14:00-15:00
    assert baseline_range("1h", "same_hour_last_week", early, UTC) == (
        HOUR,
        at("2026-11-18 13:00"),
        at("2026-11-18 13:00"),
    )
    assert baseline_range("1h", "same_hour_last_week", late, UTC) == (
        HOUR,
        at("2026-11-18 14:00"),
        at("2026-11-18 14:00"),
    )


def test_calendar_baselines_follow_the_local_zone_across_dst() -> None:
    # Monday 2026-03-30 in Berlin, the day after the change to summer time: last week starts
    # on Monday 2026-03-23 at local midnight (UTC+1) and ends on Sunday 2026-03-29 (UTC+2 from 03:00).
    now = at("2026-03-30 09:00", BERLIN)
    assert baseline_range("week", "previous_period", now, BERLIN) == (
        DAY,
        at("2026-03-23 00:00", BERLIN),
        at("2026-03-29 00:00", BERLIN),
    )
    sunday = at("2026-03-29 00:00", BERLIN)
    assert baseline_range("today", "previous_period", now, BERLIN) == (DAY, sunday, sunday)


@pytest.mark.parametrize("window", WINDOW_NAMES)
def test_only_kept_baselines_are_offered(window: WindowName) -> None:
    kept = baseline_range(window, "same_hour_last_week", NOW, UTC) is not None
    assert kept == (window in SAME_HOUR_LAST_WEEK_WINDOWS)
    assert baseline_range(window, "previous_period", NOW, UTC) is not None


@pytest.mark.parametrize("window", WINDOW_NAMES)
def test_a_baseline_is_still_retained(window: WindowName) -> None:
    for baseline in ("previous_period", "same_hour_last_week"):
        span = baseline_range(window, baseline, NOW, UTC)
        if span is not None:
            resolution, first, _ = span
            assert resolution.is_live(first, NOW, UTC)
