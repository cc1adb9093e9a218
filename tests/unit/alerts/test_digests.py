"""alerts.digests: when a digest is due and which period it names, by hand."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from alerts.digests import DueDigest, due_digest, skip_reason
from alerts.rules import Digest

BERLIN = ZoneInfo("Europe/Berlin")
DAILY = Digest.model_validate({"team": "emea", "cadence": "daily", "at": "08:30", "kpis": ["calls"], "route": "s"})
WEEKLY = Digest.model_validate(
    {"team": "emea", "cadence": "weekly", "at": "08:30", "weekday": "mon", "kpis": ["calls"], "route": "s"}
)


def berlin(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN).timestamp()


@pytest.mark.parametrize(
    ("digest", "now", "period", "send_at"),
    [
        (DAILY, "2026-11-25 08:30", "2026-11-24", "2026-11-25 08:30"),
        (DAILY, "2026-11-25 14:29", "2026-11-24", "2026-11-25 08:30"),
        (DAILY, "2026-11-25 14:30", None, None),  # six hours late: skipped
        (DAILY, "2026-11-25 08:29", None, None),  # yesterday's was sent (grace over), today's not yet due
        (DAILY, "2026-03-29 08:30", "2026-03-28", "2026-03-29 08:30"),  # the day clocks go forward
        (WEEKLY, "2026-11-30 09:00", "2026-W48", "2026-11-30 08:30"),  # Monday: last week is ISO week 48
        (WEEKLY, "2026-12-01 09:00", None, None),  # Tuesday
    ],
)
def test_due_digest(digest: Digest, now: str, period: str | None, send_at: str | None) -> None:
    due = due_digest(digest, berlin(now), BERLIN)
    if period is None:
        assert due is None
    else:
        assert due is not None
        assert (due.period, due.send_at) == (period, berlin(send_at or ""))
        assert due.id == f"digest/emea/{digest.cadence}/{period}"


@pytest.mark.parametrize(
    ("period", "sent"),
    [
        ({}, False),  # the team had no bucket at all in the period
        ({"calls": 0.0, "revenue": 0.0}, False),  # buckets, but nothing in them
        ({"calls": 0.0, "leads": 3.0}, True),  # no calls, but data: a digest of zero calls is news
        ({"deals_won": -1.0}, True),  # a deal moved away: a change is data
    ],
)
def test_a_digest_is_skipped_when_the_team_had_no_data_at_all_in_the_period(
    period: dict[str, float], sent: bool
) -> None:
    due = DueDigest(DAILY, "2026-11-24", berlin("2026-11-25 08:30"))
    reason = skip_reason(due, period)
    if sent:
        assert reason is None
    else:
        assert reason == "Daily digest for team emea: 2026-11-24: not sent, team emea had no data at all in 2026-11-24"
