"""Exact sums of counter values that are added to and subtracted from for ever. Pure.

A float is a whole multiple of 2**-1074 (the smallest subnormal), so every counter value, an int or
a float, is an int in units of 2**-1074: ``exact(value)``. Sums and differences of such ints are
exact, however many values come and go: a window that adds 0.1 and later subtracts it holds exactly
what it held before, which float arithmetic does not promise. ``rounded(total)`` is the float
nearest to the exact sum (Python's int division rounds correctly), the same float as
``math.fsum`` of the values summed; for ints below 2**53 it is the int itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

SHIFT = 1074  # 2**-1074 is the smallest positive float
ONE = 1 << SHIFT

ExactCounters = dict[str, int]  # counter -> exact sum (units of 2**-1074); a zero sum is left out


def exact(value: float) -> int:
    """``value`` in units of 2**-1074, exactly."""
    if type(value) is int:
        return value << SHIFT
    numerator, denominator = value.as_integer_ratio()
    return numerator << (SHIFT + 1 - denominator.bit_length())  # the denominator is a power of two


def rounded(total: int) -> float:
    """The float nearest to an exact sum."""
    return total / ONE


def difference(before: Mapping[str, float] | None, after: Mapping[str, float]) -> ExactCounters:
    """``after - before`` per counter, exactly; counters that did not change are left out."""
    if not before:
        return {name: exact(value) for name, value in after.items() if value}
    deltas = {}
    for name, value in after.items():
        old = before.get(name, 0)
        if value != old:
            deltas[name] = exact(value) - exact(old)
    for name, old in before.items():
        if name not in after and old:
            deltas[name] = -exact(old)
    return deltas


def add_into(sums: ExactCounters, deltas: Mapping[str, int], sign: int = 1) -> None:
    """``sums += sign * deltas``, leaving out sums that become 0."""
    for name, delta in deltas.items():
        total = sums.get(name, 0) + sign * delta
        if total:
            sums[name] = total
        else:
            sums.pop(name, None)


def as_floats(sums: Mapping[str, int]) -> dict[str, float]:
    return {name: rounded(total) for name, total in sums.items()}


class FloatView(Mapping[str, float]):
    """Exact sums read as floats, each converted when read (a formula reads a few of many counters)."""

    __slots__ = ("_sums",)

    def __init__(self, sums: Mapping[str, int]) -> None:
        self._sums = sums

    def __getitem__(self, name: str) -> float:
        return self._sums[name] / ONE

    def get(self, name: str, default: float | None = None) -> float | None:  # type: ignore[override]
        total = self._sums.get(name)
        return default if total is None else total / ONE

    def __iter__(self) -> Iterator[str]:
        return iter(self._sums)

    def __len__(self) -> int:
        return len(self._sums)
