"""streams.readout.exact_sums: counter values as exact ints, so sums never drift."""

from __future__ import annotations

import math
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.readout.exact_sums import ONE, add_into, as_floats, difference, exact, rounded


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0),
        (7, 7 * ONE),
        (-3, -3 * ONE),
        (0.5, ONE // 2),
        (0.1, 3602879701896397 * ONE // 2**55),  # the float 0.1, exactly
        (5e-324, 1),  # the smallest float: one unit
        (-(2.0**1023), -(2**1023) * ONE),
    ],
)
def test_exact_is_the_value_in_units_of_2_to_the_minus_1074(value: float, expected: int) -> None:
    assert exact(value) == expected
    assert rounded(exact(value)) == value


def test_a_value_added_and_taken_away_leaves_exactly_what_was_there() -> None:
    sums: dict[str, int] = {}
    add_into(sums, {"revenue": exact(0.1), "calls": exact(2)})
    add_into(sums, {"revenue": exact(0.2)})
    add_into(sums, {"revenue": exact(0.1)}, -1)
    assert rounded(sums["revenue"]) == 0.2  # floats: 0.1 + 0.2 - 0.1 == 0.20000000000000004
    add_into(sums, {"revenue": exact(0.2), "calls": exact(2)}, -1)
    assert sums == {}  # sums that come back to 0 are left out


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (None, {"calls": 2, "zero": 0}, {"calls": 2}),
        ({"calls": 2}, {"calls": 2}, {}),
        ({"calls": 2}, {"calls": 3.0}, {"calls": 1}),
        ({"calls": 2, "cycle_sample:d1": 60.0}, {"calls": 2}, {"cycle_sample:d1": -60}),
        ({"calls": 2}, {"calls": 2, "revenue": 0.25}, {"revenue": 0.25}),
    ],
)
def test_difference_per_counter(
    before: dict[str, float] | None, after: dict[str, float], expected: dict[str, float]
) -> None:
    assert as_floats(difference(before, after)) == expected


@given(st.lists(st.tuples(st.booleans(), st.floats(allow_nan=False, allow_infinity=False, width=64)), max_size=60))
def test_any_adds_and_removals_equal_the_correctly_rounded_sum_of_what_is_left(
    steps: list[tuple[bool, float]],
) -> None:
    sums: dict[str, int] = {}
    kept: list[float] = []
    for remove, value in steps:
        if remove and kept:
            add_into(sums, {"x": exact(kept.pop())}, -1)
        else:
            kept.append(value)
            add_into(sums, {"x": exact(value)})
    expected = math.fsum(kept) if all(abs(v) < sys.float_info.max / 64 for v in kept) else None
    if expected is not None:  # fsum overflows where the exact sum does not
        assert rounded(sums.get("x", 0)) == expected
