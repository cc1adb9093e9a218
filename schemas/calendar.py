"""Local calendar questions of alerts and goals: is it quiet now, how much of this period is gone.

Every answer comes from the local wall clock of ``tz`` (``zoneinfo``), so DST
changes need no special case: a quiet hour from 20:00 to 08:00 is 20:00 to
08:00 on the clock on the wall, on a 23-hour day as on a 25-hour one.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from schemas.hours import WEEKDAYS, QuietHours, Weekday, WorkingHours

CalendarWindow = Literal["today", "week", "month", "quarter"]
CALENDAR_WINDOWS: tuple[CalendarWindow, ...] = ("today", "week", "month", "quarter")


def in_quiet_hours(
    quiet: QuietHours | None, business_days: Collection[Weekday] | None, now: float, tz: ZoneInfo
) -> bool:
    """Whether ``now`` falls in the quiet hours or on a day that is not a business day (both local to ``tz``)."""
    local = datetime.fromtimestamp(now, tz)
    if business_days is not None and WEEKDAYS[local.weekday()] not in business_days:
        return True
    return quiet is not None and quiet.contains(local.time())


def period_days(window: str, now: float, tz: ZoneInfo) -> tuple[date, date]:
    """The local calendar period of ``window`` holding ``now``: its first day and the day after its last."""
    today = datetime.fromtimestamp(now, tz).date()
    if window == "today":
        return today, today + timedelta(days=1)
    if window == "week":
        monday = today - timedelta(days=today.weekday())
        return monday, monday + timedelta(days=7)
    if window == "month":
        first = today.replace(day=1)
        return first, _months_later(first, 1)
    if window == "quarter":
        first = date(today.year, (today.month - 1) // 3 * 3 + 1, 1)
        return first, _months_later(first, 3)
    raise ValueError(f"{window!r} is not a calendar window ({', '.join(CALENDAR_WINDOWS)})")


def _months_later(first: date, months: int) -> date:
    index = first.year * 12 + first.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _moment(day: date, at: time, tz: ZoneInfo) -> float:
    """Epoch seconds of a local wall-clock time (fold=0: the first of a repeated hour)."""
    return datetime.combine(day, at, tzinfo=tz).timestamp()


def _counted_span(day: date, tz: ZoneInfo, working_hours: WorkingHours | None) -> tuple[float, float]:
    if working_hours is None:
        return _moment(day, time(0), tz), _moment(day + timedelta(days=1), time(0), tz)
    return _moment(day, working_hours.start, tz), _moment(day, working_hours.end, tz)


def period_elapsed(
    window: str,
    now: float,
    tz: ZoneInfo,
    working_hours: WorkingHours | None = None,
    business_days: Collection[Weekday] | None = None,
) -> float:
    """The share in [0, 1] of the calendar period (today, week from Monday, month, quarter) gone by at ``now``.

    Only counted time counts: the working hours of each day when given (else the
    whole day, in real seconds: 23 or 25 hours on DST days), on business days
    when given (else every day). A period with no counted time at all (today,
    on a day that is not a business day) returns 0: nothing is expected yet.
    """
    day, end = period_days(window, now, tz)
    counted = elapsed = 0.0
    while day < end:
        if business_days is None or WEEKDAYS[day.weekday()] in business_days:
            start, stop = _counted_span(day, tz, working_hours)
            counted += stop - start
            elapsed += min(max(now - start, 0.0), stop - start)
        day += timedelta(days=1)
    return elapsed / counted if counted > 0 else 0.0
