"""Pydantic models of every event kpimon accepts (the producer contract).

One JSON object per Kafka message. ``type`` selects the model (a discriminated
union); every model is strict: numbers must be numbers, timestamps must carry
a UTC offset, amounts are non-negative decimals with an ISO 4217 currency code,
and unknown top-level fields are rejected (free-form data goes in
``attributes``).

Over 400 lines on purpose: the whole contract, every event type with its routing key, in
one module that producers in other languages read next to ``kpimon schema``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, get_args

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, model_validator
from pydantic_core import PydanticCustomError

Identifier = Annotated[str, Field(min_length=1, max_length=200)]
Label = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:@/ -]+$")]
# Every number has a bound, so that no sum of them can overflow a float or a 64-bit integer
# in the state (a sum of a billion maximal values stays finite and exact enough):
MAX_AMOUNT = Decimal("1000000000000")  # money: a trillion in any currency
MAX_SECONDS = 86_400  # a call or a web session: a day
MAX_COUNT = 100_000_000  # pageviews of a session, recipients of an email campaign
Money = Annotated[Decimal, Field(ge=0, le=MAX_AMOUNT, max_digits=20, decimal_places=6, allow_inf_nan=False)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
Seconds = Annotated[float, Field(ge=0, le=MAX_SECONDS, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]
EpochSeconds = Annotated[int, Field(ge=0, le=2**40)]  # internal events' times
# Times every window computation handles in every time zone (see also KPIMON_PAST_HORIZON_DAYS):
EARLIEST_TIME = datetime(1971, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(3000, 1, 1, tzinfo=UTC)
EventTime = Annotated[AwareDatetime, Field(ge=EARLIEST_TIME, lt=LATEST_TIME)]
BillingPeriod = Literal["month", "quarter", "year"]
MONTHS_PER_PERIOD: dict[str, int] = {"month": 1, "quarter": 3, "year": 12}
MAX_SEATS = 10_000_000
INTERNAL_TYPES = frozenset({"lead.converted", "lead.deal_closed", "contact.lead_updated"})
"""Types kpimon sends itself to its re-keyed topic; refused from the source topics (dead-letter ``internal_type``)."""


class Event(BaseModel):
    """The envelope every event shares."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    event_id: Identifier
    occurred_at: EventTime
    source: Label
    team: Label | None = None
    rep_id: Label | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)


class RepEvent(Event):
    """An event a sales rep did; the rep is required."""

    rep_id: Label


class CallLogged(RepEvent):
    type: Literal["call.logged"]
    duration_seconds: Seconds
    outcome: Literal["connected", "no_answer", "voicemail"]


class EmailSent(RepEvent):
    type: Literal["email.sent"]
    contact_id: Identifier


class EmailReplied(RepEvent):
    type: Literal["email.replied"]
    contact_id: Identifier


class MeetingBooked(RepEvent):
    type: Literal["meeting.booked"]
    meeting_id: Identifier


class MeetingHeld(RepEvent):
    type: Literal["meeting.held"]
    meeting_id: Identifier


class DemoCompleted(RepEvent):
    type: Literal["demo.completed"]
    deal_id: Identifier | None = None


class LeadCreated(Event):
    type: Literal["lead.created"]
    lead_id: Identifier
    channel: Label | None = None
    campaign_id: Identifier | None = None
    contact_id: Identifier | None = None  # the person, as email and web events name them; default: the lead_id


class LeadQualified(Event):
    type: Literal["lead.qualified"]
    lead_id: Identifier
    stage: Literal["mql", "sql"]


class LeadConverted(Event):
    """A lead became an opportunity or a customer through a deal.

    kpimon sends it itself (to the re-keyed topic, keyed by the lead) when a deal
    that names its lead is created or won; a CRM may send it too.
    """

    type: Literal["lead.converted"]
    lead_id: Identifier
    stage: Literal["opportunity", "customer"]
    deal_id: Identifier


class OpportunityCreated(Event):
    type: Literal["opportunity.created"]
    deal_id: Identifier
    lead_id: Identifier | None = None
    amount: Money
    currency: Currency
    channel: Label | None = None
    campaign_id: Identifier | None = None


class OpportunityStageChanged(Event):
    type: Literal["opportunity.stage_changed"]
    deal_id: Identifier
    from_stage: Label
    to_stage: Label


class DealWon(Event):
    """A deal won. With ``account_id`` it opens a subscription of that account (``billing_period``: what the
    amount pays for, a year unless given): kpimon sends ``subscription.started`` for subscription
    ``deal:<deal_id>`` at the deal's first win naming an account (streams/entities/accounts.py)."""

    type: Literal["deal.won"]
    deal_id: Identifier
    amount: Money
    currency: Currency
    opened_at: EventTime | None = None
    lead_id: Identifier | None = None
    channel: Label | None = None
    campaign_id: Identifier | None = None
    account_id: Identifier | None = None
    billing_period: BillingPeriod = "year"
    cost: Money | None = None  # what delivering the deal costs, in ``currency`` (its profit margin)


class DealLost(Event):
    type: Literal["deal.lost"]
    deal_id: Identifier
    reason: Annotated[str, Field(min_length=1, max_length=500)]


class SubscriptionEvent(Event):
    """A subscription of an account: its price now (``amount`` per ``billing_period``, or ``mrr``).

    ``mrr`` is the price per month, as the first contract had it; give ``mrr`` or ``amount``, not both.
    ``subscription_id`` defaults to the account (one subscription per account). ``cost`` is what serving
    it costs (for the gross margin), in ``currency``, per billing period (per month with ``mrr``).
    ``channel`` is where the customer came from. All events of one account are routed to it (``account:<account_id>``).
    """

    account_id: Identifier
    subscription_id: Identifier | None = None
    plan: Label | None = None
    seats: Annotated[int, Field(ge=1, le=MAX_SEATS)] | None = None
    amount: Money | None = None
    billing_period: BillingPeriod = "month"
    mrr: Money | None = None
    currency: Currency
    cost: Money | None = None
    channel: Label | None = None

    @model_validator(mode="after")
    def _one_price(self) -> SubscriptionEvent:
        if self.amount is not None and self.mrr is not None:
            raise PydanticCustomError("price_twice", "give amount (per billing_period) or mrr (per month), not both")
        if self.amount is None and self.mrr is None and not isinstance(self, SubscriptionChurned):
            raise PydanticCustomError(
                "price_missing", "a subscription needs its price: amount (per billing_period) or mrr"
            )
        return self

    def monthly(self, value: Decimal | None) -> tuple[Decimal, int] | None:
        """``value`` (the price or the cost) as (amount, months it covers); None when absent."""
        if value is None:
            return None
        return (value, 1) if self.amount is None else (value, MONTHS_PER_PERIOD[self.billing_period])

    def price(self) -> tuple[Decimal, int]:
        """The price as (amount, months it covers): ``mrr`` per month, or ``amount`` per billing period; 0 if none."""
        return self.monthly(self.amount if self.amount is not None else self.mrr) or (Decimal(0), 1)


class SubscriptionStarted(SubscriptionEvent):
    type: Literal["subscription.started"]


class SubscriptionRenewed(SubscriptionEvent):
    type: Literal["subscription.renewed"]


class SubscriptionChanged(SubscriptionEvent):
    """An upgrade or a downgrade: the subscription's new price (plan, seats) from ``occurred_at`` on."""

    type: Literal["subscription.changed"]


class SubscriptionChurned(SubscriptionEvent):
    """The subscription ended at ``occurred_at``: its MRR is 0 from then on (a price given is ignored)."""

    type: Literal["subscription.churned"]


SURVEY_SCALES: dict[str, tuple[int, int]] = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}


class SurveyResponded(Event):
    """An answer to a survey. With ``account_id`` it belongs to the account (routed ``account:<account_id>``).

    Its team and rep default to the account's owner; ``channel`` where it was asked (else the account's).
    """

    type: Literal["survey.responded"]
    account_id: Identifier | None = None
    kind: Literal["nps", "csat", "ces"]
    score: int
    channel: Label | None = None

    @model_validator(mode="after")
    def _score_on_scale(self) -> SurveyResponded:
        low, high = SURVEY_SCALES[self.kind]
        if not low <= self.score <= high:
            raise PydanticCustomError(
                "score_out_of_range",
                "{kind} score must be between {low} and {high}, got {score}",
                {"kind": self.kind, "low": low, "high": high, "score": self.score},
            )
        return self


class CampaignLaunched(Event):
    type: Literal["campaign.launched"]
    campaign_id: Identifier
    channel: Label
    budget: Money | None = None
    currency: Currency | None = None

    @model_validator(mode="after")
    def _budget_has_currency(self) -> CampaignLaunched:
        if self.budget is not None and self.currency is None:
            raise PydanticCustomError("currency_missing", "budget needs a currency")
        return self


class ContentPublished(Event):
    type: Literal["content.published"]
    channel: Label
    content_id: Identifier


class SocialPosted(Event):
    type: Literal["social.posted"]
    channel: Label
    content_id: Identifier


class EmailCampaignSent(Event):
    type: Literal["email_campaign.sent"]
    campaign_id: Identifier
    recipients: Count


class EmailEngagement(Event):
    campaign_id: Identifier
    contact_id: Identifier


class EmailOpened(EmailEngagement):
    type: Literal["email.opened"]


class EmailClicked(EmailEngagement):
    type: Literal["email.clicked"]


class EmailBounced(EmailEngagement):
    type: Literal["email.bounced"]


class EmailUnsubscribed(EmailEngagement):
    type: Literal["email.unsubscribed"]


class SpendRecorded(Event):
    """Money spent on a channel (and campaign); ``replaces`` corrects an earlier record.

    ``replaces`` names the ``event_id`` of the first record of the spend it corrects
    (a correction of a correction names the same first record): the latest record of
    the chain, by ``occurred_at``, is the amount, counted at the first record's time.
    ``kind`` sales is spend on selling (salaries, tools), counted in the CAC only.
    """

    type: Literal["spend.recorded"]
    channel: Label
    campaign_id: Identifier | None = None
    amount: Money
    currency: Currency
    kind: Literal["marketing", "sales"] = "marketing"
    replaces: Identifier | None = None


class WebSession(Event):
    type: Literal["web.session"]
    visitor_id: Identifier
    pageviews: Count
    duration_seconds: Seconds
    channel: Label | None = None
    campaign_id: Identifier | None = None
    contact_id: Identifier | None = None  # a known visitor: the person behind a lead (attribution touches)
    bot: bool = False  # flagged by the analytics tool: counted apart, in no traffic KPI


# -- internal events: kpimon sends them itself (source "kpimon"), for revenue attribution -------------------------

ReportingAmount = Annotated[float, Field(ge=0, le=float(MAX_AMOUNT) * 1000, allow_inf_nan=False)]


class Stamp(BaseModel):
    """A value as set by an event: ``value`` from event ``event_id`` at ``at`` (epoch seconds).

    Of two stamps of one thing, the later by (``at``, ``event_id``) holds.
    """

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    value: Identifier
    at: EpochSeconds
    event_id: Identifier


class DealOutcome(BaseModel):
    """A deal's latest outcome (its latest deal.won or deal.lost), and the lead the deal names (``lead``)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    deal_id: Identifier
    lead: Stamp
    outcome: Literal["won", "lost"]
    at: EpochSeconds  # the outcome's time
    event_id: Identifier  # the deal.won or deal.lost
    amount: ReportingAmount  # won: the deal's value in the reporting currency; lost: 0


class LeadDealClosed(Event):
    """A deal's latest outcome, sent by kpimon to every lead the deal has named (routing key: the lead).

    A lead that is no longer the deal's (``deal.lead`` names another) keeps it only to pass the move on.
    """

    type: Literal["lead.deal_closed"]
    lead_id: Identifier
    deal: DealOutcome


class ContactLeadUpdated(Event):
    """A lead as attribution needs it, sent by kpimon to every contact the lead has named (routing key: the contact).

    ``person`` is the lead's contact by its latest lead.created (None before one arrives: the lead_id);
    a contact that is not (or no longer) the lead's person ignores the lead. Every field merges by
    its stamp (``created_at`` by its minimum), so the copies a contact receives, in any order, add up
    to the lead's latest state.
    """

    type: Literal["contact.lead_updated"]
    contact_id: Identifier  # the recipient
    lead_id: Identifier
    person: Stamp | None = None
    created_at: EpochSeconds | None = None  # the lead's creation
    channel: Stamp | None = None  # the lead's channel and campaign, by its latest lead.created naming one
    campaign: Stamp | None = None
    deals: tuple[DealOutcome, ...] = ()


AnyEvent = Annotated[
    CallLogged
    | EmailSent
    | EmailReplied
    | MeetingBooked
    | MeetingHeld
    | DemoCompleted
    | LeadCreated
    | LeadQualified
    | LeadConverted
    | OpportunityCreated
    | OpportunityStageChanged
    | DealWon
    | DealLost
    | SubscriptionStarted
    | SubscriptionRenewed
    | SubscriptionChanged
    | SubscriptionChurned
    | SurveyResponded
    | CampaignLaunched
    | ContentPublished
    | SocialPosted
    | EmailCampaignSent
    | EmailOpened
    | EmailClicked
    | EmailBounced
    | EmailUnsubscribed
    | SpendRecorded
    | WebSession
    | LeadDealClosed
    | ContactLeadUpdated,
    Field(discriminator="type"),
]

EVENT_ADAPTER: TypeAdapter[AnyEvent] = TypeAdapter(AnyEvent)

EVENT_MODELS: tuple[type[Event], ...] = get_args(get_args(AnyEvent)[0])
EVENT_TYPES: tuple[str, ...] = tuple(get_args(model.model_fields["type"].annotation)[0] for model in EVENT_MODELS)


_ENTITY_OF: dict[str, tuple[str, str]] = {
    kind: (f"{entity}:", f"{entity}_id")
    for kind, model in zip(EVENT_TYPES, EVENT_MODELS, strict=True)
    for entity, models in (
        ("deal", (OpportunityCreated, OpportunityStageChanged, DealWon, DealLost)),
        ("lead", (LeadCreated, LeadQualified, LeadConverted, LeadDealClosed)),
    )
    if model in models
}
"""Event type -> (key prefix, the field whose value follows it) for the events of a deal's or lead's history."""


_CONTACT_EVENTS = frozenset(
    {"email.opened", "email.clicked", "email.bounced", "email.unsubscribed", "web.session", "contact.lead_updated"}
)
"""Event types that belong to a person's history when they name a ``contact_id``."""


def field_of(event: Event, name: str) -> Any:
    """The event's field ``name``, or None where its type has none (no AttributeError raised and caught)."""
    return vars(event).get(name)


def entity_key(event: AnyEvent) -> str | None:
    """The entity whose history an event belongs to, if any (see ``entity_key_of``)."""
    return entity_key_of(vars(event))


def entity_key_of(event: Mapping[str, Any]) -> str | None:
    """``entity_key`` of an event given as its fields (its JSON object, not validated): for producers.

    ``deal:<deal_id>`` and ``lead:<lead_id>`` for a deal's or lead's events;
    ``spend:<first record's event_id>`` for a spend record and its corrections;
    ``account:<account_id>`` for subscription events and the survey answers of an account;
    ``contact:<contact_id>`` for email engagement and web sessions of a known person, and the
    ``contact.lead_updated`` kpimon sends a lead's person.
    """
    kind = event["type"]
    entity = _ENTITY_OF.get(kind)
    if entity is not None:
        return f"{entity[0]}{event[entity[1]]}"
    if kind.startswith("subscription.") or (kind == "survey.responded" and event.get("account_id")):
        return f"account:{event['account_id']}"
    if kind == "spend.recorded":
        return f"spend:{event.get('replaces') or event['event_id']}"
    if kind in _CONTACT_EVENTS and event.get("contact_id"):
        return f"contact:{event['contact_id']}"
    return None


def routing_key(event: AnyEvent) -> str:
    """The Kafka key an event is partitioned by: its deal or lead, so one worker sees its whole history.

    Every other event is keyed by its ``event_id``. Either way, all copies of an
    event land on one partition, where duplicates are recognised.
    """
    return routing_key_of(vars(event))


def routing_key_of(event: Mapping[str, Any]) -> str:
    """``routing_key`` of an event given as its fields (its JSON object, not validated): for producers."""
    return entity_key_of(event) or str(event["event_id"])


def parse_event(raw: bytes) -> AnyEvent:
    """Validate one JSON message against the contract; raises pydantic's ValidationError."""
    return EVENT_ADAPTER.validate_json(raw)


def event_json_schema() -> dict[str, Any]:
    """The JSON Schema of the contract, for producers written in other languages."""
    schema = EVENT_ADAPTER.json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "kpimon event"
    return schema
