"""schemas.formula: the small arithmetic language of KPI formulas."""

from __future__ import annotations

import pytest

from schemas.formula import Formula, FormulaError


@pytest.mark.parametrize(
    ("source", "values", "expected"),
    [
        ("calls", {"calls": 7}, 7.0),
        ("calls", {}, 0.0),  # an absent counter is 0
        ("42", {}, 42.0),
        ("2.5", {}, 2.5),
        ("email_replies / emails_sent", {"email_replies": 3, "emails_sent": 12}, 0.25),
        ("calls_connected / calls", {"calls_connected": 1, "calls": 5}, 0.2),
        ("a + b", {"a": 1.5, "b": 2}, 3.5),
        ("a - b", {"a": 1, "b": 4}, -3.0),
        ("a * b", {"a": 3, "b": 4}, 12.0),
        ("a + b * c", {"a": 1, "b": 2, "c": 3}, 7.0),  # precedence
        ("(a + b) * c", {"a": 1, "b": 2, "c": 3}, 9.0),
        ("a - b - c", {"a": 10, "b": 3, "c": 2}, 5.0),  # left associative
        ("a / b / c", {"a": 12, "b": 3, "c": 2}, 2.0),
        ("-a", {"a": 4}, -4.0),
        ("-(a - b)", {"a": 1, "b": 3}, 2.0),
        ("- - a", {"a": 4}, 4.0),
        ("100 * a / b", {"a": 1, "b": 8}, 12.5),
        ("a/b", {"a": 1, "b": 2}, 0.5),
        ("a  +  1  ", {"a": 1}, 2.0),  # inner and trailing blanks
    ],
)
def test_evaluate(source: str, values: dict[str, float], expected: float) -> None:
    result = Formula.parse(source).evaluate(values)
    assert result == expected
    assert isinstance(result, float)


@pytest.mark.parametrize(
    ("source", "values"),
    [
        ("a / b", {"a": 1, "b": 0}),
        ("a / b", {"a": 1}),  # b absent counts as 0
        ("a / b", {}),  # 0 / 0
        ("1 / 0", {}),
        ("a / (b - c)", {"a": 1, "b": 2, "c": 2}),
        ("a / -b", {"a": 1, "b": 0}),  # -0.0 is zero too
        ("(a / b) + 1", {"a": 1}),  # None propagates through +
        ("0 * (a / b)", {"a": 1}),  # ... and through *
        ("-(a / b)", {"a": 1}),  # ... and through unary minus
        ("c / (a / b)", {"a": 1, "c": 1}),  # ... and through /
    ],
)
def test_division_by_zero_is_none(source: str, values: dict[str, float]) -> None:
    assert Formula.parse(source).evaluate(values) is None


@pytest.mark.parametrize(
    ("source", "names"),
    [
        ("calls", {"calls"}),
        ("email_replies / emails_sent", {"email_replies", "emails_sent"}),
        ("a + b * a - 3", {"a", "b"}),
        ("-(x) / (y + 1.5)", {"x", "y"}),
        ("7", set()),
    ],
)
def test_names(source: str, names: set[str]) -> None:
    formula = Formula.parse(source)
    assert formula.names == frozenset(names)
    assert formula.source == source


@pytest.mark.parametrize(
    "source",
    [
        "max(a, b)",  # call
        "abs(a)",
        "a.b",  # attribute
        "a[0]",  # subscript
        "a ** 2",  # power
        "a // b",  # floor division
        "a % b",  # modulo
        "+a",  # unary plus
        "not a",
        "~a",
        "a < b",  # comparisons
        "a == b",
        "a and b",
        "a if b else c",
        "'text'",  # strings
        "a + 'x'",
        "b'x'",
        "True",  # a bool is not a number
        "None",
        "1j",  # complex
        "(a, b)",
        "[a]",
        "{a: 1}",
        "lambda: a",
        "(a := 1)",
        "a @ b",
        "a << 1",
        "a | b",
    ],
)
def test_unsupported_syntax_rejected(source: str) -> None:
    with pytest.raises(FormulaError, match="unsupported syntax"):
        Formula.parse(source)


@pytest.mark.parametrize("source", ["", "a +", "a b", "a = 1", "a; b", "(a", "import os"])
def test_not_an_expression_rejected(source: str) -> None:
    with pytest.raises(FormulaError, match="is not an expression"):
        Formula.parse(source)


def test_leading_blanks_are_accepted() -> None:
    # A quoted YAML value such as `formula: " calls / 2"` keeps its leading blank.
    assert Formula.parse(" calls / 2").evaluate({"calls": 3}) == 1.5


def test_formula_error_is_a_value_error() -> None:
    assert issubclass(FormulaError, ValueError)


def test_error_names_the_formula_and_the_offending_part() -> None:
    with pytest.raises(FormulaError) as info:
        Formula.parse("calls / max(emails_sent, 1)")
    assert "'calls / max(emails_sent, 1)'" in str(info.value)
    assert "'max(emails_sent, 1)'" in str(info.value)


@pytest.mark.parametrize(
    ("source", "parts"),
    [
        ("email_replies / emails_sent", ("email_replies", "emails_sent")),
        ("deals_won / (deals_won + deals_lost)", ("deals_won", "deals_won + deals_lost")),
        ("(a + b) / c / d", ("(a + b) / c", "d")),
        ("calls", None),
        ("a / b * 100", None),
        ("a - b / c", None),
    ],
)
def test_ratio_parts(source: str, parts: tuple[str, str] | None) -> None:
    split = Formula.parse(source).ratio_parts()
    if parts is None:
        assert split is None
    else:
        assert split is not None
        assert (split[0].source, split[1].source) == tuple(Formula.parse(p).source for p in parts)
        assert split[0].evaluate({"a": 6, "b": 2, "c": 2, "d": 2}) is not None


@pytest.mark.parametrize(
    ("source", "values", "expected"),
    [
        ("a / at_least(b, 20)", {"a": 5, "b": 25}, 0.2),
        ("a / at_least(b, 20)", {"a": 5, "b": 20}, 0.25),  # the bound itself is enough
        ("a / at_least(b, 20)", {"a": 5, "b": 19}, None),  # too small a sample: no value
        ("at_least(a - b, 0)", {"a": 1, "b": 2}, None),
        ("at_least(a / b, 0.5)", {"a": 1}, None),  # None goes through
        ("2 * at_least(a, 1.5)", {"a": 2}, 4.0),
    ],
)
def test_at_least_guards_a_small_sample(source: str, values: dict[str, float], expected: float | None) -> None:
    formula = Formula.parse(source)
    assert formula.evaluate(values) == expected
    assert "at_least" not in formula.names


@pytest.mark.parametrize(
    "source", ["at_least(a)", "at_least(a, b)", "at_least(a, 2, 3)", "at_least(a, n=2)", "at_most(a, 2)", "a(2, 3)"]
)
def test_only_at_least_with_a_number_is_a_function(source: str) -> None:
    with pytest.raises(FormulaError, match="unsupported syntax"):
        Formula.parse(source)


@pytest.mark.parametrize(
    ("source", "additive"),
    [
        ("calls", True),
        ("email_campaign_sends - email_bounces", True),
        ("a + b - c", True),
        ("-(a + b)", True),
        ("deals_won / (deals_won + deals_lost)", False),
        ("2 * calls", False),
        ("calls + 1", False),
    ],
)
def test_additive_formulas_add_up_over_time_and_workers(source: str, additive: bool) -> None:
    assert Formula.parse(source).is_additive() is additive
