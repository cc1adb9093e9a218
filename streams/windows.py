"""Event-time buckets and the windows summed from them. Pure: times are epoch seconds.

Counters are kept per scope in buckets at three resolutions, each retained for
as long as the longest window it serves (plus slack for late events):

=========  ===========  ==========  =========================
resolution  bucket size  retention   serves
=========  ===========  ==========  =========================
``1m``     60 s         2 h         ``1h``
``15m``    900 s        48 h        ``24h``, ``today``
``1h``     3600 s       8 days      ``7d``
=========  ===========  ==========  =========================

A rolling window is the bucket holding ``now`` plus the buckets before it,
``window / bucket size`` in all (``1h`` = this minute and the 59 before it).
Buckets are stored in groups (an hour of minute buckets, a day of 15-minute or
hour buckets), one state key per group, so a batch writes each scope's
current group once however many of its buckets it touched.

``today`` is the 15-minute buckets from local midnight in the scope's time zone
up to ``now``. Retention is measured from the watermark (the newest event time
seen), never from the wall clock, so replaying old data keeps its buckets.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from schemas.catalog import WindowName


@dataclass(frozen=True)
class Resolution:
    name: str
    seconds: int
    retention_seconds: int
    group_seconds: int  # buckets are stored in groups of this span (one state key each)

    def bucket_start(self, timestamp: int) -> int:
        return timestamp - timestamp % self.seconds

    def group_start(self, timestamp: int) -> int:
        return timestamp - timestamp % self.group_seconds

    def is_live(self, start: int, watermark: int) -> bool:
        """Whether a bucket starting at ``start`` is still retained at ``watermark``."""
        return start + self.seconds > watermark - self.retention_seconds


MINUTE = Resolution("1m", 60, 2 * 3600, group_seconds=3600)
QUARTER = Resolution("15m", 900, 2 * 86400, group_seconds=86400)
HOUR = Resolution("1h", 3600, 8 * 86400, group_seconds=86400)
RESOLUTIONS: tuple[Resolution, ...] = (MINUTE, QUARTER, HOUR)
RESOLUTION_BY_NAME = {resolution.name: resolution for resolution in RESOLUTIONS}
LONGEST_RETENTION = HOUR

ROLLING_WINDOWS: dict[WindowName, tuple[Resolution, int]] = {
    "1h": (MINUTE, 3600),
    "24h": (QUARTER, 86400),
    "7d": (HOUR, 7 * 86400),
}


def is_late(timestamp: int, watermark: int) -> bool:
    """An event too old for every bucket: it is counted as dropped-late, not lost silently."""
    return not LONGEST_RETENTION.is_live(LONGEST_RETENTION.bucket_start(timestamp), watermark)


WINDOWS_BY_RESOLUTION: dict[str, tuple[WindowName, ...]] = {
    MINUTE.name: ("1h",),
    QUARTER.name: ("24h", "today"),
    HOUR.name: ("7d",),
}


def local_midnight(now: int, tz: ZoneInfo) -> int:
    """Epoch seconds of the last midnight in ``tz`` at or before ``now``."""
    local = datetime.fromtimestamp(now, tz)
    # fold=0: on a day whose first hour repeats, midnight is the first 00:00;
    # on a day that starts in a DST gap, it resolves to the moment after.
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0, fold=0)
    return int(midnight.timestamp())


def window_bucket_range(window: WindowName, now: int, tz: ZoneInfo) -> tuple[Resolution, int, int]:
    """The resolution and the first and last bucket start (inclusive) of a window at ``now``."""
    if window == "today":
        return QUARTER, QUARTER.bucket_start(local_midnight(now, tz)), QUARTER.bucket_start(now)
    resolution, length = ROLLING_WINDOWS[window]
    last = resolution.bucket_start(now)
    return resolution, last - length + resolution.seconds, last
