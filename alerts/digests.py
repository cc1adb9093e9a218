"""Daily and weekly digests: when each is due and which period it summarises. Pure.

A daily digest sent at 08:30 summarises yesterday against the day before; a
weekly one sent on Monday summarises last week (Monday to Sunday) against the
week before. A digest is due from its local send time for ``GRACE_SECONDS``: a
worker that was down at 08:30 still sends it at 09:10, but not the next evening.
Its id names the team, cadence and period, so sending it twice is impossible
(the outbox keeps one message per id). A period in which the team had no data at
all is not summarised (``skip_reason``): its message would be all zeros and
"behind goal" for data that never arrived.

Goals come from the config (``schemas.goals``): a daily digest shows the team's daily goals,
a weekly one (the weekly review) its weekly goals, each as in force for the period
summarised, and lists the reps behind their goals of that period (``reps_behind``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from alerts.rules import Digest
from schemas.catalog import KpiSpec, WindowName
from schemas.goals import Goal, GoalPeriod
from schemas.hours import WEEKDAYS
from schemas.scopes import Scope

GRACE_SECONDS = 6 * 3600


@dataclass(frozen=True)
class DueDigest:
    digest: Digest
    period: str  # "2026-11-24" (daily) or "2026-W47" (weekly): the period summarised
    send_at: float
    first_day: date  # the period's first day (the day, or the week's Monday)

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


def digest_period(digest: Digest) -> GoalPeriod:
    """The period of the goals a digest shows: ``day`` for a daily digest, ``week`` for a weekly one."""
    return "day" if digest.cadence == "daily" else "week"


@dataclass(frozen=True)
class BehindGoal:
    """A rep who ended the period short of a goal: ``value`` (None: no value at all) of ``target``."""

    rep: str
    team: str
    goal: str
    kpi_name: str
    unit: str
    value: float | None
    target: float


def reps_behind(goal: Goal, kpi: KpiSpec, values: Iterable[tuple[Scope, float | None]]) -> list[BehindGoal]:
    """The reps whose value misses ``goal`` (under it, or over it for a KPI where down is good), furthest first."""
    behind = []
    for scope, value in values:
        reached = value is not None and (value >= goal.target if kpi.good == "up" else value <= goal.target)
        if not reached:
            behind.append(BehindGoal(scope.rep, scope.team, goal.name, kpi.name, kpi.unit, value, goal.target))
    missing = -math.inf if kpi.good == "up" else math.inf
    behind.sort(key=lambda row: (row.value if row.value is not None else missing, row.rep), reverse=kpi.good != "up")
    return behind


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
            first_day = send_day - timedelta(days=1)
            period = first_day.isoformat()
        else:
            last_week = send_day - timedelta(days=7)
            first_day = last_week - timedelta(days=last_week.weekday())
            year, week, _ = last_week.isocalendar()
            period = f"{year}-W{week:02d}"
        return DueDigest(digest, period, send_at, first_day)
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
