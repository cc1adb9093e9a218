"""Spend and web traffic KPIs: every formula on hand-computed counters, and from events through the pure core."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from schemas.catalog import load_catalog
from schemas.config import KpimonConfig
from schemas.events import parse_event
from schemas.scopes import Scope
from streams.core.folding import fold_batch
from streams.core.money import to_reporting_currency
from streams.core.records import Accepted, Position, Record
from streams.entities.registry import apply_entity_events
from streams.readout.kpis import kpi_samples, window_totals

CATALOG = load_catalog()
COUNTERS = {
    "marketing_spend": 1200.0,
    "sales_spend": 800.0,
    "leads": 8,
    "mqls": 3,
    "deals_won": 2,
    "web_sessions": 4,
    "web_pageviews": 10,
    "web_session_seconds": 250.0,
    "web_bounced_sessions": 1,
    "web_bot_sessions": 5,
}


@pytest.mark.parametrize(
    ("kpi", "value"),
    [
        ("marketing_spend", 1200.0),
        ("sales_spend", 800.0),
        ("cost_per_lead", 150.0),  # 1200 / 8
        ("cost_per_mql", 400.0),  # 1200 / 3
        ("customer_acquisition_cost", 1000.0),  # (1200 + 800) / 2
        ("web_sessions", 4.0),
        ("web_pageviews", 10.0),
        ("pages_per_session", 2.5),  # 10 / 4
        ("average_session_duration", 62.5),  # 250 / 4
        ("web_session_duration_total", 250.0),
        ("web_bounce_rate", 0.25),  # 1 / 4
        ("web_bounced_sessions", 1.0),
        ("web_bot_sessions", 5.0),
    ],
)
def test_formula_values(kpi: str, value: float) -> None:
    assert CATALOG.kpi(kpi).formula.evaluate(COUNTERS) == value


@pytest.mark.parametrize(
    ("kpi", "zeroed"),
    [
        ("cost_per_lead", "leads"),
        ("cost_per_mql", "mqls"),
        ("customer_acquisition_cost", "deals_won"),
        ("pages_per_session", "web_sessions"),
        ("average_session_duration", "web_sessions"),
        ("web_bounce_rate", "web_sessions"),
    ],
)
def test_a_zero_denominator_gives_no_value(kpi: str, zeroed: str) -> None:
    assert CATALOG.kpi(kpi).formula.evaluate(COUNTERS | {zeroed: 0}) is None


def test_spend_without_leads_is_a_spend_and_no_cost_per_lead() -> None:
    counters = {"marketing_spend": 500.0}
    assert CATALOG.kpi("marketing_spend").formula.evaluate(counters) == 500.0
    assert CATALOG.kpi("cost_per_lead").formula.evaluate(counters) is None
    assert CATALOG.kpi("customer_acquisition_cost").formula.evaluate({"sales_spend": 10.0, "deals_won": 4}) == 2.5


# -- from events: spend with a correction that comes first and copies, sessions with bots, leads and wins -------------

NOW = 1_700_000_000  # 2023-11-14T22:13:20Z
CONFIG = KpimonConfig(timezone="UTC", currency_rates={"EUR": "1.1"})  # type: ignore[dict-item]
ALL, SEARCH, SOCIAL, UNKNOWN = Scope(), Scope(channel="paid_search"), Scope(channel="social"), Scope(channel="unknown")
BRAND = Scope(campaign="brand")


def event(event_id: str, event_type: str, minutes_ago: float, **fields: Any) -> dict[str, Any]:
    occurred_at = datetime.fromtimestamp(NOW - minutes_ago * 60, UTC).isoformat()
    return {"event_id": event_id, "type": event_type, "occurred_at": occurred_at, "source": "test", **fields}


def spend(event_id: str, minutes_ago: float, amount: str, **fields: Any) -> dict[str, Any]:
    return event(event_id, "spend.recorded", minutes_ago, amount=amount, **({"currency": "USD"} | fields))


def session(event_id: str, minutes_ago: float, pageviews: int, seconds: float, **fields: Any) -> dict[str, Any]:
    visit = {"visitor_id": f"v-{event_id}", "pageviews": pageviews, "duration_seconds": seconds}
    return event(event_id, "web.session", minutes_ago, **visit, **fields)


EVENTS = [
    # spend: s1 corrected twice (the correction first, then a copy of it), s2 in EUR, s3 sales spend
    spend("s1-fix", 10, "300", channel="paid_search", campaign_id="brand", replaces="s1"),
    spend("s1", 30, "500", channel="paid_search", campaign_id="brand"),
    spend("s1-fix", 10, "300", channel="paid_search", campaign_id="brand", replaces="s1"),
    spend("s1-fix2", 5, "400", channel="paid_search", campaign_id="brand", replaces="s1"),
    spend("s2", 20, "100", channel="social", currency="EUR"),  # 110 in the reporting currency
    spend("s3", 20, "1000", channel="paid_search", kind="sales"),
    # sessions: bots count in web_bot_sessions only; no channel: "unknown"
    session("w1", 15, 3, 120, channel="paid_search", campaign_id="brand"),
    session("w2", 14, 1, 10, channel="paid_search", campaign_id="brand"),
    session("w3", 13, 5, 300, channel="paid_search"),
    session("w4", 12, 1, 5, channel="social"),
    session("w5", 11, 2, 65),
    session("b1", 10, 40, 3, channel="paid_search", campaign_id="brand", bot=True),
    session("b2", 9, 1, 1, bot=True),
    # leads, MQLs and a won deal
    event("l1", "lead.created", 40, lead_id="l1", channel="paid_search", campaign_id="brand"),
    event("l2", "lead.created", 40, lead_id="l2", channel="paid_search", campaign_id="brand"),
    event("l3", "lead.created", 40, lead_id="l3", channel="paid_search"),
    event("l4", "lead.created", 40, lead_id="l4", channel="social"),
    event("q1", "lead.qualified", 35, lead_id="l1", stage="mql"),
    event("q4", "lead.qualified", 35, lead_id="l4", stage="mql"),
    event("d1", "deal.won", 3, deal_id="d1", amount="9000", currency="USD", channel="paid_search", campaign_id="brand"),
]


def samples() -> dict[tuple[str, Scope], float]:
    records: list[Record] = []
    for offset, data in enumerate(EVENTS):
        records.append(Accepted(Position("marketing", 0, offset), parse_event(orjson.dumps(data))))
    update = apply_entity_events(
        [r for r in records if isinstance(r, Accepted)],
        {},
        lambda amount, currency: to_reporting_currency(amount, currency, CONFIG),
    )
    folded = fold_batch(records, update.duplicates, groups={}, progress={}, config=CONFIG, entity_facts=update.facts)
    totals = window_totals(folded.groups.items(), NOW, CONFIG)
    return {(s.kpi.id, s.scope): s.value for s in kpi_samples(CATALOG, totals) if s.window == "1h"}


@pytest.mark.parametrize(
    ("kpi", "scope", "value"),
    [
        ("marketing_spend", ALL, 510.0),  # s1 at its latest (400) + s2 (100 EUR = 110)
        ("marketing_spend", SEARCH, 400.0),
        ("marketing_spend", BRAND, 400.0),
        ("marketing_spend", SOCIAL, 110.0),
        ("sales_spend", ALL, 1000.0),
        ("sales_spend", SEARCH, 1000.0),
        ("cost_per_lead", ALL, 510 / 4),
        ("cost_per_lead", SEARCH, 400 / 3),
        ("cost_per_lead", BRAND, 200.0),  # 400 / 2
        ("cost_per_lead", SOCIAL, 110.0),
        ("cost_per_mql", ALL, 255.0),  # 510 / 2
        ("cost_per_mql", SEARCH, 400.0),
        ("cost_per_mql", BRAND, 400.0),
        ("customer_acquisition_cost", ALL, 1510.0),  # (510 + 1000) / 1
        ("customer_acquisition_cost", SEARCH, 1400.0),
        ("customer_acquisition_cost", BRAND, 400.0),  # the sales spend names no campaign
        ("web_sessions", ALL, 5.0),
        ("web_sessions", SEARCH, 3.0),
        ("web_sessions", BRAND, 2.0),
        ("web_sessions", SOCIAL, 1.0),
        ("web_sessions", UNKNOWN, 1.0),  # the channels add up to all: 3 + 1 + 1
        ("web_pageviews", ALL, 12.0),
        ("pages_per_session", ALL, 2.4),
        ("pages_per_session", BRAND, 2.0),
        ("average_session_duration", ALL, 100.0),  # 500 / 5
        ("average_session_duration", SEARCH, 430 / 3),
        ("web_bounce_rate", ALL, 0.4),  # w2 and w4
        ("web_bounce_rate", SEARCH, 1 / 3),
        ("web_bounce_rate", SOCIAL, 1.0),
        ("web_bounce_rate", UNKNOWN, 0.0),
        ("web_bot_sessions", ALL, 2.0),
        ("web_bot_sessions", BRAND, 1.0),
        ("web_bot_sessions", UNKNOWN, 1.0),
    ],
)
def test_kpis_from_events(kpi: str, scope: Scope, value: float) -> None:
    assert samples()[kpi, scope] == pytest.approx(value, rel=1e-12)


def test_spend_kpis_are_not_kept_per_team_or_rep() -> None:
    kinds = {scope.kind for (kpi, scope) in samples() if kpi in {"marketing_spend", "cost_per_lead", "web_sessions"}}
    assert kinds == {"all", "channel", "campaign"}


def test_no_cost_per_mql_where_no_lead_became_an_mql() -> None:
    assert ("cost_per_mql", SOCIAL) in samples()
    assert ("cost_per_mql", UNKNOWN) not in samples()  # no spend, no MQL: no value
    assert ("customer_acquisition_cost", SOCIAL) not in samples()  # no deal won under social
