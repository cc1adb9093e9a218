"""The offline email and attribution computation itself, on a hand-computed case: the integration test's truth."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from tests.reference.offline_email_attribution import email_and_attribution_totals, marketing_events

T0 = 1_700_000_000


def ev(event_id: str, kind: str, at: int, **fields: Any) -> dict[str, Any]:
    occurred = f"2023-11-14T22:{(at - T0) // 60:02d}:{(at - T0) % 60:02d}Z"
    return {"event_id": event_id, "type": kind, "occurred_at": occurred, "source": "test", **fields}


EVENTS = [
    ev("s", "email_campaign.sent", T0 + 5, campaign_id="news", recipients=10),
    ev("b", "email.bounced", T0 + 6, campaign_id="news", contact_id="x"),
    ev("o1", "email.opened", T0 + 7, campaign_id="news", contact_id="p"),
    ev("o2", "email.opened", T0 + 8, campaign_id="news", contact_id="p"),
    ev("k1", "email.clicked", T0 + 60, campaign_id="news", contact_id="p"),  # touch 2: email / news
    ev("k2", "email.clicked", T0 + 70, campaign_id="news", contact_id="q"),  # an implied open
    ev("w1", "web.session", T0 + 20, contact_id="p", channel="paid_search", visitor_id="v", pageviews=1,
       duration_seconds=1),  # touch 1
    ev("w2", "web.session", T0 + 90, contact_id="p", visitor_id="v", pageviews=1, duration_seconds=1, bot=True),
    ev("lc", "lead.created", T0 + 120, lead_id="l1", contact_id="p", channel="social"),  # touch 3
    ev("oc", "opportunity.created", T0 + 180, deal_id="d1", lead_id="l1", amount="10", currency="USD"),
    ev("dw", "deal.won", T0 + 240, deal_id="d1", amount="900", currency="USD"),
    ev("d2", "deal.won", T0 + 300, deal_id="d2", amount="50", currency="USD", channel="events"),  # no lead
    ev("sp", "spend.recorded", T0 + 400, channel="email", campaign_id="news", amount="200", currency="USD"),
]  # fmt: skip


def test_hand_computed_totals() -> None:
    totals = email_and_attribution_totals([*EVENTS, EVENTS[3]])  # a copy counts once
    news = totals[("campaign", "news")]
    assert {name: news[name] for name in ("email_campaign_sends", "email_bounces", "email_unique_opens")} == {
        "email_campaign_sends": 10,
        "email_bounces": 1,
        "email_unique_opens": 2,  # p, and q's implied open
    }
    assert (news["email_unique_clicks"], news["email_leads"], news["email_deliveries"]) == (2, 1, 9)
    assert (news["email_open_rate"], news["email_click_to_open_rate"], news["email_conversion_rate"]) == (
        Fraction(2, 9),
        Fraction(1),
        Fraction(1, 2),
    )
    # d1: 900 over paid search (first), the newsletter click, the lead's creation on social (last); d2: its own
    assert totals[("channel", "paid_search")]["attributed_revenue_first"] == 900
    assert totals[("channel", "social")]["attributed_revenue_last"] == 900
    assert totals[("campaign", "news")]["attributed_revenue_linear"] == 300
    assert totals[("channel", "events")]["attributed_revenue_linear"] == 50
    overall = totals[("all", "")]
    assert overall["revenue"] == overall["attributed_revenue_first"] == overall["attributed_revenue_linear"] == 950
    assert news["romi"] == Fraction(300 - 200, 200)


def test_the_generated_events_are_deterministic() -> None:
    first, again = marketing_events(seed=3, end=T0), marketing_events(seed=3, end=T0)
    assert first == again
    assert len({event["event_id"] for event in first}) == len(first)
    assert {event["type"] for event in first} >= {
        "email.opened",
        "email.clicked",
        "deal.won",
        "deal.lost",
        "web.session",
    }
