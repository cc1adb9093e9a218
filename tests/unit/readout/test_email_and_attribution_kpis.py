"""Email and attribution KPIs: every formula on hand-computed counters, zero denominators, and the catalog's scopes."""

from __future__ import annotations

import pytest

from schemas.catalog import load_catalog

CATALOG = load_catalog()
# A campaign of 400 sends, 20 bounced (380 delivered), 95 unique opens (implied ones included), 19 unique clicks,
# 4 unsubscribes, 5 leads from clicks; linear attributed revenue 9000 against 6000 of marketing spend.
COUNTERS = {
    "email_campaign_sends": 400,
    "email_bounces": 20,
    "email_unique_opens": 95,
    "email_unique_clicks": 19,
    "email_unsubscribes": 4,
    "email_leads": 5,
    "attributed_revenue_first": 12000.0,
    "attributed_revenue_last": 3000.0,
    "attributed_revenue_linear": 9000.0,
    "marketing_spend": 6000.0,
}


@pytest.mark.parametrize(
    ("kpi", "value"),
    [
        ("email_unique_opens", 95.0),
        ("email_unique_clicks", 19.0),
        ("email_bounces", 20.0),
        ("email_unsubscribes", 4.0),
        ("email_deliveries", 380.0),  # 400 - 20
        ("email_delivery_rate", 0.95),  # 380 / 400
        ("email_open_rate", 0.25),  # 95 / 380
        ("email_click_through_rate", 0.05),  # 19 / 380
        ("email_click_to_open_rate", 0.2),  # 19 / 95
        ("email_bounce_rate", 0.05),  # 20 / 400
        ("email_unsubscribe_rate", 4 / 380),
        ("email_leads", 5.0),
        ("email_conversion_rate", 5 / 19),
        ("attributed_revenue_first", 12000.0),
        ("attributed_revenue_last", 3000.0),
        ("attributed_revenue_linear", 9000.0),
        ("romi", 0.5),  # (9000 - 6000) / 6000
    ],
)
def test_formula_values(kpi: str, value: float) -> None:
    assert CATALOG.kpi(kpi).formula.evaluate(COUNTERS) == pytest.approx(value, rel=1e-12)


def test_romi_is_negative_for_a_loss_and_minus_one_without_revenue() -> None:
    romi = CATALOG.kpi("romi").formula
    assert romi.evaluate({"attributed_revenue_linear": 1500.0, "marketing_spend": 6000.0}) == -0.75
    assert romi.evaluate({"marketing_spend": 6000.0}) == -1.0


@pytest.mark.parametrize(
    ("kpi", "zeroed"),
    [
        ("email_delivery_rate", {"email_campaign_sends": 0, "email_bounces": 0}),
        ("email_open_rate", {"email_campaign_sends": 20}),  # every send bounced: nothing delivered
        ("email_click_through_rate", {"email_campaign_sends": 20}),
        ("email_unsubscribe_rate", {"email_campaign_sends": 20}),
        ("email_click_to_open_rate", {"email_unique_opens": 0}),
        ("email_bounce_rate", {"email_campaign_sends": 0}),
        ("email_conversion_rate", {"email_unique_clicks": 0}),
        ("romi", {"marketing_spend": 0.0}),
    ],
)
def test_a_zero_denominator_gives_no_value(kpi: str, zeroed: dict[str, float]) -> None:
    assert CATALOG.kpi(kpi).formula.evaluate(COUNTERS | zeroed) is None


def test_counts_over_nothing_are_zero_and_deliveries_too() -> None:
    for kpi in ("email_unique_opens", "email_leads", "email_deliveries", "attributed_revenue_linear"):
        assert CATALOG.kpi(kpi).formula.evaluate({}) == 0


def test_opens_without_sends_count_and_can_exceed_the_deliveries() -> None:
    """Image proxies open every email; sends may come from a tool kpimon does not hear: rates above 1 are possible."""
    counters = {"email_campaign_sends": 10, "email_unique_opens": 12}
    assert CATALOG.kpi("email_open_rate").formula.evaluate(counters) == 1.2


@pytest.mark.parametrize(
    ("kpis", "scopes"),
    [
        (
            (
                "email_unique_opens",
                "email_unique_clicks",
                "email_bounces",
                "email_unsubscribes",
                "email_deliveries",
                "email_delivery_rate",
                "email_open_rate",
                "email_click_through_rate",
                "email_click_to_open_rate",
                "email_bounce_rate",
                "email_unsubscribe_rate",
                "email_leads",
                "email_conversion_rate",
            ),
            ("all", "campaign"),
        ),
        (
            ("attributed_revenue_first", "attributed_revenue_last", "attributed_revenue_linear", "romi"),
            ("all", "channel", "campaign"),
        ),
    ],
)
def test_scopes(kpis: tuple[str, ...], scopes: tuple[str, ...]) -> None:
    assert {CATALOG.kpi(kpi).scopes for kpi in kpis} == {scopes}


def test_every_ratio_is_named_as_one() -> None:
    for kpi in CATALOG.kpis:
        if (kpi.id.startswith("email_") and kpi.id.endswith("_rate")) or kpi.id == "romi":
            assert kpi.unit == "ratio" and kpi.metric.endswith("_ratio"), kpi.id
