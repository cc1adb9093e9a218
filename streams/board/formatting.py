"""How numbers read on a wall: counts, money, rates and changes, as short strings. Pure."""

from __future__ import annotations

import math

CURRENCY_SIGNS = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥", "INR": "₹"}
NO_VALUE = "-"


def count(value: float | None) -> str:
    """12, 12.5, 18,000, 184k, 1.23M: at most six characters of digits."""
    if value is None or not math.isfinite(value):
        return NO_VALUE
    magnitude = abs(value)
    if magnitude >= 999_500:
        return f"{value / 1_000_000:.3g}M"
    if magnitude >= 99_999.5:
        return f"{value / 1000:.0f}k"
    if magnitude != int(magnitude):
        return f"{value:,.1f}"
    return f"{value:,.0f}"


def money(value: float | None, currency: str) -> str:
    """€47.1, €18,000, €184k, $1.23M; an unknown sign as its code: CHF 1,200."""
    if value is None or not math.isfinite(value):
        return NO_VALUE
    sign = CURRENCY_SIGNS.get(currency, f"{currency} ")
    text = count(round(abs(value), 0) if abs(value) >= 100 else abs(value))
    return f"-{sign}{text}" if value < 0 else f"{sign}{text}"


def percent(ratio: float | None) -> str:
    """0.234 -> 23.4%."""
    if ratio is None or not math.isfinite(ratio):
        return NO_VALUE
    return f"{ratio * 100:.1f}%"


def change_points(now: float | None, before: float | None) -> str:
    """The change of a rate in percentage points, with an arrow so colour is not the only sign."""
    if now is None or before is None:
        return "no data from last week"
    points = (now - before) * 100
    if round(points, 1) == 0:
        return "= 0.0 pts vs last week"
    arrow = "▲" if points > 0 else "▼"
    return f"{arrow} {abs(points):.1f} pts vs last week"


def ratio_of(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, None where the denominator is 0 or missing (as on /metrics)."""
    if numerator is None or not denominator:
        return None
    return numerator / denominator
