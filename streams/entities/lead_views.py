"""What a deal tells its leads and a lead its contacts, for attribution, and how what arrives merges. Pure.

A won deal's revenue is attributed to the touches of the person behind its lead; the deal, the
lead and the person (a contact) live on different partitions. So they tell each other with
internal contract events (``schemas.events``), sent through the re-keyed topic like ``lead.converted``:

- a deal sends its latest outcome (won or lost, with the lead it names) to every lead it has
  named (``deal_outcome_events``): a lead it no longer names learns that too;
- a lead keeps the latest outcome of each such deal (``apply_lead``) and sends its view, its
  person, creation, channel, campaign and deals, to every contact it has named
  (``lead_view_events``): a contact that is no longer its person learns that too;
- a contact merges the views it receives (``merge_view``) and attributes what is its own
  (``streams.entities.contacts``).

Every part of a view merges by its stamp (the latest (time, event id) wins; the creation by its
minimum), as the lead's own state does, so the views a contact receives, in any order and with
any copies, merge to the lead's latest view. An event's id is a digest of its content and its
recipient: the same view sent again (after a crash) is a duplicate, a changed view a new event.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any, TypedDict

import orjson

from schemas.events import ContactLeadUpdated, DealOutcome, LeadDealClosed, Stamp
from streams.entities.deals_leads import DealState, DealView, LeadEvent, LeadState, Stamped, apply_lead_event
from streams.entities.retention import keeps_view

Emitted = dict[str, Any]


class LeadView(TypedDict):
    person: Stamped | None  # the lead's contact by its latest lead.created; None: none arrived (the lead_id)
    created_at: int | None
    channel: Stamped | None
    campaign: Stamped | None
    deals: dict[str, DealView]


def _key(stamp: Stamped) -> tuple[int, str]:
    return int(stamp[1]), str(stamp[2])


def later(current: Stamped | None, other: Stamped | None) -> Stamped | None:
    """The later of two stamps of one value, by (time, event id)."""
    if current is None or (other is not None and _key(other) > _key(current)):
        return other
    return current


def merge_deal(current: DealView | None, other: DealView) -> DealView:
    """A deal's latest outcome and its latest lead, of two partial views of it."""
    if current is None:
        return other
    outcome = other if (other["at"], other["event_id"]) > (current["at"], current["event_id"]) else current
    lead = other["lead"] if _key(other["lead"]) > _key(current["lead"]) else current["lead"]
    return {**outcome, "lead": lead}


def merge_view(current: LeadView | None, other: LeadView) -> LeadView:
    """Two views of one lead merged: each part by its stamp, the creation by its minimum."""
    if current is None:
        return other
    created = [at for at in (current["created_at"], other["created_at"]) if at is not None]
    deals = dict(current["deals"])
    for deal_id, deal in other["deals"].items():
        deals[deal_id] = merge_deal(deals.get(deal_id), deal)
    return {
        "person": later(current["person"], other["person"]),
        "created_at": min(created, default=None),
        "channel": later(current["channel"], other["channel"]),
        "campaign": later(current["campaign"], other["campaign"]),
        "deals": deals,
    }


def person_of(lead_id: str, view: LeadView) -> str:
    """The contact a lead belongs to: its latest lead.created's ``contact_id`` (by default its lead_id)."""
    return str(view["person"][0]) if view["person"] is not None else lead_id


# -- the deal's side ---------------------------------------------------------------------------------------------------


def _stamp(stamp: Stamped) -> dict[str, Any]:
    return {"value": str(stamp[0]), "at": int(stamp[1]), "event_id": str(stamp[2])}


def _internal(kind: str, at: int, body: dict[str, Any]) -> Emitted:
    """A contract event kpimon sends itself; its id is a digest of its type and content (recipient included)."""
    digest = hashlib.blake2b(orjson.dumps([kind, body], option=orjson.OPT_SORT_KEYS), digest_size=16).hexdigest()
    envelope = {
        "event_id": f"kpimon-{digest}",
        "type": kind,
        "occurred_at": datetime.fromtimestamp(at, UTC).isoformat(),
    }
    return envelope | {"source": "kpimon"} | body


def _deal_json(deal_id: str, deal: DealView) -> dict[str, Any]:
    return {
        "deal_id": deal_id,
        "lead": _stamp(deal["lead"]),
        "outcome": deal["outcome"],
        "at": deal["at"],
        "event_id": deal["event_id"],
        "amount": deal["amount"],
    }


def deal_outcome_events(deal_id: str, state: DealState) -> list[Emitted]:
    """``lead.deal_closed`` to every lead the deal has named, once it has an outcome."""
    outcome, lead = state["outcome"], state["attributes"].get("lead")
    if outcome is None or lead is None:
        return []
    deal: DealView = {
        "lead": lead,
        "outcome": outcome["kind"],
        "at": outcome["at"],
        "event_id": outcome["event_id"],
        "amount": outcome["amount"],
    }
    body = {"deal": _deal_json(deal_id, deal)}
    return [
        _internal("lead.deal_closed", outcome["at"], {"lead_id": target} | body) for target in state.get("leads", [])
    ]


# -- the lead's side ---------------------------------------------------------------------------------------------------


def _stamped(stamp: Stamp | None) -> Stamped | None:
    return None if stamp is None else [stamp.value, stamp.at, stamp.event_id]


def _deal_view(deal: DealOutcome) -> DealView:
    return {
        "lead": [deal.lead.value, deal.lead.at, deal.lead.event_id],
        "outcome": deal.outcome,
        "at": deal.at,
        "event_id": deal.event_id,
        "amount": deal.amount,
    }


def lead_view(state: LeadState) -> LeadView:
    attributes = state["attributes"]
    return {
        "person": attributes.get("contact"),
        "created_at": state["created_at"],
        "channel": attributes.get("channel"),
        "campaign": attributes.get("campaign"),
        "deals": state.get("deals", {}),
    }


def _has_news(view: LeadView) -> bool:
    return view["created_at"] is not None or bool(view["deals"])


def apply_lead(state: LeadState, event: LeadEvent | LeadDealClosed) -> LeadState:
    """``apply_lead_event``, plus the outcomes of its deals, and the contacts it has named (once it has news)."""
    if isinstance(event, LeadDealClosed):
        if event.event_id in state["event_ids"]:
            return state
        deals = dict(state.get("deals", {}))
        if not keeps_view(deals, event.deal.deal_id):  # a lead with too many deals (entities/retention.py)
            return {**state, "event_ids": [*state["event_ids"], event.event_id]}
        deals[event.deal.deal_id] = merge_deal(deals.get(event.deal.deal_id), _deal_view(event.deal))
        new: LeadState = {**state, "event_ids": [*state["event_ids"], event.event_id], "deals": deals}
    else:
        new = apply_lead_event(state, event)
        if new is state:
            return state
    view = lead_view(new)
    person, contacts = person_of(event.lead_id, view), new.get("contacts", [])
    if _has_news(view) and person not in contacts:
        new["contacts"] = [*contacts, person]
    return new


def lead_view_events(lead_id: str, state: LeadState) -> list[Emitted]:
    """``contact.lead_updated`` with the lead's view to every contact it has named, once it is created or has deals."""
    view = lead_view(state)
    if not _has_news(view):
        return []
    stamps = [stamp for stamp in (view["person"], view["channel"], view["campaign"]) if stamp is not None]
    times = [int(stamp[1]) for stamp in stamps] + [deal["at"] for deal in view["deals"].values()]
    if view["created_at"] is not None:
        times.append(view["created_at"])
    body = {
        "lead_id": lead_id,
        "person": None if view["person"] is None else _stamp(view["person"]),
        "created_at": view["created_at"],
        "channel": None if view["channel"] is None else _stamp(view["channel"]),
        "campaign": None if view["campaign"] is None else _stamp(view["campaign"]),
        "deals": [_deal_json(deal_id, deal) for deal_id, deal in sorted(view["deals"].items())],
    }
    return [
        _internal("contact.lead_updated", max(times), {"contact_id": target} | body)
        for target in state.get("contacts", [])
    ]


def received_view(event: ContactLeadUpdated) -> LeadView:
    """The view a ``contact.lead_updated`` carries."""
    return {
        "person": _stamped(event.person),
        "created_at": event.created_at,
        "channel": _stamped(event.channel),
        "campaign": _stamped(event.campaign),
        "deals": {deal.deal_id: _deal_view(deal) for deal in event.deals},
    }
