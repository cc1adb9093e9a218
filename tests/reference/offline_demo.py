"""The funnel over a window and each rep's activity today, computed offline from contract events by plain Python.

Like ``offline_funnel``, this module imports nothing from ``schemas``, ``streams`` or ``alerts``: an integration
test runs ``kpimon simulate --history`` against a real worker, reads back every event it produced, and compares
the worker's /metrics with :func:`funnel_between` and :func:`activity_on` over those events.

The rules (what docs/kpis.md states)
====================================
Each event counts once per ``event_id`` (the first copy read). Over [start, end):

- ``leads``: leads whose ``lead.created`` (the first one) is in the window;
- ``mqls`` / ``sqls``: leads whose first ``lead.qualified`` to that stage is in the window;
- ``opportunities_created``: deals whose ``opportunity.created`` (the first one) is in the window;
- a deal's outcome is its latest ``deal.won`` or ``deal.lost`` (by time, then event id): ``deals_won`` and
  ``revenue`` (that win's amount, times the rate of its currency) when it is a win in the window, ``deals_lost``
  when it is a loss in the window;
- ``win_rate``: won / (won + lost), ``None`` without any.

Activity: ``(rep_id, type) -> count`` of the events of ``type`` (``call.logged``, ``email.sent``,
``meeting.booked``, ``demo.completed``) whose local date in the rep's team's zone is the date asked.

A window of ``days`` calendar days ending today (kpimon's ``30d``) starts at local midnight ``days - 1`` days
before today's date in the scope's zone: :func:`calendar_days_start`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, TypedDict
from zoneinfo import ZoneInfo

__all__ = ["ACTIVITY_TYPES", "Funnel", "activity_on", "calendar_days_start", "funnel_between"]

ACTIVITY_TYPES = ("call.logged", "email.sent", "meeting.booked", "demo.completed")
Event = Mapping[str, Any]


class Funnel(TypedDict):
    leads: int
    mqls: int
    sqls: int
    opportunities_created: int
    deals_won: int
    deals_lost: int
    revenue: Decimal
    win_rate: float | None


def _moment(event: Event) -> float:
    return datetime.fromisoformat(str(event["occurred_at"])).timestamp()


def _first_copies(events: Iterable[Event]) -> list[Event]:
    seen: set[str] = set()
    first = []
    for event in events:
        if event["event_id"] not in seen:
            seen.add(str(event["event_id"]))
            first.append(event)
    return first


def calendar_days_start(now: float, days: int, zone: ZoneInfo) -> float:
    """Local midnight ``days - 1`` days before the local date of ``now``."""
    today = datetime.fromtimestamp(now, zone).date()
    return datetime.combine(today - timedelta(days=days - 1), time(0), tzinfo=zone).timestamp()


def funnel_between(events: Iterable[Event], start: float, end: float, rates: Mapping[str, Decimal]) -> Funnel:
    """The funnel counters and revenue of [start, end); ``rates``: reporting currency units per unit of each."""
    firsts: dict[tuple[str, str], float] = {}  # (what, id) -> its first time
    outcomes: dict[str, tuple[float, str, Event]] = {}  # deal -> latest (time, event id, won/lost event)
    for event in _first_copies(events):
        moment, kind = _moment(event), event["type"]
        if kind == "lead.created":
            what = ("lead", str(event["lead_id"]))
        elif kind == "lead.qualified":
            what = (str(event["stage"]), str(event["lead_id"]))
        elif kind == "opportunity.created":
            what = ("opportunity", str(event["deal_id"]))
        elif kind in ("deal.won", "deal.lost"):
            latest = outcomes.get(str(event["deal_id"]))
            if latest is None or (moment, str(event["event_id"])) > latest[:2]:
                outcomes[str(event["deal_id"])] = (moment, str(event["event_id"]), event)
            continue
        else:
            continue
        firsts[what] = min(moment, firsts.get(what, moment))

    def first_in_window(what: str) -> int:
        return sum(1 for (name, _), moment in firsts.items() if name == what and start <= moment < end)

    won = [event for moment, _, event in outcomes.values() if start <= moment < end and event["type"] == "deal.won"]
    lost = sum(1 for moment, _, event in outcomes.values() if start <= moment < end and event["type"] == "deal.lost")
    revenue = sum((Decimal(str(event["amount"])) * rates[str(event["currency"])] for event in won), Decimal(0))
    return {
        "leads": first_in_window("lead"),
        "mqls": first_in_window("mql"),
        "sqls": first_in_window("sql"),
        "opportunities_created": first_in_window("opportunity"),
        "deals_won": len(won),
        "deals_lost": lost,
        "revenue": revenue,
        "win_rate": len(won) / (len(won) + lost) if won or lost else None,
    }


def activity_on(
    events: Iterable[Event], day: Mapping[str, date], zones: Mapping[str, ZoneInfo]
) -> dict[tuple[str, str], int]:
    """``(rep_id, type) -> count`` of each rep's activity events on ``day[team]`` in ``zones[team]``."""
    counts: dict[tuple[str, str], int] = {}
    for event in _first_copies(events):
        if event["type"] not in ACTIVITY_TYPES or not event.get("rep_id"):
            continue
        team = str(event["team"])
        if datetime.fromtimestamp(_moment(event), zones[team]).date() == day[team]:
            key = (str(event["rep_id"]), str(event["type"]))
            counts[key] = counts.get(key, 0) + 1
    return counts
