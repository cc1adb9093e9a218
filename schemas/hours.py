"""Local times of day in rules and config files: ``"HH:MM"``, quiet hours, working hours and weekdays."""

from __future__ import annotations

import re
from datetime import time
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, model_validator

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index = date.weekday()

_HH_MM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def parse_time_of_day(value: object) -> time:
    """``"08:30"`` -> 08:30. YAML 1.1 reads an unquoted ``20:00`` as the number 1200: say so."""
    if isinstance(value, time):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError(
            f"a time of day must be quoted, as in '20:00' (unquoted, YAML reads 20:00 as a number: got {value})"
        )
    match = _HH_MM.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"{value!r} is not a time of day: write 'HH:MM' from '00:00' to '23:59'")
    return time(int(match.group(1)), int(match.group(2)))


TimeOfDay = Annotated[time, BeforeValidator(parse_time_of_day)]


def _distinct_days(days: tuple[Weekday, ...]) -> tuple[Weekday, ...]:
    if not days:
        raise ValueError("no business days: list the days that count, or leave business_days out")
    if len(set(days)) != len(days):
        raise ValueError("a day is listed twice")
    return days


BusinessDays = Annotated[tuple[Weekday, ...], AfterValidator(_distinct_days)]
"""The days that count (messages go out, pace runs), at least one, none twice: ``[mon, tue, wed, thu, fri]``."""


class QuietHours(BaseModel):
    """Local times when messages wait: ``{start: "20:00", end: "08:00"}`` (wraps midnight when end < start)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: TimeOfDay
    end: TimeOfDay

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("quiet hours start and end at the same time: give two different times")
        return self

    def contains(self, local: time) -> bool:
        """Whether a local wall-clock time is quiet: from ``start`` (included) to ``end`` (excluded)."""
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


class WorkingHours(BaseModel):
    """The working part of a day, ``"09:00-18:00"`` in rules files; does not wrap midnight."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: TimeOfDay
    end: TimeOfDay

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: object) -> object:
        if isinstance(value, str):
            start, separator, end = value.partition("-")
            if not separator:
                raise ValueError(f"{value!r} is not a span of working hours: write 'HH:MM-HH:MM', e.g. '09:00-18:00'")
            return {"start": start.strip(), "end": end.strip()}
        return value

    @model_validator(mode="after")
    def _ordered(self) -> WorkingHours:
        if self.start >= self.end:
            raise ValueError(f"working hours must end after they start (got {self.start:%H:%M}-{self.end:%H:%M})")
        return self
