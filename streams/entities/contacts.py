"""A person (a contact): email engagement per campaign, touches, and the leads that are theirs. Pure.

A contact's events are keyed ``contact:<contact_id>``: email opened, clicked, bounced and
unsubscribed, web sessions of a known visitor, and the lead views kpimon sends it
(``contact.lead_updated``, see ``streams.entities.lead_views``). What it counts is a function of its
state (``contact_facts``), like a deal's or a lead's:

- the email funnel, once per (campaign, contact), at the first time: ``email_unique_opens`` (a
  click without an earlier open is an implied open, at the click), ``email_unique_clicks``,
  ``email_bounces``, ``email_unsubscribes``. Opens without a send (image proxies, a send kpimon
  never saw) count as well;
- ``email_leads``: each lead of the person created at or after their first click on a
  campaign's email, at the lead's creation, under that campaign;
- the revenue of every won deal of the person's leads, attributed to the touches up to the win
  (``streams.entities.attribution``): the lead's creation, the person's web sessions (bots excluded)
  and email clicks.

Email counters count under the campaign (and overall), not under a channel or team.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import NotRequired, TypedDict, cast

from schemas.events import (
    ContactLeadUpdated,
    EmailBounced,
    EmailClicked,
    EmailOpened,
    EmailUnsubscribed,
    WebSession,
)
from streams.core.labels import OTHER_LABEL
from streams.core.records import UNKNOWN_CHANNEL, Fact
from streams.entities.attribution import Touch, attribution_facts
from streams.entities.lead_views import LeadView, merge_view, person_of, received_view
from streams.entities.retention import MAX_CONTACT_DEALS, MAX_EMAIL_CAMPAIGNS, keeps_view

ContactEvent = EmailOpened | EmailClicked | EmailBounced | EmailUnsubscribed | WebSession | ContactLeadUpdated
EMAIL_CHANNEL = "email"
ENGAGEMENTS = {
    "email.opened": "opened",
    "email.clicked": "clicked",
    "email.bounced": "bounced",
    "email.unsubscribed": "unsubscribed",
}
EMAIL_COUNTERS = (
    ("opened", "email_unique_opens"),
    ("clicked", "email_unique_clicks"),
    ("bounced", "email_bounces"),
    ("unsubscribed", "email_unsubscribes"),
)

StoredTouch = list[str | int | None]  # [time, event id, channel, campaign or None]


class ContactState(TypedDict):
    email: dict[str, dict[str, int]]  # campaign -> engagement ("opened", "clicked", ...) -> its first time
    touches: list[StoredTouch]  # web sessions (not bots) and email clicks
    leads: dict[str, LeadView]  # every lead that named this contact, merged from what it sent
    event_ids: list[str]
    last_at: NotRequired[int]  # its latest event's time (entities/retention.py)


def empty_contact() -> ContactState:
    return {"email": {}, "touches": [], "leads": {}, "event_ids": []}


def _timestamp(moment: datetime) -> int:
    return int(moment.timestamp())


def apply_contact_event(state: ContactState, event: ContactEvent) -> ContactState:
    """The contact's state after ``event``; the same state if the event was applied before."""
    if event.event_id in state["event_ids"]:
        return state
    new: ContactState = {**state, "event_ids": [*state["event_ids"], event.event_id]}
    at = _timestamp(event.occurred_at)
    match event:
        case ContactLeadUpdated():
            if not keeps_view(state["leads"], event.lead_id):  # a person with too many leads (entities/retention.py)
                return new
            new["leads"] = {
                **state["leads"],
                event.lead_id: _within_deal_cap(state["leads"], event.lead_id, received_view(event)),
            }
        case WebSession():
            if not event.bot and not _has_touch(state, event.event_id):  # a bot's session is no touch; its id is
                # kept all the same, so a copy is a duplicate
                touch: StoredTouch = [at, event.event_id, event.channel or UNKNOWN_CHANNEL, event.campaign_id]
                new["touches"] = [*state["touches"], touch]
        case _:
            kind, campaign = ENGAGEMENTS[event.type], _email_campaign(state, event.campaign_id)
            firsts = dict(state["email"].get(campaign, {}))
            firsts[kind] = min(firsts.get(kind, at), at)
            new["email"] = {**state["email"], campaign: firsts}
            if kind == "clicked" and not _has_touch(state, event.event_id):
                new["touches"] = [*state["touches"], [at, event.event_id, EMAIL_CHANNEL, campaign]]
    return new


def _email_campaign(state: ContactState, campaign: str) -> str:
    """The campaign a contact keeps an engagement under: its own while the contact has room, else ``other``."""
    if campaign in state["email"] or len(state["email"]) < MAX_EMAIL_CAMPAIGNS:
        return campaign
    return OTHER_LABEL


def _within_deal_cap(leads: dict[str, LeadView], lead_id: str, received: LeadView) -> LeadView:
    """The lead's view merged with ``received``, keeping new deals only while the contact has room for them."""
    current = leads.get(lead_id)
    merged = merge_view(current, received)
    held = sum(len(view["deals"]) for view in leads.values())
    new = sorted(deal_id for deal_id in merged["deals"] if current is None or deal_id not in current["deals"])
    room = max(MAX_CONTACT_DEALS - held, 0)
    if len(new) <= room:
        return merged
    dropped = set(new[room:])
    return {**merged, "deals": {deal_id: deal for deal_id, deal in merged["deals"].items() if deal_id not in dropped}}


def _has_touch(state: ContactState, event_id: str) -> bool:
    """Whether a touch of this event is kept already (its id forgotten at the cap, a copy read again)."""
    return any(touch[1] == event_id for touch in state["touches"])


def _email_facts(state: ContactState) -> Iterator[Fact]:
    for campaign, firsts in state["email"].items():
        reached = dict(firsts)
        clicked = firsts.get("clicked")
        if clicked is not None:  # a click implies an open, at the click if no open came before it
            reached["opened"] = min(firsts.get("opened", clicked), clicked)
        for kind, counter in EMAIL_COUNTERS:
            if kind in reached:
                yield Fact(reached[kind], None, None, None, {counter: 1}, campaign)


def _own_leads(contact_id: str, state: ContactState) -> Iterator[tuple[str, LeadView]]:
    """The leads whose person is this contact (a lead that moved to another contact is not)."""
    for lead_id, view in sorted(state["leads"].items()):
        if person_of(lead_id, view) == contact_id:
            yield lead_id, view


def _email_lead_facts(contact_id: str, state: ContactState) -> Iterator[Fact]:
    for _, view in _own_leads(contact_id, state):
        created = view["created_at"]
        if created is None:
            continue
        for campaign, firsts in state["email"].items():
            clicked = firsts.get("clicked")
            if clicked is not None and clicked <= created:
                yield Fact(created, None, None, None, {"email_leads": 1}, campaign)


def _creation_touch(lead_id: str, view: LeadView) -> list[Touch]:
    if view["created_at"] is None:
        return []
    channel = str(view["channel"][0]) if view["channel"] is not None else UNKNOWN_CHANNEL
    campaign = str(view["campaign"][0]) if view["campaign"] is not None else None
    return [Touch(view["created_at"], f"lead:{lead_id}", channel, campaign)]


def _touches(state: ContactState) -> list[Touch]:
    return [
        Touch(cast(int, at), str(touch_id), str(channel), None if campaign is None else str(campaign))
        for at, touch_id, channel, campaign in state["touches"]
    ]


def _attributed_revenue(contact_id: str, state: ContactState) -> Iterator[Fact]:
    touches = _touches(state)
    for lead_id, view in _own_leads(contact_id, state):
        lead_touches = [*touches, *_creation_touch(lead_id, view)]
        for _, deal in sorted(view["deals"].items()):
            if deal["outcome"] == "won" and deal["lead"][0] == lead_id:  # a deal moved to another lead is not
                yield from attribution_facts(deal["at"], deal["amount"], lead_touches)


def contact_facts(contact_id: str, state: ContactState) -> list[Fact]:
    """What a contact counts: its email funnel per campaign, its leads after a click, its attributed revenue."""
    return [
        *_email_facts(state),
        *_email_lead_facts(contact_id, state),
        *_attributed_revenue(contact_id, state),
    ]
