"""schemas.hours and schemas.calendar: quiet hours and calendar periods on the local wall clock.

2026's DST changes: Europe/Berlin on Sunday March 29 (02:00 CET -> 03:00 CEST) and
Sunday October 25 (03:00 CEST -> 02:00 CET); America/New_York on Sunday March 8
(02:00 EST -> 03:00 EDT) and Sunday November 1 (02:00 EDT -> 01:00 EST). Instants are
written in UTC, with the local time they are in the comments.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.calendar import in_quiet_hours, period_days, period_elapsed
from schemas.hours import QuietHours, Weekday, WorkingHours

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
WEEKDAYS_ONLY: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri")
NIGHT = QuietHours.model_validate({"start": "20:00", "end": "08:00"})  # wraps midnight
LUNCH = QuietHours.model_validate({"start": "12:00", "end": "13:30"})
TWO_TO_THREE = QuietHours.model_validate({"start": "02:00", "end": "03:00"})  # the hour DST skips or repeats
NINE_TO_SIX = WorkingHours.model_validate("09:00-18:00")


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()


def local(tz: ZoneInfo, year: int, month: int, day: int, hour: int, minute: int = 0) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=tz).timestamp()


@pytest.mark.parametrize(
    ("quiet", "at", "expected"),
    [
        (NIGHT, time(20, 0), True),  # start included
        (NIGHT, time(19, 59), False),
        (NIGHT, time(23, 59), True),
        (NIGHT, time(0, 0), True),
        (NIGHT, time(7, 59), True),
        (NIGHT, time(8, 0), False),  # end excluded
        (NIGHT, time(12, 0), False),
        (LUNCH, time(11, 59), False),
        (LUNCH, time(12, 0), True),
        (LUNCH, time(13, 29), True),
        (LUNCH, time(13, 30), False),
        (LUNCH, time(0, 0), False),
    ],
)
def test_quiet_hours_contain(quiet: QuietHours, at: time, expected: bool) -> None:
    assert quiet.contains(at) is expected


@pytest.mark.parametrize(
    ("now", "tz", "quiet", "expected"),
    [
        # Berlin, spring: 08:00 is 07:00 UTC on Saturday (CET), 06:00 UTC on Sunday (CEST)
        (utc(2026, 3, 28, 6, 30), BERLIN, NIGHT, True),  # Sat 07:30 CET
        (utc(2026, 3, 28, 7, 0), BERLIN, NIGHT, False),  # Sat 08:00 CET
        (utc(2026, 3, 29, 5, 30), BERLIN, NIGHT, True),  # Sun 07:30 CEST
        (utc(2026, 3, 29, 6, 30), BERLIN, NIGHT, False),  # Sun 08:30 CEST (07:30 with a fixed +01:00)
        (utc(2026, 3, 29, 17, 59), BERLIN, NIGHT, False),  # Sun 19:59 CEST
        (utc(2026, 3, 29, 18, 0), BERLIN, NIGHT, True),  # Sun 20:00 CEST
        # Berlin, spring: 02:00-03:00 does not exist on March 29, so it is never quiet that night
        (utc(2026, 3, 29, 0, 59), BERLIN, TWO_TO_THREE, False),  # 01:59 CET
        (utc(2026, 3, 29, 1, 0), BERLIN, TWO_TO_THREE, False),  # 03:00 CEST
        (utc(2026, 3, 28, 1, 30), BERLIN, TWO_TO_THREE, True),  # Sat 02:30 CET
        # Berlin, autumn: 08:00 is 06:00 UTC on Saturday (CEST), 07:00 UTC on Sunday (CET)
        (utc(2026, 10, 24, 5, 59), BERLIN, NIGHT, True),  # Sat 07:59 CEST
        (utc(2026, 10, 24, 6, 0), BERLIN, NIGHT, False),  # Sat 08:00 CEST
        (utc(2026, 10, 25, 6, 30), BERLIN, NIGHT, True),  # Sun 07:30 CET (08:30 with a fixed +02:00)
        (utc(2026, 10, 25, 7, 0), BERLIN, NIGHT, False),  # Sun 08:00 CET
        # Berlin, autumn: 02:00-03:00 happens twice on October 25, quiet both times
        (utc(2026, 10, 24, 23, 59), BERLIN, TWO_TO_THREE, False),  # 01:59 CEST
        (utc(2026, 10, 25, 0, 30), BERLIN, TWO_TO_THREE, True),  # 02:30 CEST
        (utc(2026, 10, 25, 1, 30), BERLIN, TWO_TO_THREE, True),  # 02:30 CET
        (utc(2026, 10, 25, 2, 0), BERLIN, TWO_TO_THREE, False),  # 03:00 CET
        # New York, spring: 08:00 is 13:00 UTC on Saturday (EST), 12:00 UTC on Sunday (EDT)
        (utc(2026, 3, 7, 12, 30), NEW_YORK, NIGHT, True),  # Sat 07:30 EST
        (utc(2026, 3, 7, 13, 0), NEW_YORK, NIGHT, False),  # Sat 08:00 EST
        (utc(2026, 3, 8, 11, 30), NEW_YORK, NIGHT, True),  # Sun 07:30 EDT
        (utc(2026, 3, 8, 12, 0), NEW_YORK, NIGHT, False),  # Sun 08:00 EDT
        (utc(2026, 3, 8, 0, 59), NEW_YORK, NIGHT, False),  # Sat 19:59 EST
        (utc(2026, 3, 8, 1, 0), NEW_YORK, NIGHT, True),  # Sat 20:00 EST
        (utc(2026, 3, 9, 0, 0), NEW_YORK, NIGHT, True),  # Sun 20:00 EDT
        (utc(2026, 3, 8, 23, 59), NEW_YORK, NIGHT, False),  # Sun 19:59 EDT
        # New York, autumn: 08:00 is 12:00 UTC on Saturday (EDT), 13:00 UTC on Sunday (EST)
        (utc(2026, 10, 31, 12, 0), NEW_YORK, NIGHT, False),  # Sat 08:00 EDT
        (utc(2026, 11, 1, 12, 30), NEW_YORK, NIGHT, True),  # Sun 07:30 EST
        (utc(2026, 11, 1, 13, 0), NEW_YORK, NIGHT, False),  # Sun 08:00 EST
        (utc(2026, 11, 1, 5, 30), NEW_YORK, NIGHT, True),  # Sun 01:30 EDT, wrapped past midnight
        (utc(2026, 11, 1, 6, 30), NEW_YORK, NIGHT, True),  # Sun 01:30 EST, the repeated hour
        # no quiet hours: never quiet
        (utc(2026, 3, 29, 1, 0), BERLIN, None, False),
    ],
)
def test_quiet_hours_follow_the_local_clock_across_dst(
    now: float, tz: ZoneInfo, quiet: QuietHours | None, expected: bool
) -> None:
    assert in_quiet_hours(quiet, None, now, tz) is expected


@pytest.mark.parametrize(
    ("now", "tz", "quiet", "expected"),
    [
        (utc(2026, 3, 27, 12, 0), BERLIN, NIGHT, False),  # Fri 13:00 CET
        (utc(2026, 3, 27, 22, 30), BERLIN, NIGHT, True),  # Fri 23:30 CET: a business day, but quiet hours
        (utc(2026, 3, 28, 12, 0), BERLIN, None, True),  # Sat 13:00 CET: not a business day
        (utc(2026, 3, 29, 22, 30), BERLIN, None, False),  # Mon 00:30 CEST locally, still Sunday in UTC
        (utc(2026, 3, 29, 22, 30), BERLIN, NIGHT, True),  # the same instant inside the night's quiet hours
        (utc(2026, 3, 28, 3, 0), NEW_YORK, None, False),  # Fri 23:00 EDT locally, Saturday in UTC
        (utc(2026, 3, 28, 4, 0), NEW_YORK, None, True),  # Sat 00:00 EDT
    ],
)
def test_days_other_than_business_days_are_quiet(
    now: float, tz: ZoneInfo, quiet: QuietHours | None, expected: bool
) -> None:
    assert in_quiet_hours(quiet, WEEKDAYS_ONLY, now, tz) is expected


@pytest.mark.parametrize(
    ("window", "now", "first", "end"),
    [
        ("today", local(BERLIN, 2026, 3, 29, 12), "2026-03-29", "2026-03-30"),
        ("today", utc(2026, 3, 28, 23, 30), "2026-03-29", "2026-03-30"),  # already Sunday in Berlin
        ("week", local(BERLIN, 2026, 3, 29, 23, 59), "2026-03-23", "2026-03-30"),  # Sunday ends the week
        ("week", local(BERLIN, 2026, 3, 30, 0), "2026-03-30", "2026-04-06"),
        ("month", local(BERLIN, 2026, 12, 31, 23), "2026-12-01", "2027-01-01"),
        ("quarter", local(BERLIN, 2026, 5, 1, 0), "2026-04-01", "2026-07-01"),
        ("quarter", local(BERLIN, 2026, 12, 15, 0), "2026-10-01", "2027-01-01"),
        ("quarter", local(BERLIN, 2026, 3, 31, 23, 59), "2026-01-01", "2026-04-01"),
    ],
)
def test_period_days(window: str, now: float, first: str, end: str) -> None:
    assert tuple(day.isoformat() for day in period_days(window, now, BERLIN)) == (first, end)


HOURS = 3600.0


@pytest.mark.parametrize(
    ("window", "now", "tz", "working_hours", "business_days", "expected"),
    [
        # today, whole days: real hours, 23 on the spring DST day and 25 on the autumn one
        ("today", local(BERLIN, 2026, 3, 27, 12), BERLIN, None, None, 0.5),
        ("today", local(BERLIN, 2026, 3, 29, 12), BERLIN, None, None, 11 / 23),  # 00:00 CET to 12:00 CEST: 11 h
        ("today", local(NEW_YORK, 2026, 11, 1, 12), NEW_YORK, None, None, 13 / 25),  # 00:00 EDT to 12:00 EST: 13 h
        # today, working hours 09:00-18:00
        ("today", local(BERLIN, 2026, 3, 27, 14), BERLIN, NINE_TO_SIX, None, 5 / 9),
        ("today", local(BERLIN, 2026, 3, 27, 8, 59), BERLIN, NINE_TO_SIX, None, 0.0),
        ("today", local(BERLIN, 2026, 3, 27, 9), BERLIN, NINE_TO_SIX, None, 0.0),
        ("today", local(BERLIN, 2026, 3, 27, 18), BERLIN, NINE_TO_SIX, None, 1.0),
        ("today", local(BERLIN, 2026, 3, 27, 23), BERLIN, NINE_TO_SIX, None, 1.0),
        ("today", local(BERLIN, 2026, 3, 29, 14), BERLIN, NINE_TO_SIX, None, 5 / 9),  # DST day: 9 working hours
        # today on a day that is not a business day: nothing expected
        ("today", local(BERLIN, 2026, 3, 28, 14), BERLIN, NINE_TO_SIX, WEEKDAYS_ONLY, 0.0),
        ("today", local(BERLIN, 2026, 3, 27, 14), BERLIN, NINE_TO_SIX, WEEKDAYS_ONLY, 5 / 9),
        # week from Monday: March 23-29 2026 has 167 hours in Berlin (the DST Sunday has 23)
        ("week", local(BERLIN, 2026, 3, 25, 12), BERLIN, None, None, 60 / 167),
        ("week", local(BERLIN, 2026, 3, 25, 12), BERLIN, None, WEEKDAYS_ONLY, 2.5 / 5),
        ("week", local(BERLIN, 2026, 3, 25, 13, 30), BERLIN, NINE_TO_SIX, WEEKDAYS_ONLY, 22.5 / 45),
        ("week", local(BERLIN, 2026, 3, 28, 10), BERLIN, NINE_TO_SIX, WEEKDAYS_ONLY, 1.0),  # Saturday: all done
        ("week", local(BERLIN, 2026, 3, 23, 0), BERLIN, None, None, 0.0),
        # month: March 2026 in Berlin is 31 days less the DST hour
        ("month", local(BERLIN, 2026, 3, 16, 0), BERLIN, None, None, 15 * 24 / (31 * 24 - 1)),
        # 22 business days in March 2026; by Monday 16th 10 of them are over
        ("month", local(BERLIN, 2026, 3, 16, 0), BERLIN, None, WEEKDAYS_ONLY, 10 / 22),
        ("month", local(BERLIN, 2026, 3, 16, 13, 30), BERLIN, NINE_TO_SIX, WEEKDAYS_ONLY, 10.5 / 22),
        # quarter: Q2 2026 is April (30 days) + May (31) + June (30), no DST change inside
        ("quarter", local(BERLIN, 2026, 5, 1, 0), BERLIN, None, None, 30 / 91),
        ("quarter", local(NEW_YORK, 2026, 7, 1, 0), NEW_YORK, None, None, 0.0),
    ],
)
def test_period_elapsed(
    window: str,
    now: float,
    tz: ZoneInfo,
    working_hours: WorkingHours | None,
    business_days: tuple[Weekday, ...] | None,
    expected: float,
) -> None:
    assert period_elapsed(window, now, tz, working_hours, business_days) == pytest.approx(expected, abs=1e-12)


def test_period_elapsed_needs_a_calendar_window() -> None:
    with pytest.raises(ValueError, match="'7d' is not a calendar window"):
        period_elapsed("7d", 0.0, BERLIN)


@given(
    window=st.sampled_from(["today", "week", "month", "quarter"]),
    start=st.floats(min_value=utc(2026, 1, 1, 0), max_value=utc(2027, 1, 1, 0)),
    later=st.floats(min_value=0, max_value=40 * 24 * HOURS),
    zone=st.sampled_from([BERLIN, NEW_YORK, ZoneInfo("Asia/Kolkata")]),
    hours=st.sampled_from([None, NINE_TO_SIX]),
    days=st.sampled_from([None, WEEKDAYS_ONLY]),
)
def test_period_elapsed_grows_within_its_period(
    window: str,
    start: float,
    later: float,
    zone: ZoneInfo,
    hours: WorkingHours | None,
    days: tuple[Weekday, ...] | None,
) -> None:
    first = period_elapsed(window, start, zone, hours, days)
    assert 0.0 <= first <= 1.0
    if period_days(window, start + later, zone) == period_days(window, start, zone):
        assert period_elapsed(window, start + later, zone, hours, days) >= first
