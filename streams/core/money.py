"""Money in the reporting currency, at the config file's rates. Pure."""

from __future__ import annotations

from decimal import Context, Decimal

from schemas.config import KpimonConfig


class UnknownCurrency(ValueError):
    """A currency with no rate in the config file: never converted at a guessed rate."""

    def __init__(self, currency: str, reporting_currency: str) -> None:
        super().__init__(
            f"currency {currency!r} has no rate to {reporting_currency}: add it under currency_rates in the config file"
        )
        self.currency = currency


def to_reporting_currency(amount: Decimal, currency: str, config: KpimonConfig) -> float:
    """``amount`` of ``currency`` in the reporting currency: the product is exact, only the result is a float."""
    rate = config.rate_of(currency)
    if rate is None:
        raise UnknownCurrency(currency, config.reporting_currency)
    # enough digits for every digit of the product, so the default 28-digit context never rounds it
    exact = Context(prec=len(amount.as_tuple().digits) + len(rate.as_tuple().digits))
    return float(exact.multiply(amount, rate))
