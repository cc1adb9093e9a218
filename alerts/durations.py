"""Durations in rules files: ``30s``, ``5m``, ``2h``, ``1d`` or a plain number of seconds."""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import BeforeValidator

_UNIT_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd]?)$")
_HINT = "use seconds or a number with s, m, h or d: 30s, 5m, 2h, 1d"


class DurationError(ValueError):
    pass


def parse_duration(value: object) -> float:
    """Seconds in ``value``: ``"90"``, ``90``, ``"90s"``, ``"1.5m"``, ``"2h"``, ``"1d"``; never negative."""
    if isinstance(value, bool):
        raise DurationError(f"{value!r} is not a duration ({_HINT})")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise DurationError(f"{value!r} is not a duration: it must be a finite number of seconds, 0 or more")
        return float(value)
    if not isinstance(value, str):
        raise DurationError(f"{value!r} is not a duration ({_HINT})")
    match = _DURATION.match(value.strip())
    if match is None:
        raise DurationError(f"{value!r} is not a duration ({_HINT})")
    number, unit = match.groups()
    return float(number) * _UNIT_SECONDS[unit or "s"]


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""A pydantic field type: a duration as written in a rules file, validated to seconds."""
