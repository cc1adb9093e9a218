"""The least each event type needs: a minimal valid payload per type, shared by the contract tests."""

from typing import Any

ENVELOPE = {"event_id": "evt-1", "occurred_at": "2026-03-02T09:30:00Z", "source": "crm"}

# The least each type needs on top of the envelope (event_id, occurred_at, source); `rep_id` is
# required for the events a rep does. Every field listed here is required: removing any one is rejected
# (a subscription's `mrr` as `price_missing`: `amount` with `billing_period` may take its place).
MINIMAL: dict[str, dict[str, Any]] = {
    "call.logged": {"rep_id": "alice", "duration_seconds": 95.5, "outcome": "connected"},
    "email.sent": {"rep_id": "alice", "contact_id": "c-1"},
    "email.replied": {"rep_id": "alice", "contact_id": "c-1"},
    "meeting.booked": {"rep_id": "alice", "meeting_id": "m-1"},
    "meeting.held": {"rep_id": "alice", "meeting_id": "m-1"},
    "demo.completed": {"rep_id": "alice"},
    "lead.created": {"lead_id": "l-1"},
    "lead.qualified": {"lead_id": "l-1", "stage": "mql"},
    "lead.converted": {"lead_id": "l-1", "stage": "customer", "deal_id": "d-1"},
    "lead.deal_closed": {
        "lead_id": "l-1",
        "deal": {
            "deal_id": "d-1",
            "lead": {"value": "l-1", "at": 1772443800, "event_id": "e-1"},
            "outcome": "won",
            "at": 1772443800,
            "event_id": "e-2",
            "amount": 1200.5,
        },
    },
    "contact.lead_updated": {"contact_id": "c-1", "lead_id": "l-1"},
    "opportunity.created": {"deal_id": "d-1", "amount": 12000, "currency": "EUR"},
    "opportunity.stage_changed": {"deal_id": "d-1", "from_stage": "discovery", "to_stage": "proposal"},
    "deal.won": {"deal_id": "d-1", "amount": 12000.5, "currency": "USD"},
    "deal.lost": {"deal_id": "d-1", "reason": "went with a competitor"},
    "subscription.started": {"account_id": "a-1", "mrr": 99, "currency": "EUR"},
    "subscription.renewed": {"account_id": "a-1", "mrr": 99, "currency": "EUR"},
    "subscription.changed": {"account_id": "a-1", "mrr": 149, "currency": "EUR"},
    "subscription.churned": {"account_id": "a-1", "currency": "EUR"},
    "survey.responded": {"kind": "nps", "score": 9},
    "campaign.launched": {"campaign_id": "cmp-1", "channel": "paid_search"},
    "content.published": {"channel": "blog", "content_id": "post-1"},
    "social.posted": {"channel": "linkedin", "content_id": "post-2"},
    "email_campaign.sent": {"campaign_id": "cmp-1", "recipients": 2500},
    "email.opened": {"campaign_id": "cmp-1", "contact_id": "c-1"},
    "email.clicked": {"campaign_id": "cmp-1", "contact_id": "c-1"},
    "email.bounced": {"campaign_id": "cmp-1", "contact_id": "c-1"},
    "email.unsubscribed": {"campaign_id": "cmp-1", "contact_id": "c-1"},
    "spend.recorded": {"channel": "paid_social", "amount": 250.75, "currency": "GBP"},
    "web.session": {"visitor_id": "v-1", "pageviews": 3, "duration_seconds": 42},
}
