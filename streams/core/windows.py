"""Event-time buckets and the windows summed from them. Pure: times are epoch seconds.

Counters are kept per scope in buckets at five resolutions, each retained for
at least as long as the longest window it serves (plus slack for late events):

==========  =======================  ==========  ==========================  ==============================
resolution  bucket                   retention   stored in groups of         serves
==========  =======================  ==========  ==========================  ==============================
``1m``      60 s                     2 h         1 hour                      ``1h``
``15m``     900 s                    48 h        1 UTC day                   ``24h``
``1h``      3600 s                   8 days      1 UTC day                   ``7d``
``1d``      1 local day              100 days    1 local month               ``today``, ``week``, ``30d``
``1mo``     1 local month            800 days    1 local year                ``month``, ``quarter``, history
==========  =======================  ==========  ==========================  ==============================

The ``1d`` and ``1mo`` buckets are calendar units of the scope's time zone (a
team's and its reps' own, the config's default for the overall, channel and
campaign scopes): a bucket starts at local midnight (fold=0, see ``day_start``) of its
day or of its month's first day, so a DST day has 23 or 25 hours of buckets'
worth, and +05:30 or +05:45 zones are exact. Fixed resolutions ignore the zone.

A rolling window is the bucket holding ``now`` plus the buckets before it,
``window / bucket size`` in all (``1h`` = this minute and the 59 before it).
Calendar windows are periods to date in the scope's zone, in whole local days
or months: ``today`` is the day bucket of ``now``; ``week`` the day buckets from
local Monday; ``30d`` the day buckets of today and the 29 local days before it
(calendar days, so it starts at a local midnight, not at ``now - 30 days``);
``month`` the month bucket of ``now``; ``quarter`` the month buckets from the
first month of the quarter (January, April, July or October).

Buckets are stored in groups, one state key per group, so a batch writes each
scope's current group once however many of its buckets it touched. Retention
is measured from the watermark (the newest event time seen), never from the
wall clock, so replaying old data keeps its buckets: a bucket is live while its
end is after ``watermark - retention``. An event is late (counted nowhere)
when it is older than the longest retention, 800 days; an event inside it
lands in the buckets of the resolutions that still retain it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from schemas.catalog import SpanName, WindowName

DAY_SECONDS = 86_400
CalendarUnit = Literal["day", "month", "year"]
# Added to a calendar group's longest length for an end that holds in any zone: more than a
# zone's offset can change within a group (a skipped or repeated day) plus the largest
# difference between two zones' offsets (26 h), for groups stored under a team's former zone.
ZONE_SLACK_SECONDS = 3 * DAY_SECONDS
# A day group's start plus this is inside the group in its zone, even for a group whose start
# was computed in another zone (the config changed a team's zone): offsets differ by < 2 days.
GROUP_INSIDE_SECONDS = 2 * DAY_SECONDS


def local_date(timestamp: int, tz: ZoneInfo) -> date:
    return datetime.fromtimestamp(timestamp, tz).date()


def day_start(day: date, tz: ZoneInfo) -> int:
    """The first moment whose local date is ``day`` or later: local midnight, DST-aware.

    Midnight with fold=0: on a day whose first hour repeats, the first 00:00. When
    00:00 does not exist (a DST gap), the day starts at the transition, the moment
    after the gap; a day the zone skipped entirely starts with the next one.
    """
    start = int(datetime(day.year, day.month, day.day, tzinfo=tz).timestamp())
    if local_date(start - 1, tz) < day <= local_date(start, tz):
        return start
    # A gap that began before midnight: fold=0 resolved 00:00 to a moment after the
    # transition. Search the transition: local dates grow monotonically around it.
    low, high = start - DAY_SECONDS, start
    while high - low > 1:
        middle = (low + high) // 2
        if local_date(middle, tz) < day:
            low = middle
        else:
            high = middle
    return high


def _floor(day: date, unit: CalendarUnit) -> date:
    if unit == "day":
        return day
    if unit == "month":
        return day.replace(day=1)
    return day.replace(month=1, day=1)


def _following(first: date, unit: CalendarUnit) -> date:
    """The first day of the unit after the one starting on ``first``."""
    if unit == "day":
        return first + timedelta(days=1)
    if unit == "month":
        return (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return first.replace(year=first.year + 1)


def unit_start(timestamp: int, unit: CalendarUnit, tz: ZoneInfo) -> int:
    """The start of the local day, month or year holding ``timestamp``: the latest unit start at or before it."""
    first = _floor(local_date(timestamp, tz), unit)
    following = day_start(_following(first, unit), tz)
    # Only after a repeated hour that crosses midnight does the next unit start before the local date changes.
    return following if following <= timestamp else day_start(first, tz)


def unit_end(start: int, unit: CalendarUnit, tz: ZoneInfo) -> int:
    """The start of the unit after the one starting at ``start``."""
    return day_start(_following(_floor(local_date(start, tz), unit), unit), tz)


def local_midnight(now: int, tz: ZoneInfo) -> int:
    """Epoch seconds of the start of the local day of ``now`` in ``tz`` (see ``day_start``)."""
    return unit_start(now, "day", tz)


def month_label(start: int, tz: ZoneInfo) -> str:
    """``"YYYY-MM"``: the local month of a month bucket starting at ``start``."""
    day = local_date(start, tz)
    return f"{day.year:04d}-{day.month:02d}"


@dataclass(frozen=True)
class Resolution(ABC):
    """Buckets of one size, kept for ``retention_seconds`` after their end (by event time)."""

    name: str
    retention_seconds: int

    @abstractmethod
    def bucket_start(self, timestamp: int, tz: ZoneInfo) -> int:
        """The start of the bucket holding ``timestamp``."""

    @abstractmethod
    def bucket_end(self, start: int, tz: ZoneInfo) -> int:
        """The end (the next bucket's start) of the bucket starting at ``start``."""

    @abstractmethod
    def group_start(self, timestamp: int, tz: ZoneInfo) -> int:
        """The start of the group (one state key) holding ``timestamp``."""

    @abstractmethod
    def group_end(self, group_start: int, tz: ZoneInfo) -> int:
        """The end of the group starting at ``group_start``: its last bucket's end."""

    @abstractmethod
    def latest_group_end(self, group_start: int) -> int:
        """An end of the group that holds in every time zone: never before ``group_end``."""

    def last_bucket_start(self, group_start: int, tz: ZoneInfo) -> int:
        return self.bucket_start(self.group_end(group_start, tz) - 1, tz)

    def retains(self, end: int, watermark: int) -> bool:
        """Whether a bucket ending at ``end`` is still retained at ``watermark``."""
        return end > watermark - self.retention_seconds

    def is_live(self, start: int, watermark: int, tz: ZoneInfo) -> bool:
        """Whether the bucket starting at ``start`` is still retained: its end is after watermark - retention."""
        return self.retains(self.bucket_end(start, tz), watermark)


@dataclass(frozen=True)
class FixedResolution(Resolution):
    """Buckets of ``seconds`` aligned to the epoch, in groups of ``group_seconds``; no time zone."""

    seconds: int
    group_seconds: int

    def bucket_start(self, timestamp: int, tz: ZoneInfo) -> int:
        return timestamp - timestamp % self.seconds

    def bucket_end(self, start: int, tz: ZoneInfo) -> int:
        return start + self.seconds

    def group_start(self, timestamp: int, tz: ZoneInfo) -> int:
        return timestamp - timestamp % self.group_seconds

    def group_end(self, group_start: int, tz: ZoneInfo) -> int:
        return group_start + self.group_seconds

    def latest_group_end(self, group_start: int) -> int:
        return group_start + self.group_seconds


@dataclass(frozen=True)
class CalendarResolution(Resolution):
    """Buckets of one local calendar ``unit`` in groups of one ``group_unit``, in the scope's zone."""

    unit: CalendarUnit
    group_unit: CalendarUnit
    longest_group_seconds: int  # the group unit's longest length in days, in seconds

    def bucket_start(self, timestamp: int, tz: ZoneInfo) -> int:
        return unit_start(timestamp, self.unit, tz)

    def bucket_end(self, start: int, tz: ZoneInfo) -> int:
        return unit_end(start, self.unit, tz)

    def group_start(self, timestamp: int, tz: ZoneInfo) -> int:
        return unit_start(timestamp, self.group_unit, tz)

    def group_end(self, group_start: int, tz: ZoneInfo) -> int:
        return unit_end(group_start + GROUP_INSIDE_SECONDS, self.group_unit, tz)

    def latest_group_end(self, group_start: int) -> int:
        return group_start + self.longest_group_seconds + ZONE_SLACK_SECONDS


MINUTE = FixedResolution("1m", 2 * 3600, seconds=60, group_seconds=3600)
QUARTER = FixedResolution("15m", 2 * DAY_SECONDS, seconds=900, group_seconds=DAY_SECONDS)
HOUR = FixedResolution("1h", 8 * DAY_SECONDS, seconds=3600, group_seconds=DAY_SECONDS)
DAY = CalendarResolution(
    "1d", 100 * DAY_SECONDS, unit="day", group_unit="month", longest_group_seconds=31 * DAY_SECONDS
)
MONTH = CalendarResolution(
    "1mo", 800 * DAY_SECONDS, unit="month", group_unit="year", longest_group_seconds=366 * DAY_SECONDS
)
RESOLUTIONS: tuple[Resolution, ...] = (MINUTE, QUARTER, HOUR, DAY, MONTH)
RESOLUTION_BY_NAME = {resolution.name: resolution for resolution in RESOLUTIONS}
LONGEST_RETENTION = MONTH

ROLLING_WINDOWS: dict[WindowName, tuple[FixedResolution, int]] = {
    "1h": (MINUTE, 3600),
    "24h": (QUARTER, DAY_SECONDS),
    "7d": (HOUR, 7 * DAY_SECONDS),
}
THIRTY_DAYS = 30


def is_late(timestamp: int, watermark: int) -> bool:
    """Older than the longest retention (800 days): counted as dropped-late, in no bucket, not lost silently.

    Measured to the second, in no time zone: the second of an event that is not late
    ends after ``watermark - 800 days``, and so does every bucket holding it, in every
    zone, so its 1mo buckets are always live. Finer resolutions take it where their
    bucket is still live.
    """
    return timestamp + 1 <= watermark - LONGEST_RETENTION.retention_seconds


def window_bucket_range(window: SpanName, now: int, tz: ZoneInfo) -> tuple[Resolution, int, int]:
    """The resolution and the first and last bucket start (inclusive) of a window at ``now`` in ``tz``.

    Every window is a run of consecutive buckets of one resolution, so a stored bucket
    (of the same zone) belongs to the window exactly when its start is in the range.
    ``lifetime`` is every month bucket retained at ``now`` (where the windows read their stocks).
    """
    if window == "lifetime":
        return MONTH, MONTH.bucket_start(now - MONTH.retention_seconds, tz), MONTH.bucket_start(now, tz)
    rolling = ROLLING_WINDOWS.get(window)
    if rolling is not None:
        resolution, length = rolling
        last = resolution.bucket_start(now, tz)
        return resolution, last - length + resolution.seconds, last
    if window in ("month", "quarter"):
        this_month = MONTH.bucket_start(now, tz)
        if window == "month":
            return MONTH, this_month, this_month
        month = local_date(this_month, tz)
        return MONTH, day_start(date(month.year, month.month - (month.month - 1) % 3, 1), tz), this_month
    today = DAY.bucket_start(now, tz)
    if window == "today":
        return DAY, today, today
    day = local_date(today, tz)
    if window == "week":
        return DAY, day_start(day - timedelta(days=day.weekday()), tz), today
    if window == "30d":
        return DAY, day_start(day - timedelta(days=THIRTY_DAYS - 1), tz), today
    raise ValueError(f"unknown window {window!r}")
