"""The periods a KPI is compared with: the previous period and the same hour last week. Pure.

A baseline is a run of stored buckets, like a window (``window_bucket_range``),
taken at the finest resolution that still retains it:

=========  ======================================  ==========================================
window     ``previous_period``                     ``same_hour_last_week``
=========  ======================================  ==========================================
``1h``     the hour before it (1m buckets)         the clock hour nearest to it, 7 days back (1h)
``24h``    the 24 hours before it (15m buckets)    the 24 clock hours nearest to it, 7 days back (1h)
``7d``     the 7 local days before today's 7 (1d)  none
``30d``    the 30 local days before it (1d)        none
``today``  yesterday, whole (1d)                   the same weekday last week, whole (1d)
``week``   last week, Monday to Sunday (1d)        none
``month``  last month, whole (1mo)                 none
``quarter`` last quarter, whole (1mo)              none
=========  ======================================  ==========================================

Calendar windows are periods to date, their baselines whole periods: a drop
against them is meaningful for rates (conversion, win rate), not for counts that
grow through the period (use a pace condition for those).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal, overload
from zoneinfo import ZoneInfo

from alerts.rule_checks import SAME_HOUR_LAST_WEEK_WINDOWS
from schemas.catalog import WindowName
from streams.core.windows import (
    DAY,
    DAY_SECONDS,
    HOUR,
    MONTH,
    ROLLING_WINDOWS,
    day_start,
    local_date,
    window_bucket_range,
)
from streams.readout.kpis import Span

Baseline = Literal["previous_period", "same_hour_last_week"]
WEEK_SECONDS = 7 * DAY_SECONDS
HALF_HOUR = 1800
DAYS_OF: dict[WindowName, int] = {"7d": 7, "30d": 30}


def _months_back(first_day: date, months: int) -> date:
    index = first_day.year * 12 + first_day.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


def previous_period(window: WindowName, now: int, tz: ZoneInfo) -> Span:
    """The period just before the window at ``now`` (see the table above)."""
    if window in ("1h", "24h"):
        return window_bucket_range(window, now - ROLLING_WINDOWS[window][1], tz)
    today = local_date(DAY.bucket_start(now, tz), tz)
    if window in DAYS_OF:
        days = DAYS_OF[window]
        return DAY, day_start(today - timedelta(days=2 * days - 1), tz), day_start(today - timedelta(days=days), tz)
    if window == "today":
        yesterday = day_start(today - timedelta(days=1), tz)
        return DAY, yesterday, yesterday
    if window == "week":
        monday = today - timedelta(days=today.weekday())
        return DAY, day_start(monday - timedelta(days=7), tz), day_start(monday - timedelta(days=1), tz)
    this_month = today.replace(day=1)
    if window == "month":
        last_month = day_start(_months_back(this_month, 1), tz)
        return MONTH, last_month, last_month
    quarter_start = this_month.replace(month=this_month.month - (this_month.month - 1) % 3)
    return MONTH, day_start(_months_back(quarter_start, 3), tz), day_start(_months_back(quarter_start, 1), tz)


def same_hour_last_week(window: WindowName, now: int, tz: ZoneInfo) -> Span | None:
    """The same stretch of time 7 days earlier, in whole clock hours or days; None where not kept."""
    if window not in SAME_HOUR_LAST_WEEK_WINDOWS:
        return None
    if window in ("1h", "24h"):
        hours = ROLLING_WINDOWS[window][1] // 3600
        last = HOUR.bucket_start(now - WEEK_SECONDS + HALF_HOUR, tz) - 3600
        return HOUR, last - (hours - 1) * 3600, last
    same_day = day_start(local_date(DAY.bucket_start(now, tz), tz) - timedelta(days=7), tz)
    return DAY, same_day, same_day


@overload
def baseline_range(window: WindowName, baseline: Literal["previous_period"], now: int, tz: ZoneInfo) -> Span: ...
@overload
def baseline_range(window: WindowName, baseline: Baseline, now: int, tz: ZoneInfo) -> Span | None: ...
def baseline_range(window: WindowName, baseline: Baseline, now: int, tz: ZoneInfo) -> Span | None:
    """The buckets of ``window``'s baseline at ``now`` in ``tz``; None when that baseline is not kept."""
    if baseline == "previous_period":
        return previous_period(window, now, tz)
    return same_hour_last_week(window, now, tz)
