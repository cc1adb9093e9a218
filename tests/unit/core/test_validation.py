"""streams.core.validation.validate_message: one raw message to an event or a rejection with a reason code."""

from __future__ import annotations

import json
from typing import Any

import pytest

from schemas.events import AnyEvent, CallLogged, EmailSent
from streams.core.validation import REASON_CODES, Rejection, validate_message
from tests.unit.schemas.contract_examples import ENVELOPE, MINIMAL

# 2026-03-02T09:30:00Z
OCCURRED = "2026-03-02T09:30:00Z"
OCCURRED_EPOCH = 1_772_443_800
NOW = OCCURRED_EPOCH + 3_600
MAX_BYTES = 2_048
TOLERANCE = 300


def email(**changes: Any) -> dict[str, Any]:
    data = {
        "event_id": "evt-1",
        "occurred_at": OCCURRED,
        "source": "crm",
        "type": "email.sent",
        "rep_id": "alice",
        "contact_id": "c-1",
        **changes,
    }
    return {key: value for key, value in data.items() if value is not ...}


def encode(data: Any) -> bytes:
    return json.dumps(data).encode()


def validate(raw: bytes | None, now: float = NOW) -> object:
    return validate_message(raw, max_bytes=MAX_BYTES, now=now, future_tolerance_seconds=TOLERANCE)


def test_reason_codes() -> None:
    assert sorted(REASON_CODES) == sorted(
        [
            "empty_message",
            "too_large",
            "future_timestamp",
            "too_old",
            "internal_type",
            "unknown_rep",
            "unknown_team",
            "unknown_currency",
            "invalid_field",
            "invalid_json",
            "not_an_object",
            "missing_type",
            "unknown_type",
            "missing_field",
            "unknown_field",
            "naive_timestamp",
            "out_of_range",
            "processing_error",
        ]
    )
    assert len(set(REASON_CODES)) == len(REASON_CODES)


def test_valid_message() -> None:
    event = validate(encode(email()))
    assert isinstance(event, EmailSent)
    assert event.event_id == "evt-1"


@pytest.mark.parametrize(
    ("raw", "reason", "mentions"),
    [
        (None, "empty_message", ["no value"]),
        (b"", "empty_message", ["no value"]),
        (b"x" * (MAX_BYTES + 1), "too_large", ["2049 bytes", "2048-byte limit"]),
        (b"{not json", "invalid_json", ["Invalid JSON"]),
        (b'{"event_id": "evt-1",', "invalid_json", ["Invalid JSON"]),
        (b"\xff\xfe", "invalid_json", ["Invalid JSON"]),
        (b"[1, 2]", "not_an_object", ["object"]),
        (b'"email.sent"', "not_an_object", ["object"]),
        (b"42", "not_an_object", ["object"]),
        (b"null", "not_an_object", ["object"]),
        (encode(email(type=...)), "missing_type", ["'type'"]),
        (encode(email(type="email.received")), "unknown_type", ["'email.received'", "kpimon schema"]),
        (encode(email(contact_id=...)), "missing_field", ["email.sent.contact_id", "Field required"]),
        (encode(email(rep_id=...)), "missing_field", ["email.sent.rep_id"]),
        (encode(email(colour="blue")), "unknown_field", ["email.sent.colour", "Extra inputs"]),
        (encode(email(occurred_at="2026-03-02T09:30:00")), "naive_timestamp", ["email.sent.occurred_at", "timezone"]),
        (
            encode(email(type="call.logged", contact_id=..., duration_seconds=-1, outcome="connected")),
            "out_of_range",
            ["call.logged.duration_seconds", "greater than or equal to 0"],
        ),
        (
            encode(email(type="survey.responded", rep_id=..., contact_id=..., kind="nps", score=11)),
            "out_of_range",
            ["survey.responded", "nps score must be between 0 and 10, got 11"],
        ),
        (
            encode(email(type="survey.responded", rep_id=..., contact_id=..., kind="csat", score=0)),
            "out_of_range",
            ["csat score must be between 1 and 5, got 0"],
        ),
        (
            encode(email(type="deal.won", contact_id=..., deal_id="d-1", amount=-3, currency="EUR")),
            "out_of_range",
            ["deal.won.amount"],
        ),
        (
            encode(email(occurred_at="2026-03-02T09:35:01Z")),  # 301 s ahead of now=OCCURRED_EPOCH
            "future_timestamp",
            ["occurred_at 2026-03-02T09:35:01+00:00", "301 s in the future", "tolerance 300 s"],
        ),
        (encode(email(contact_id=7)), "invalid_field", ["email.sent.contact_id", "valid string"]),
        (encode(email(team="emea|apac")), "invalid_field", ["email.sent.team", "pattern"]),
        (
            encode(
                email(type="web.session", rep_id=..., contact_id=..., visitor_id="v", pageviews="5", duration_seconds=1)
            ),
            "invalid_field",
            ["web.session.pageviews", "valid integer"],
        ),
        (encode(email(occurred_at="yesterday")), "invalid_field", ["email.sent.occurred_at"]),
    ],
)
def test_rejection_reason_and_detail(raw: bytes | None, reason: str, mentions: list[str]) -> None:
    now = OCCURRED_EPOCH if reason == "future_timestamp" else NOW
    outcome = validate(raw, now=now)
    assert isinstance(outcome, Rejection)
    assert outcome.reason == reason
    assert outcome.reason in REASON_CODES
    for text in mentions:
        assert text in outcome.detail


@pytest.mark.parametrize(
    ("ahead", "accepted"),
    [(-86_400 * 30, True), (0, True), (299, True), (300, True), (301, False)],
)
def test_future_tolerance_edge(ahead: int, accepted: bool) -> None:
    outcome = validate(encode(email()), now=OCCURRED_EPOCH - ahead)
    assert isinstance(outcome, EmailSent) is accepted
    if not accepted:
        assert outcome == Rejection(
            "future_timestamp",
            "occurred_at 2026-03-02T09:30:00+00:00 is 301 s in the future (tolerance 300 s): "
            "check the producer's clock",
        )


def test_size_limit_edge() -> None:
    message = encode(email())
    assert isinstance(validate_message(message, max_bytes=len(message), now=NOW, future_tolerance_seconds=0), EmailSent)
    assert validate_message(message, max_bytes=len(message) - 1, now=NOW, future_tolerance_seconds=0) == Rejection(
        "too_large", f"the message is {len(message)} bytes, over the {len(message) - 1}-byte limit"
    )


def test_detail_lists_three_problems_then_a_count() -> None:
    data = email(
        type="call.logged",
        contact_id=...,
        duration_seconds=-1,
        outcome="busy",
        colour="blue",
        size=3,
        event_id="",
    )
    outcome = validate(encode(data))
    assert isinstance(outcome, Rejection)
    parts = outcome.detail.split("; ")
    assert len(parts) == 4
    assert parts[-1] == "and 2 more"
    assert outcome.reason == "invalid_field"  # the first error decides: event_id too short


def test_first_error_decides_the_reason() -> None:
    outcome = validate(encode(email(contact_id=..., colour="blue")))
    assert isinstance(outcome, Rejection)
    assert outcome.reason == "missing_field"
    assert outcome.detail == "email.sent.contact_id: Field required; email.sent.colour: Extra inputs are not permitted"


def test_valid_call() -> None:
    data = email(type="call.logged", contact_id=..., duration_seconds=12, outcome="no_answer")
    event = validate(encode(data))
    assert isinstance(event, CallLogged)
    assert event.duration_seconds == 12.0


# -- currencies without a rate ------------------------------------------------------------------------------------

KNOWN = frozenset({"EUR", "USD"})
MONEY_TYPES = sorted(kind for kind, fields in MINIMAL.items() if "currency" in fields)


def example(kind: str, **changes: Any) -> bytes:
    return encode({**ENVELOPE, "type": kind, **MINIMAL[kind], **changes})


def validate_money(raw: bytes, known: frozenset[str] | None = KNOWN, now: float = NOW) -> AnyEvent | Rejection:
    return validate_message(
        raw, max_bytes=MAX_BYTES, now=now, future_tolerance_seconds=TOLERANCE, known_currencies=known
    )


def test_money_types_are_the_expected_ones() -> None:
    assert MONEY_TYPES == [
        "deal.won",
        "opportunity.created",
        "spend.recorded",
        "subscription.changed",
        "subscription.churned",
        "subscription.renewed",
        "subscription.started",
    ]


@pytest.mark.parametrize("kind", MONEY_TYPES)
def test_known_currency_is_accepted(kind: str) -> None:
    outcome = validate_money(example(kind, currency="USD"))
    assert not isinstance(outcome, Rejection)
    assert outcome.model_dump()["currency"] == "USD"


@pytest.mark.parametrize("kind", MONEY_TYPES)
def test_currency_without_a_rate_is_rejected(kind: str) -> None:
    assert validate_money(example(kind, currency="XYZ")) == Rejection(
        "unknown_currency",
        "currency 'XYZ' has no rate: add it under currency_rates in the config file, or fix the producer",
    )


def test_campaign_budget_currency_is_checked() -> None:
    budget = example("campaign.launched", budget=5000, currency="GBP")
    assert validate_money(budget) == Rejection(
        "unknown_currency",
        "currency 'GBP' has no rate: add it under currency_rates in the config file, or fix the producer",
    )
    assert not isinstance(validate_money(example("campaign.launched", budget=5000, currency="EUR")), Rejection)


def test_events_without_currency_need_no_rate() -> None:
    assert not isinstance(validate_money(example("campaign.launched")), Rejection)  # currency None
    assert isinstance(validate_money(encode(email()), known=frozenset()), EmailSent)


def test_currencies_are_not_checked_without_known_currencies() -> None:
    outcome = validate_money(example("deal.won", currency="XYZ"), known=None)
    assert not isinstance(outcome, Rejection)
    assert not isinstance(validate(example("deal.won", currency="XYZ")), Rejection)


def test_contract_errors_come_before_the_currency() -> None:
    lowercase = validate_money(example("deal.won", currency="xyz"))
    assert isinstance(lowercase, Rejection)
    assert lowercase.reason == "invalid_field"
    negative = validate_money(example("deal.won", currency="XYZ", amount=-1))
    assert isinstance(negative, Rejection)
    assert negative.reason == "out_of_range"


def test_future_timestamp_comes_before_the_currency() -> None:
    outcome = validate_money(example("deal.won", currency="XYZ"), now=OCCURRED_EPOCH - 301)
    assert isinstance(outcome, Rejection)
    assert outcome.reason == "future_timestamp"


# -- bounds: no accepted number can make a sum in the state overflow, no time breaks the window code --------


@pytest.mark.parametrize(
    ("kind", "changes"),
    [
        ("call.logged", {"duration_seconds": 1.7e308}),
        ("call.logged", {"duration_seconds": 86_400.5}),
        ("web.session", {"pageviews": 2**64 - 1}),
        ("web.session", {"duration_seconds": 1e300}),
        ("email_campaign.sent", {"recipients": 100_000_001}),
        ("opportunity.created", {"amount": "1000000000000.01"}),
        ("spend.recorded", {"amount": "1000000000001"}),
        ("call.logged", {"occurred_at": "0001-01-01T00:00:00+14:00"}),
        ("call.logged", {"occurred_at": "9999-12-31T23:59:59-12:00"}),
        ("deal.won", {"opened_at": "0001-01-01T00:00:00Z"}),
    ],
)
def test_numbers_and_times_beyond_their_bounds_are_out_of_range(kind: str, changes: dict[str, Any]) -> None:
    rejection = validate_message(example(kind, **changes), max_bytes=MAX_BYTES, now=9e9, future_tolerance_seconds=9e9)
    assert isinstance(rejection, Rejection) and rejection.reason == "out_of_range", rejection


@pytest.mark.parametrize(
    ("kind", "changes"),
    [
        ("call.logged", {"duration_seconds": 86_400}),
        ("web.session", {"pageviews": 100_000_000}),
        ("opportunity.created", {"amount": "1000000000000"}),
    ],
)
def test_the_bounds_themselves_are_accepted(kind: str, changes: dict[str, Any]) -> None:
    assert not isinstance(validate(example(kind, **changes)), Rejection)


@pytest.mark.parametrize("kind", ["lead.converted", "lead.deal_closed", "contact.lead_updated"])
def test_internal_types_only_from_the_rekeyed_topic(kind: str) -> None:
    rejection = validate(example(kind))
    assert isinstance(rejection, Rejection) and rejection.reason == "internal_type"
    accepted = validate_message(
        example(kind), max_bytes=MAX_BYTES, now=NOW, future_tolerance_seconds=TOLERANCE, internal_allowed=True
    )
    assert accepted.type == kind  # type: ignore[union-attr]


@pytest.mark.parametrize(("days_old", "accepted"), [(99.9, True), (100.1, False)])
def test_past_horizon(days_old: float, accepted: bool) -> None:
    raw = encode(email())
    outcome = validate_message(
        raw,
        max_bytes=MAX_BYTES,
        now=OCCURRED_EPOCH + days_old * 86_400,
        future_tolerance_seconds=0,
        past_horizon_seconds=100 * 86_400,
    )
    assert isinstance(outcome, EmailSent) is accepted
    if not accepted:
        assert isinstance(outcome, Rejection) and outcome.reason == "too_old" and "100 days" in outcome.detail
