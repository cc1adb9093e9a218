from __future__ import annotations

import pytest

from streams.board import formatting


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "-"),
        (float("nan"), "-"),
        (0.0, "0"),
        (12.0, "12"),
        (12.5, "12.5"),
        (18_000.0, "18,000"),
        (99_999.0, "99,999"),
        (184_200.0, "184k"),
        (1_234_000.0, "1.23M"),
        (-1_500.0, "-1,500"),
    ],
)
def test_count(value: float | None, text: str) -> None:
    assert formatting.count(value) == text


@pytest.mark.parametrize(
    ("value", "currency", "text"),
    [
        (47.125, "EUR", "€47.1"),
        (18_000.0, "EUR", "€18,000"),
        (1_340_000.0, "USD", "$1.34M"),
        (-900.0, "GBP", "-£900"),
        (1_200.0, "CHF", "CHF 1,200"),
        (None, "EUR", "-"),
    ],
)
def test_money(value: float | None, currency: str, text: str) -> None:
    assert formatting.money(value, currency) == text


def test_percent_and_change_in_points_with_arrows() -> None:
    assert formatting.percent(0.2345) == "23.4%"
    assert formatting.percent(None) == "-"
    assert formatting.change_points(0.5, 0.4) == "▲ 10.0 pts vs last week"
    assert formatting.change_points(0.3, 0.4) == "▼ 10.0 pts vs last week"
    assert formatting.change_points(0.4, 0.4) == "= 0.0 pts vs last week"
    assert formatting.change_points(0.4, None) == "no data from last week"


def test_ratio_of_has_no_value_without_a_denominator() -> None:
    assert formatting.ratio_of(3, 6) == 0.5
    assert formatting.ratio_of(3, 0) is None
    assert formatting.ratio_of(3, None) is None
    assert formatting.ratio_of(None, 6) is None
