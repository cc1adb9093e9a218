"""Deals and leads: each one's history folded into a small state, and the counters it contributes. Pure.

The counters an entity contributes are a function of its state alone
(``deal_facts``, ``lead_facts``). Applying an event changes the state, and the
change in counters is the difference between the facts after and before
(``fact_changes``): a deal won, re-opened and won again counts once, at its
last win; a creation that arrives after the win still gives the cycle length;
a rep, channel or campaign reassigned moves the deal's counts there. Every choice is made by
event time (ties by event id), so the result does not depend on delivery
order, and an event applied twice (its id is kept in the state) changes nothing.

**Stages.** A deal keeps its CRM stage changes (``opportunity.stage_changed``, ``to_stage``, a
label bounded by ``labels.stages``: ``streams.core.labels``) in ``stages``, in order of (time, id).
Its stage now is the latest (``UNKNOWN_STAGE`` before any); the stage it closed from is the latest
change before its outcome, whatever the order the changes and the outcome arrived in. The outcome
counts once more under that stage (``won_stage:<stage>``, ``lost_stage:<stage>``: the per-stage win
rates of ``schemas.forecast``), and an open deal is in the open pipeline of its stage now. A change
after the outcome re-opens the deal in its new stage; a change arriving late moves the outcome's
count from one stage to another.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal, NotRequired, TypedDict, cast

from schemas.events import (
    DealLost,
    DealWon,
    Event,
    LeadConverted,
    LeadCreated,
    LeadQualified,
    OpportunityCreated,
    OpportunityStageChanged,
    field_of,
)
from streams.core.records import UNKNOWN_CHANNEL, Fact
from streams.core.table_keys import split_table_key

DealEvent = OpportunityCreated | OpportunityStageChanged | DealWon | DealLost
LeadEvent = LeadCreated | LeadQualified | LeadConverted
CYCLE_SAMPLE_PREFIX = "cycle_sample:"  # one counter per won deal: its cycle length, for percentiles
LOST_REASON_PREFIX = "lost_reason:"  # deals lost, per reason
WON_STAGE_PREFIX = "won_stage:"  # deals won, per the stage they closed from
LOST_STAGE_PREFIX = "lost_stage:"  # deals lost, per the stage they closed from
UNKNOWN_STAGE = "unknown"  # the stage of a deal with no stage change (before it, at its close)

# A value set by an event: [value, event time, event id]; the latest by (time, id) wins.
Stamped = list[str | int]
ToReporting = Callable[[Decimal, str], float]


class Outcome(TypedDict):
    kind: Literal["won", "lost"]
    at: int
    event_id: str
    amount: float  # won: the deal's value in the reporting currency; lost: 0
    reason: str  # lost: the reason; won: ""
    opened_at: int | None  # won: the deal's opened_at, used when its creation never arrived
    cost: NotRequired[float]  # won: what delivering it costs, in the reporting currency, if the win says


class DealState(TypedDict):
    created_at: int | None
    amount: float | None  # the opportunity's value in the reporting currency
    attributes: dict[str, Stamped]  # team, rep, channel, campaign, lead
    stage: Stamped | None  # the latest stage change: [to_stage, time, event id]
    stages: NotRequired[list[Stamped]]  # every stage change, by (time, id), the latest ``retention.MAX_STAGES``
    outcome: Outcome | None
    event_ids: list[str]
    leads: NotRequired[list[str]]  # every lead the deal has named: each hears of its outcome (entities/lead_views.py)
    first_won_at: NotRequired[int]  # its earliest win, even if a later loss replaced it: its lead became a customer
    # its earliest win naming an account, which opens a subscription (entities/accounts.py):
    # [time, event id, account, amount in the deal's currency (text), currency, billing period]
    opens: NotRequired[list[str | int]]
    last_at: NotRequired[int]  # its latest event's time (entities/retention.py), as for every kind


class DealView(TypedDict):
    """A deal's latest outcome as its lead knows it (from ``lead.deal_closed``), and the lead the deal names."""

    lead: Stamped
    outcome: Literal["won", "lost"]
    at: int
    event_id: str
    amount: float  # won: in the reporting currency; lost: 0


class LeadState(TypedDict):
    created_at: int | None
    mql_at: int | None
    sql_at: int | None
    opportunity_at: int | None  # the first time one of its deals was created
    customer_at: int | None  # the first time one of its deals was won
    attributes: dict[str, Stamped]  # team, rep, channel, campaign, contact (the person)
    event_ids: list[str]
    deals: NotRequired[dict[str, DealView]]  # the deals that named the lead, for attribution
    contacts: NotRequired[list[str]]  # every contact the lead has named: each hears of it (entities/lead_views.py)
    last_at: NotRequired[int]


def empty_deal() -> DealState:
    return {"created_at": None, "amount": None, "attributes": {}, "stage": None, "outcome": None, "event_ids": []}


def empty_lead() -> LeadState:
    return {
        "created_at": None,
        "mql_at": None,
        "sql_at": None,
        "opportunity_at": None,
        "customer_at": None,
        "attributes": {},
        "event_ids": [],
    }


def _timestamp(event: Event) -> int:
    return int(event.occurred_at.timestamp())


def _later(stamp: Stamped | None, at: int, event_id: str) -> bool:
    return stamp is None or (at, event_id) > (int(stamp[1]), str(stamp[2]))


def _stamp_order(stamp: Stamped) -> tuple[int, str]:
    return int(stamp[1]), str(stamp[2])


def stage_changes(state: DealState) -> list[Stamped]:
    """The deal's stage changes by (time, id); a state stored before ``stages`` was kept has its latest only."""
    stages = state.get("stages")
    if stages is not None:
        return stages
    return [] if state["stage"] is None else [state["stage"]]


def current_stage(state: DealState) -> str:
    """The stage the deal is in: its latest stage change, ``UNKNOWN_STAGE`` before any."""
    stage = state["stage"]
    return UNKNOWN_STAGE if stage is None else str(stage[0])


def closing_stage(state: DealState) -> str:
    """The stage the deal closed from: its latest stage change before its outcome (``UNKNOWN_STAGE`` if none)."""
    outcome = state["outcome"]
    closed = None if outcome is None else (outcome["at"], outcome["event_id"])
    before = [stamp for stamp in stage_changes(state) if closed is None or _stamp_order(stamp) < closed]
    return str(before[-1][0]) if before else UNKNOWN_STAGE


def set_attributes(attributes: dict[str, Stamped], event: Event, values: dict[str, str | None]) -> None:
    at = _timestamp(event)
    for name, value in values.items():
        if value is not None and _later(attributes.get(name), at, event.event_id):
            attributes[name] = [value, at, event.event_id]


def _earliest(current: int | None, at: int) -> int:
    return at if current is None else min(current, at)


def apply_deal_event(state: DealState, event: DealEvent, to_reporting: ToReporting) -> DealState:
    """The deal's state after ``event``; the same state if the event was applied before."""
    if event.event_id in state["event_ids"]:
        return state
    new: DealState = {
        **state,
        "attributes": dict(state["attributes"]),
        "event_ids": [*state["event_ids"], event.event_id],
    }
    at = _timestamp(event)
    set_attributes(new["attributes"], event, {"team": event.team, "rep": event.rep_id})
    lead = field_of(event, "lead_id")
    if lead is not None and lead not in new.get("leads", []):
        new["leads"] = [*new.get("leads", []), lead]
    match event:
        case OpportunityCreated():
            named = {"channel": event.channel, "campaign": event.campaign_id, "lead": event.lead_id}
            set_attributes(new["attributes"], event, named)
            if new["created_at"] is None or at <= new["created_at"]:
                new["amount"] = to_reporting(event.amount, event.currency)
            new["created_at"] = _earliest(new["created_at"], at)
        case OpportunityStageChanged():
            change: Stamped = [event.to_stage, at, event.event_id]
            known = stage_changes(state)  # an event applied again once its id is forgotten adds nothing
            new["stages"] = known if change in known else sorted([*known, change], key=_stamp_order)
            if _later(new["stage"], at, event.event_id):
                new["stage"] = change
        case DealWon() | DealLost():
            if isinstance(event, DealWon):
                named = {"channel": event.channel, "campaign": event.campaign_id, "lead": event.lead_id}
                set_attributes(new["attributes"], event, named)
                new["first_won_at"] = _earliest(new.get("first_won_at"), at)
                opens = new.get("opens")
                if event.account_id is not None and (opens is None or (at, event.event_id) < (opens[0], opens[1])):
                    amount = str(event.amount)
                    new["opens"] = [at, event.event_id, event.account_id, amount, event.currency, event.billing_period]
            outcome = _outcome(event, at, to_reporting)
            current = new["outcome"]
            if current is None or (at, event.event_id) > (current["at"], current["event_id"]):
                new["outcome"] = outcome
    return new


def _outcome(event: DealWon | DealLost, at: int, to_reporting: ToReporting) -> Outcome:
    if isinstance(event, DealWon):
        opened_at = int(event.opened_at.timestamp()) if event.opened_at else None
        amount = to_reporting(event.amount, event.currency)
        won: Outcome = {
            "kind": "won",
            "at": at,
            "event_id": event.event_id,
            "amount": amount,
            "reason": "",
            "opened_at": opened_at,
        }
        if event.cost is not None:
            won["cost"] = to_reporting(event.cost, event.currency)
        return won
    return {
        "kind": "lost",
        "at": at,
        "event_id": event.event_id,
        "amount": 0.0,
        "reason": event.reason,
        "opened_at": None,
    }


def apply_lead_event(state: LeadState, event: LeadEvent) -> LeadState:
    """The lead's state after ``event``; the same state if the event was applied before."""
    if event.event_id in state["event_ids"]:
        return state
    new: LeadState = {
        **state,
        "attributes": dict(state["attributes"]),
        "event_ids": [*state["event_ids"], event.event_id],
    }
    at = _timestamp(event)
    set_attributes(new["attributes"], event, {"team": event.team, "rep": event.rep_id})
    match event:
        case LeadCreated():
            named = {
                "channel": event.channel,
                "campaign": event.campaign_id,
                "contact": event.contact_id or event.lead_id,
            }
            set_attributes(new["attributes"], event, named)
            new["created_at"] = _earliest(new["created_at"], at)
        case LeadQualified(stage="mql"):
            new["mql_at"] = _earliest(new["mql_at"], at)
        case LeadQualified():
            new["sql_at"] = _earliest(new["sql_at"], at)
        case LeadConverted(stage="opportunity"):
            new["opportunity_at"] = _earliest(new["opportunity_at"], at)
        case LeadConverted():
            new["customer_at"] = _earliest(new["customer_at"], at)
    return new


def attribute_of(attributes: dict[str, Stamped], name: str) -> str | None:
    stamp = attributes.get(name)
    return None if stamp is None else str(stamp[0])


Placement = tuple[str | None, str | None, str, str | None]  # team, rep, channel, campaign


def _placement(attributes: dict[str, Stamped]) -> Placement:
    """Where an entity counts: its team, rep, channel (``unknown`` when it has none) and campaign (if any)."""
    channel = attribute_of(attributes, "channel") or UNKNOWN_CHANNEL
    return (
        attribute_of(attributes, "team"),
        attribute_of(attributes, "rep"),
        channel,
        attribute_of(attributes, "campaign"),
    )


def _opened_at(state: DealState) -> int | None:
    """The deal's creation, else the ``opened_at`` of its win (a creation before kpimon started)."""
    outcome = state["outcome"]
    if state["created_at"] is None and outcome is not None:
        return outcome["opened_at"]
    return state["created_at"]


def deal_facts(deal_id: str, state: DealState) -> list[Fact]:
    """What a deal counts: its creation, and its outcome (the latest win or loss)."""
    team, rep, channel, campaign = _placement(state["attributes"])
    facts = []
    if state["created_at"] is not None:
        facts.append(Fact(state["created_at"], team, rep, channel, {"opportunities_created": 1}, campaign))
    outcome = state["outcome"]
    if outcome is not None and outcome["kind"] == "won":
        counters = {"deals_won": 1.0, "revenue": outcome["amount"], WON_STAGE_PREFIX + closing_stage(state): 1.0}
        if "cost" in outcome:  # its profit margin: revenue and cost of the wins that give their cost
            counters |= {"revenue_costed": outcome["amount"], "won_deal_costs": outcome["cost"]}
        opened_at = _opened_at(state)
        if opened_at is not None:
            cycle = float(max(outcome["at"] - opened_at, 0))
            counters |= {"deals_won_timed": 1, "cycle_seconds": cycle, CYCLE_SAMPLE_PREFIX + deal_id: cycle}
        facts.append(Fact(outcome["at"], team, rep, channel, counters, campaign))
    elif outcome is not None:
        lost: dict[str, float] = {
            "deals_lost": 1,
            LOST_REASON_PREFIX + outcome["reason"]: 1,
            LOST_STAGE_PREFIX + closing_stage(state): 1,
        }
        facts.append(Fact(outcome["at"], team, rep, channel, lost, campaign))
    return facts


def lead_facts(state: LeadState) -> list[Fact]:
    """What a lead counts: created, and the first time it became an MQL and an SQL."""
    team, rep, channel, campaign = _placement(state["attributes"])
    stages = (("leads", state["created_at"]), ("mqls", state["mql_at"]), ("sqls", state["sql_at"]))
    facts = [Fact(at, team, rep, channel, {name: 1}, campaign) for name, at in stages if at is not None]
    created_at = state["created_at"]
    if created_at is not None:  # the cohort counters: at the lead's creation, whenever it converted
        reached = (("cohort_opportunities", state["opportunity_at"]), ("cohort_customers", state["customer_at"]))
        cohort = {name: 1.0 for name, at in reached if at is not None}
        if cohort:
            facts.append(Fact(created_at, team, rep, channel, cohort, campaign))
    return facts


Where = tuple[int, str | None, str | None, str | None, str | None]  # timestamp, team, rep, channel, campaign


def _amounts(facts: Iterable[Fact], sign: float, into: dict[tuple[Where, str], float]) -> None:
    for fact in facts:
        where = (fact.timestamp, fact.team, fact.rep, fact.channel, fact.campaign)
        for name, value in fact.counters.items():
            into[where, name] = into.get((where, name), 0.0) + sign * value


def fact_changes(before: Iterable[Fact], after: Iterable[Fact]) -> list[Fact]:
    """The counter deltas that turn the facts ``before`` into the facts ``after``."""
    amounts: dict[tuple[Where, str], float] = {}
    _amounts(before, -1.0, amounts)
    _amounts(after, 1.0, amounts)
    changes: dict[Where, dict[str, float]] = {}
    for (where, name), delta in amounts.items():
        if delta != 0:
            changes.setdefault(where, {})[name] = delta
    return [
        Fact(at, team, rep, channel, counters, campaign)
        for (at, team, rep, channel, campaign), counters in changes.items()
    ]


def deal_conversions(deal_id: str, state: DealState) -> list[dict[str, str]]:
    """The ``lead.converted`` events a deal that names its lead implies (contract JSON, stable ids).

    The lead became a customer at the deal's first win, even when a later loss replaced
    that win: whether it did must not depend on which of the two arrived first.
    """
    lead = attribute_of(state["attributes"], "lead")
    if lead is None:
        return []
    reached = [("opportunity", _opened_at(state)), ("customer", state.get("first_won_at"))]
    return [
        {
            "event_id": f"kpimon-{stage}-{deal_id}",
            "type": "lead.converted",
            "occurred_at": datetime.fromtimestamp(int(at), UTC).isoformat(),
            "source": "kpimon",
            "lead_id": lead,
            "stage": stage,
            "deal_id": deal_id,
        }
        for stage, at in reached
        if at is not None
    ]


def is_open(state: DealState) -> bool:
    """A created deal with no outcome, or one re-opened by a stage change after its outcome."""
    outcome, stage = state["outcome"], state["stage"]
    if state["created_at"] is None:
        return False
    if outcome is None:
        return True
    return stage is not None and (int(stage[1]), str(stage[2])) > (outcome["at"], outcome["event_id"])


@dataclass(frozen=True)
class OpenDeal:
    """An open deal's value, where it counts (team, rep, channel, campaign) and its stage now."""

    amount: float
    team: str | None
    rep: str | None
    channel: str
    campaign: str | None
    stage: str


def open_deals(states: Iterable[tuple[str, object]]) -> Iterator[OpenDeal]:
    """The open deals among stored entity states of any kind (deals by their keys, ``"<partition>|deal:<id>"``)."""
    for key, state in states:
        if not split_table_key(key)[1].startswith("deal:"):
            continue
        deal = cast(DealState, state)
        if is_open(deal) and deal["amount"] is not None:
            yield OpenDeal(deal["amount"], *_placement(deal["attributes"]), current_stage(deal))
