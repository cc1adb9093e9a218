"""Daily and weekly digests: when each is due and which period it summarises. Pure.

A daily digest sent at 08:30 summarises yesterday against the day before; a
weekly one sent on Monday summarises last week (Monday to Sunday) against the
week before. A digest is due from its local send time for ``GRACE_SECONDS``: a
worker that was down at 08:30 still sends it at 09:10, but not the next evening.
Its id names the team, cadence and period, so sending it twice is impossible
(the outbox keeps one message per id). A period in which the team had no data at
all is not summarised (``skip_reason``): its message would be all zeros and
"behind goal" for data that never arrived.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from alerts.rules import Digest
from schemas.catalog import WindowName
from schemas.hours import WEEKDAYS

GRACE_SECONDS = 6 * 3600


@dataclass(frozen=True)
class DueDigest:
    digest: Digest
    period: str  # "2026-11-24" (daily) or "2026-W47" (weekly): the period summarised
    send_at: float

    @property
    def id(self) -> str:
        return f"digest/{self.digest.team}/{self.digest.cadence}/{self.period}"

    @property
    def title(self) -> str:
        what = "Daily" if self.digest.cadence == "daily" else "Weekly"
        return f"{what} digest for team {self.digest.team}: {self.period}"


def digest_window(digest: Digest) -> WindowName:
    """The calendar window whose previous period a digest summarises."""
    return "today" if digest.cadence == "daily" else "week"


def _send_time(day: date, digest: Digest, tz: ZoneInfo) -> float:
    return datetime.combine(day, digest.at, tzinfo=tz).timestamp()


def due_digest(digest: Digest, now: float, tz: ZoneInfo) -> DueDigest | None:
    """The digest due at ``now`` (its latest send time passed less than ``GRACE_SECONDS`` ago), if any."""
    day = datetime.fromtimestamp(now, tz).date()
    for back in range(8):
        send_day = day - timedelta(days=back)
        if digest.cadence == "weekly" and WEEKDAYS[send_day.weekday()] != digest.weekday:
            continue
        send_at = _send_time(send_day, digest, tz)
        if send_at > now:
            continue
        if now - send_at >= GRACE_SECONDS:
            return None
        if digest.cadence == "daily":
            period = (send_day - timedelta(days=1)).isoformat()
        else:
            year, week, _ = (send_day - timedelta(days=7)).isocalendar()
            period = f"{year}-W{week:02d}"
        return DueDigest(digest, period, send_at)
    return None


def skip_reason(due: DueDigest, period: Mapping[str, float]) -> str | None:
    """Why ``due`` is not sent, or None to send it. ``period``: the team's counters in the period summarised.

    A digest is skipped when every counter of the team is zero (or absent) in that period: the
    team had no data at all, as before the first events reach a new worker or in a week nobody
    worked. While the digest is due, a later round that sees data sends it after all.
    """
    if any(value != 0 for value in period.values()):
        return None
    return f"{due.title}: not sent, team {due.digest.team} had no data at all in {due.period}"
