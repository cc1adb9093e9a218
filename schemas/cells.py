"""A CSV cell as the JSON value of a contract field: timestamps, whole numbers, numbers, decimal amounts, text."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from schemas.field_kinds import ValueKind
from schemas.mapping import CsvMapping

LARGEST_JSON_INTEGER = 2**63


def parse_timestamp(text: str, formats: Sequence[str], zone: ZoneInfo) -> datetime | None:
    """The first format that reads ``text``; times without an offset are in ``zone``. None if none does.

    A local time that does not exist (skipped by a daylight-saving change) is
    read with the offset before the change; an ambiguous one as its first occurrence.
    """
    for date_format in formats:
        try:
            parsed = datetime.strptime(text, date_format)
        except ValueError:
            continue
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=zone)
    return None


def rfc3339(moment: datetime) -> str:
    """``moment`` in UTC as ``2017-03-01T05:00:00Z`` (microseconds only when there are some)."""
    utc = moment.astimezone(UTC)
    fraction = f".{utc.microsecond:06d}" if utc.microsecond else ""
    return f"{utc:%Y-%m-%dT%H:%M:%S}{fraction}Z"


def json_number(amount: Decimal) -> int | float | str:
    """A decimal as a JSON number when that is exact, else as a string (the contract accepts both)."""
    if amount == amount.to_integral_value() and abs(amount) < LARGEST_JSON_INTEGER:
        return int(amount)
    as_float = float(amount)
    return as_float if Decimal(repr(as_float)) == amount else str(amount)


@lru_cache(maxsize=65536)
def _timestamp_text(text: str, formats: tuple[str, ...], timezone: str) -> str | None:
    """RFC 3339 of a cell (exports repeat dates a lot, and strptime is slow)."""
    moment = parse_timestamp(text, formats, ZoneInfo(timezone))
    return None if moment is None else rfc3339(moment)


class CellError(ValueError):
    """A cell that cannot become the value its field needs."""


def convert(text: str, kind: ValueKind, mapping: CsvMapping) -> Any:
    """Rendered ``text`` as the JSON value of a field of ``kind``; raises CellError."""
    if kind == "timestamp":
        timestamp = _timestamp_text(text, tuple(mapping.date_formats), mapping.timezone)
        if timestamp is None:
            raise CellError(f"{text!r} matches none of the date formats ({', '.join(mapping.date_formats)})")
        return timestamp
    if kind == "text":
        return text
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise CellError(f"{text!r} is not a number") from None
    if not number.is_finite():
        raise CellError(f"{text!r} is not a finite number")
    if kind == "whole number":
        if abs(number) >= LARGEST_JSON_INTEGER:
            raise CellError(f"{text!r} is too large")
        if number != number.to_integral_value():
            raise CellError(f"{text!r} is not a whole number")
        return int(number)
    return float(number) if kind == "number" else json_number(number)
