"""tests.reference.offline_campaigns: the per-campaign offline computation, checked by hand on a few events."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from tests.reference.offline_campaigns import CAMPAIGNS, campaign_events, campaign_funnel_by_month

NEW_YORK = ZoneInfo("America/New_York")


def event(event_id: str, kind: str, occurred_at: str, **fields: Any) -> dict[str, Any]:
    return {"event_id": event_id, "type": kind, "occurred_at": occurred_at, "source": "test", **fields}


EVENTS = [
    # lead a: campaign c1, created on 1 Feb 02:00 UTC = 31 Jan in New York; MQL twice (the first counts)
    event("a1", "lead.created", "2026-02-01T02:00:00Z", lead_id="a", campaign_id="c1"),
    event("a2", "lead.qualified", "2026-02-03T00:00:00Z", lead_id="a", stage="mql"),
    event("a3", "lead.qualified", "2026-03-03T00:00:00Z", lead_id="a", stage="mql"),
    event("a2", "lead.qualified", "2026-02-03T00:00:00Z", lead_id="a", stage="mql"),  # a copy
    # lead b: no campaign, counted nowhere, nor its deal's cohort
    event("b1", "lead.created", "2026-02-10T12:00:00Z", lead_id="b"),
    # deal x of lead a: created in c1, won in February naming c2: all of it counts in c2
    event(
        "x1",
        "opportunity.created",
        "2026-02-05T12:00:00Z",
        deal_id="x",
        lead_id="a",
        amount="100.10",
        currency="USD",
        campaign_id="c1",
    ),
    event("x2", "deal.won", "2026-02-07T12:00:00Z", deal_id="x", amount="90.05", currency="USD", campaign_id="c2"),
    # deal y: names no campaign, though its lead has one: counted nowhere
    event("y1", "opportunity.created", "2026-02-05T12:00:00Z", deal_id="y", lead_id="a", amount="5", currency="USD"),
    # deal z: c1, lost then won again: one win
    event(
        "z1", "opportunity.created", "2026-02-06T00:00:00Z", deal_id="z", amount="10", currency="USD", campaign_id="c1"
    ),
    event("z2", "deal.lost", "2026-02-08T00:00:00Z", deal_id="z", reason="price"),
    event("z3", "deal.won", "2026-02-09T00:00:00Z", deal_id="z", amount="20", currency="USD"),
    # deal w: c1, lost
    event(
        "w1", "opportunity.created", "2026-02-06T00:00:00Z", deal_id="w", amount="10", currency="USD", campaign_id="c1"
    ),
    event("w2", "deal.lost", "2026-02-08T00:00:00Z", deal_id="w", reason="price"),
    event("m1", "campaign.launched", "2026-02-01T04:59:59Z", campaign_id="c1", channel="paid_search"),
    event("m2", "email_campaign.sent", "2026-02-01T05:00:00Z", campaign_id="c1", recipients=250),
    event(
        "m3", "web.session", "2026-02-01T05:00:00Z", visitor_id="v", pageviews=1, duration_seconds=1, campaign_id="c3"
    ),
]


def test_hand_computed_months() -> None:
    result = campaign_funnel_by_month(EVENTS, NEW_YORK)
    assert set(result) == {("c1", "2026-01"), ("c1", "2026-02"), ("c2", "2026-02")}
    january, february, c2 = result["c1", "2026-01"], result["c1", "2026-02"], result["c2", "2026-02"]
    assert (january["leads"], january["cohort_opportunities"], january["cohort_customers"]) == (1, 1, 1)
    assert january["campaigns_launched"] == 1  # 23:59:59 on 31 January in New York
    assert january["mqls"] == 0 and january["lead_to_mql"] == 0.0
    assert february["mqls"] == 1 and february["email_campaign_sends"] == 250
    assert (february["opportunities_created"], february["deals_won"], february["deals_lost"]) == (2, 1, 1)
    assert february["revenue"] == Decimal(20) and february["win_rate"] == 0.5
    assert february["sales_cycle"] == 3 * 86400 and february["lead_to_mql"] is None
    assert (c2["opportunities_created"], c2["deals_won"], c2["revenue"]) == (1, 1, Decimal("90.05"))
    assert c2["average_deal_size"] == 90.05 and c2["sales_cycle"] == 2 * 86400 and c2["leads"] == 0


def test_the_generated_events_are_deterministic_and_name_each_campaign() -> None:
    funnel, marketing = campaign_events(seed=3, leads=50)
    assert (funnel, marketing) == campaign_events(seed=3, leads=50)
    assert funnel != campaign_events(seed=4, leads=50)[0]
    ids = [item["event_id"] for item in [*funnel, *marketing]]
    assert len(ids) == len(set(ids))
    named = {item.get("campaign_id") for item in funnel if item["type"] == "lead.created"}
    assert named == {*CAMPAIGNS, None}
    result = campaign_funnel_by_month([*funnel, *marketing], NEW_YORK)
    assert {campaign for campaign, _ in result} == set(CAMPAIGNS)  # web-only has no KPI: no month
