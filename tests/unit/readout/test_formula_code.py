"""streams.readout.formula_code: every catalog formula compiled gives exactly what Formula.evaluate gives."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.catalog import load_catalog
from schemas.formula import Formula
from streams.readout.formula_code import compiled

CATALOG = load_catalog()
COUNTERS = sorted({name for kpi in CATALOG.kpis for name in kpi.formula.names})
VALUES = st.one_of(st.just(0), st.integers(-5, 1_000), st.floats(-1e6, 1e9, allow_nan=False), st.just(0.1))


@pytest.mark.parametrize(
    ("source", "values", "expected"),
    [
        ("calls", {}, 0.0),
        ("calls_connected / calls", {"calls": 4, "calls_connected": 1}, 0.25),
        ("calls_connected / calls", {"calls_connected": 1}, None),  # a ratio over zero
        ("-(a - b) * 2 + 1.5", {"a": 1, "b": 3}, 5.5),
        ("a / (b - b) + 1", {"a": 1, "b": 3}, None),  # None goes through every operation
        ("-(a / b)", {"a": 1}, None),
    ],
)
def test_compiled_formulas(source: str, values: dict[str, float], expected: float | None) -> None:
    formula = Formula.parse(source)
    assert compiled(formula)(values) == expected == formula.evaluate(values)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(COUNTERS), VALUES))
def test_every_catalog_formula_compiled_equals_evaluate(values: dict[str, float]) -> None:
    for kpi in CATALOG.kpis:
        result, expected = compiled(kpi.formula)(values), kpi.formula.evaluate(values)
        both_nan = result is not None and expected is not None and math.isnan(result) and math.isnan(expected)
        assert result == expected or both_nan, kpi.id  # inf - inf is NaN either way
