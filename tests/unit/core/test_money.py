"""streams.core.money.to_reporting_currency: amounts at the config file's rates, exact until the final float."""

from __future__ import annotations

from decimal import Decimal

import pytest

from schemas.config import KpimonConfig
from streams.core.money import UnknownCurrency, to_reporting_currency

CONFIG = KpimonConfig(
    reporting_currency="EUR",
    currency_rates={"USD": Decimal("0.1"), "GBP": Decimal("3"), "BRL": Decimal("0.16"), "JPY": Decimal("0.006")},
)


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        # 3 * 0.1 in binary floats is 0.30000000000000004; in Decimal it is 0.3
        ("3", "USD", 0.3),
        ("0.1", "GBP", 0.3),
        ("0.3", "USD", 0.03),
        ("1000", "BRL", 160.0),  # 1000 * 0.16
        ("12345.67", "USD", 1234.567),
        ("150000", "JPY", 900.0),  # 150000 * 0.006
        ("0", "USD", 0.0),
        # the reporting currency itself: rate 1, the amount unchanged
        ("0.3", "EUR", 0.3),
        ("99999.999999", "EUR", 99999.999999),
    ],
)
def test_conversion(amount: str, currency: str, expected: float) -> None:
    assert to_reporting_currency(Decimal(amount), currency, CONFIG) == expected


def test_product_is_exact_beyond_the_default_decimal_precision() -> None:
    # 2 * 0.500000000000000166533453693773 = 1.000000000000000333066907387546 (31 digits), just below
    # 1 + 3 * 2**-53, the midpoint between the floats 1 + 2**-52 and 1 + 2**-51: the nearest float is 1 + 2**-52.
    # Rounded to Decimal's default 28 digits first (1.000000000000000333066907388, above the midpoint),
    # it would become 1 + 2**-51.
    config = KpimonConfig(currency_rates={"GBP": Decimal("0.500000000000000166533453693773")})
    assert to_reporting_currency(Decimal("2"), "GBP", config) == 1 + 2**-52


def test_default_config_knows_only_usd() -> None:
    assert to_reporting_currency(Decimal("0.1"), "USD", KpimonConfig()) == 0.1
    with pytest.raises(UnknownCurrency):
        to_reporting_currency(Decimal("0.1"), "EUR", KpimonConfig())


@pytest.mark.parametrize("currency", ["XYZ", "CHF", "usd", ""])
def test_unknown_currency_is_an_error(currency: str) -> None:
    with pytest.raises(UnknownCurrency) as info:
        to_reporting_currency(Decimal("1"), currency, CONFIG)
    assert isinstance(info.value, ValueError)
    assert info.value.currency == currency
    assert str(info.value) == (
        f"currency {currency!r} has no rate to EUR: add it under currency_rates in the config file"
    )
