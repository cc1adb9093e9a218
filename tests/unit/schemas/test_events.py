"""schemas.events: the producer contract, one minimal valid payload per event type."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.events import EVENT_MODELS, EVENT_TYPES, event_json_schema, parse_event
from tests.unit.schemas.contract_examples import ENVELOPE, MINIMAL

MODEL_NAMES = {
    "call.logged": "CallLogged",
    "email.sent": "EmailSent",
    "email.replied": "EmailReplied",
    "meeting.booked": "MeetingBooked",
    "meeting.held": "MeetingHeld",
    "demo.completed": "DemoCompleted",
    "lead.created": "LeadCreated",
    "lead.qualified": "LeadQualified",
    "lead.converted": "LeadConverted",
    "lead.deal_closed": "LeadDealClosed",
    "contact.lead_updated": "ContactLeadUpdated",
    "opportunity.created": "OpportunityCreated",
    "opportunity.stage_changed": "OpportunityStageChanged",
    "deal.won": "DealWon",
    "deal.lost": "DealLost",
    "subscription.started": "SubscriptionStarted",
    "subscription.renewed": "SubscriptionRenewed",
    "subscription.changed": "SubscriptionChanged",
    "subscription.churned": "SubscriptionChurned",
    "survey.responded": "SurveyResponded",
    "campaign.launched": "CampaignLaunched",
    "content.published": "ContentPublished",
    "social.posted": "SocialPosted",
    "email_campaign.sent": "EmailCampaignSent",
    "email.opened": "EmailOpened",
    "email.clicked": "EmailClicked",
    "email.bounced": "EmailBounced",
    "email.unsubscribed": "EmailUnsubscribed",
    "spend.recorded": "SpendRecorded",
    "web.session": "WebSession",
}


def payload(event_type: str, **changes: Any) -> dict[str, Any]:
    data = {**ENVELOPE, "type": event_type, **MINIMAL[event_type], **changes}
    return {key: value for key, value in data.items() if value is not ...}


def raw(data: Any) -> bytes:
    return json.dumps(data).encode()


def error_types(data: Any) -> list[str]:
    with pytest.raises(ValidationError) as info:
        parse_event(raw(data))
    return [error["type"] for error in info.value.errors()]


def test_there_are_30_event_types() -> None:
    assert len(EVENT_TYPES) == 30
    assert set(EVENT_TYPES) == set(MINIMAL) == set(MODEL_NAMES)
    assert len(EVENT_MODELS) == 30


@pytest.mark.parametrize("event_type", list(MINIMAL))
def test_minimal_payload_parses(event_type: str) -> None:
    event = parse_event(raw(payload(event_type)))
    assert type(event).__name__ == MODEL_NAMES[event_type]
    assert event.type == event_type
    assert event.event_id == "evt-1"
    assert event.occurred_at == datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    assert event.source == "crm"
    assert event.attributes == {}
    assert event.team is None
    if "rep_id" not in MINIMAL[event_type]:
        assert event.rep_id is None


@pytest.mark.parametrize(
    ("event_type", "field"),
    [(event_type, field) for event_type, fields in MINIMAL.items() for field in [*ENVELOPE, *fields]],
)
def test_every_minimal_field_is_required(event_type: str, field: str) -> None:
    price = event_type.startswith("subscription.") and field == "mrr"
    assert error_types(payload(event_type, **{field: ...})) == ["price_missing" if price else "missing"]


def test_parsed_values() -> None:
    deal = parse_event(raw(payload("deal.won", amount=12000.5)))
    assert deal.amount == Decimal("12000.5")  # type: ignore[union-attr]
    call = parse_event(raw(payload("call.logged", duration_seconds=60)))
    assert call.duration_seconds == 60.0  # type: ignore[union-attr]
    assert isinstance(call.duration_seconds, float)  # type: ignore[union-attr]
    offset = parse_event(raw(payload("email.sent", occurred_at="2026-03-02T15:00:00+05:30")))
    assert offset.occurred_at == datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    assert offset.occurred_at.utcoffset() == timedelta(hours=5, minutes=30)


@pytest.mark.parametrize(
    ("event_type", "changes"),
    [
        ("email.sent", {"team": "emea", "attributes": {"any": ["thing", 1, None]}}),
        ("lead.created", {"team": "emea", "rep_id": "alice", "channel": "web", "campaign_id": "cmp-1"}),
        ("demo.completed", {"deal_id": "d-1"}),
        ("deal.won", {"opened_at": "2026-01-02T10:00:00-05:00"}),
        ("survey.responded", {"kind": "nps", "score": 0}),
        ("survey.responded", {"kind": "nps", "score": 10}),
        ("survey.responded", {"kind": "csat", "score": 1}),
        ("survey.responded", {"kind": "csat", "score": 5}),
        ("survey.responded", {"kind": "ces", "score": 7}),
        ("campaign.launched", {"budget": 5000, "currency": "EUR"}),
        ("campaign.launched", {"currency": "EUR"}),  # a currency alone is harmless
        ("call.logged", {"duration_seconds": 0, "outcome": "voicemail"}),
        ("email_campaign.sent", {"recipients": 0}),
        ("deal.won", {"amount": "12000.50"}),  # decimals may come as strings (exact)
        ("deal.won", {"amount": 0}),
        ("deal.won", {"amount": 0.000001}),
        ("spend.recorded", {"campaign_id": "cmp-9"}),
        ("web.session", {"channel": "organic", "campaign_id": "cmp-1"}),
        ("email.sent", {"occurred_at": "2026-03-02T09:30:00.123456+00:00"}),
        ("email.sent", {"rep_id": "alice.smith@example.com"}),
        ("email.sent", {"event_id": "x" * 200}),
    ],
)
def test_valid_variants(event_type: str, changes: dict[str, Any]) -> None:
    assert parse_event(raw(payload(event_type, **changes))).type == event_type


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (payload("email.sent", occurred_at="2026-03-02T09:30:00"), ["timezone_aware"]),
        (payload("email.sent", occurred_at="2026-03-02"), ["datetime_parsing"]),
        (payload("email.sent", occurred_at=1_772_443_800), ["datetime_type"]),  # strict: no epoch numbers
        (payload("call.logged", duration_seconds=-1), ["greater_than_equal"]),
        (payload("web.session", duration_seconds=-0.5), ["greater_than_equal"]),
        (payload("deal.won", amount=-0.01), ["greater_than_equal"]),
        (payload("subscription.started", mrr=-5), ["greater_than_equal"]),
        (payload("subscription.started", amount=120, billing_period="year"), ["price_twice"]),
        (payload("subscription.changed", mrr=..., amount=120, billing_period="week"), ["literal_error"]),
        (payload("subscription.renewed", seats=0), ["greater_than_equal"]),
        (payload("survey.responded", channel="in app!"), ["string_pattern_mismatch"]),
        (payload("deal.won", amount=0.0000001), ["decimal_max_places"]),
        (payload("deal.won", currency="eur"), ["string_pattern_mismatch"]),
        (payload("deal.won", currency="EURO"), ["string_pattern_mismatch"]),
        (payload("email.sent", colour="blue"), ["extra_forbidden"]),
        (payload("survey.responded", kind="nps", score=11), ["score_out_of_range"]),
        (payload("survey.responded", kind="nps", score=-1), ["score_out_of_range"]),
        (payload("survey.responded", kind="csat", score=0), ["score_out_of_range"]),
        (payload("survey.responded", kind="csat", score=6), ["score_out_of_range"]),
        (payload("survey.responded", kind="ces", score=8), ["score_out_of_range"]),
        (payload("survey.responded", kind="stars"), ["literal_error"]),
        (payload("campaign.launched", budget=5000), ["currency_missing"]),
        (payload("web.session", pageviews="5"), ["int_type"]),  # strict types
        (payload("web.session", pageviews=5.0), ["int_type"]),
        (payload("web.session", pageviews=True), ["int_type"]),
        (payload("email_campaign.sent", recipients=-1), ["greater_than_equal"]),
        (payload("survey.responded", score="9"), ["int_type"]),
        (payload("call.logged", duration_seconds="95"), ["float_type"]),
        (payload("call.logged", outcome="busy"), ["literal_error"]),
        (payload("lead.qualified", stage="opportunity"), ["literal_error"]),
        (payload("email.sent", event_id=17), ["string_type"]),
        (payload("email.sent", event_id=""), ["string_too_short"]),
        (payload("email.sent", event_id="x" * 201), ["string_too_long"]),
        (payload("email.sent", team="emea|apac"), ["string_pattern_mismatch"]),  # | separates scope keys
        (payload("email.sent", rep_id="alice\n"), ["string_pattern_mismatch"]),
        (payload("email.sent", source=""), ["string_too_short"]),
        (payload("email.sent", attributes=[1]), ["dict_type"]),
        (payload("deal.lost", reason="x" * 501), ["string_too_long"]),
        ({**payload("email.sent"), "type": "email.received"}, ["union_tag_invalid"]),
        ({key: value for key, value in payload("email.sent").items() if key != "type"}, ["union_tag_not_found"]),
        ([payload("email.sent")], ["dict_type"]),
    ],
)
def test_invalid_payloads(data: Any, expected: list[str]) -> None:
    assert error_types(data) == expected


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_rejected(value: str) -> None:
    text = raw(payload("call.logged")).replace(b"95.5", value.encode())
    with pytest.raises(ValidationError):
        parse_event(text)


def test_events_are_frozen() -> None:
    event = parse_event(raw(payload("email.sent")))
    with pytest.raises(ValidationError):
        event.event_id = "other"  # type: ignore[misc]


def test_an_aware_datetime_keeps_any_offset() -> None:
    event = parse_event(raw(payload("email.sent", occurred_at="2026-03-02T04:30:00-05:00")))
    assert event.occurred_at.tzinfo is not None
    assert event.occurred_at.astimezone(UTC) == datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def test_json_schema_lists_every_type() -> None:
    schema = event_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "kpimon event"
    assert set(schema["discriminator"]["mapping"]) == set(MINIMAL)
