"""Email KPIs per campaign and attributed revenue per channel and campaign, computed offline by a route independent
of kpimon, and the events they are computed from.

Like ``offline_campaigns``, this module imports nothing from ``schemas``, ``streams`` or ``alerts``: an integration
test sends :func:`marketing_events` through a real worker and compares the worker's KPIs with
:func:`email_and_attribution_totals` over the same events.

The events
==========
:func:`marketing_events` returns contract events (JSON-ready dicts), deterministic for a seed and an end time,
all in the 20 days before it, every ``occurred_at`` a whole second:

- ``email_campaign.sent`` of campaigns ``newsletter`` and ``webinar``; opens, clicks, bounces and unsubscribes of
  contacts ``p0`` ... for those and for ``proxy-only`` (opened, never sent: an image proxy), some contacts opening
  or clicking twice, some clicking without an open;
- ``web.session`` of known contacts (with ``contact_id``; some flagged ``bot``) and of anonymous visitors;
- leads (``lead.created`` with a ``contact_id``, or none: the person is then the lead itself), some created twice
  naming another person later, some never created; deals naming them (``opportunity.created``, ``deal.won``,
  ``deal.lost``): won, lost, won then lost, lost then won again, won naming another lead; deals naming no lead;
- ``spend.recorded`` (marketing, no corrections) per channel and campaign.

The rules (what kpimon's docs/kpis.md states)
=============================================
- Email, per campaign: per (campaign, contact) a unique open if it opened or clicked, a unique click if it clicked,
  a bounce, an unsubscribe. ``email_deliveries`` = sends - bounces; delivery rate = deliveries / sends; open rate =
  unique opens / deliveries; click-through = unique clicks / deliveries; click-to-open = unique clicks / unique
  opens; bounce rate = bounces / sends; unsubscribe rate = unsubscribes / deliveries; ``email_leads``: per lead of a
  person, each campaign the person first clicked at or before the lead's creation; conversion = email leads /
  unique clicks. A ratio over 0 has no value.
- A lead's person is the ``contact_id`` of its latest ``lead.created`` (by time, then event id), or its lead_id when
  that names none or none arrived; its creation the earliest ``lead.created``; its channel and campaign those of
  the latest ``lead.created`` naming one.
- A deal's outcome is its latest ``deal.won``/``deal.lost``; its lead the one named by its latest event naming one;
  its channel and campaign likewise. A won deal's amount is attributed at the win: with a lead, over the touches of
  the lead's person at or before the win: the lead's creation (its channel or ``unknown``, its campaign; id
  ``lead:<lead_id>``), the person's web sessions that are not bots (channel or ``unknown``, campaign) and email
  clicks (``email``, campaign), ordered by (time, event id); first touch all to the first, last touch all to the
  last, linear an equal share to each; no touch: all to ``unknown``. Without a lead: to the deal's own channel (or
  ``unknown``) and campaign. Each touch counts under its channel, under its campaign if it has one, and overall.
- ``marketing_spend`` sums the spend per channel, campaign and overall; ROMI = (linear - spend) / spend.

Result: ``{(scope, value): {name: value}}`` with scope ``"all"`` (value ``""``), ``"channel"`` or ``"campaign"``;
counters are ``Fraction`` (exact), ratios ``Fraction`` or ``None``.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from typing import Any, Final

from tests.reference.offline_campaigns import EventLog

__all__ = ["EMAIL_CAMPAIGNS", "email_and_attribution_totals", "marketing_events"]

EMAIL_CAMPAIGNS: Final = ("newsletter", "webinar", "proxy-only")
SENDS: Final = {"newsletter": (120, 80), "webinar": (90,)}  # recipients of each email_campaign.sent
CHANNEL_CAMPAIGNS: Final = {"paid_search": ("search-brand", None), "social": ("social-retargeting",), "events": (None,)}
LEAD_CHANNELS: Final = ("paid_search", "social", "events", None)
SPAN: Final = 20 * 86400
MODELS: Final = ("attributed_revenue_first", "attributed_revenue_last", "attributed_revenue_linear")

Event = dict[str, Any]
Key = tuple[str, str]  # (scope, its value): ("all", ""), ("channel", "email"), ("campaign", "newsletter")


class _Events(EventLog):
    def __init__(self, prefix: str, start: int, rng: random.Random) -> None:
        super().__init__(prefix)
        self.start, self.rng = start, rng

    def at(self, low: float = 0.0, high: float = 1.0) -> int:
        """A time between ``low`` and ``high`` of the span (fractions of it)."""
        return self.start + self.rng.randrange(int(low * SPAN), int(high * SPAN))


def _email(out: _Events, people: list[str]) -> None:
    rng = out.rng
    for campaign, sends in SENDS.items():
        for recipients in sends:
            out.add("email_campaign.sent", out.at(0.0, 0.3), campaign_id=campaign, recipients=recipients)
    for campaign in EMAIL_CAMPAIGNS:
        for person in people:
            base = {"campaign_id": campaign, "contact_id": person}
            draw = rng.random()
            if draw < 0.05 and campaign in SENDS:  # an image proxy neither bounces nor unsubscribes
                out.add("email.bounced", out.at(0.3, 0.4), **base)
            elif draw < 0.45:
                for _ in range(rng.choice((1, 1, 2))):  # an open twice: one unique open
                    out.add("email.opened", out.at(0.3, 0.9), **base)
                if rng.random() < 0.35:
                    out.add("email.clicked", out.at(0.3, 0.9), **base)
                if rng.random() < 0.05 and campaign in SENDS:
                    out.add("email.unsubscribed", out.at(0.3, 0.9), **base)
            elif draw < 0.5:  # a click without an open (the pixel blocked): an implied open
                for _ in range(rng.choice((1, 2))):
                    out.add("email.clicked", out.at(0.3, 0.9), **base)


def _sessions(out: _Events, people: list[str]) -> None:
    rng = out.rng
    for person in [*people, *(None for _ in range(10))]:  # None: an anonymous visitor, no touch of anyone
        for _ in range(rng.randrange(4)):
            channel = rng.choice((*CHANNEL_CAMPAIGNS, "organic_search", None))
            campaign = rng.choice(CHANNEL_CAMPAIGNS.get(str(channel), (None,)))
            visit = {"visitor_id": f"v-{person}", "pageviews": rng.randrange(1, 6), "duration_seconds": 30}
            bot = True if rng.random() < 0.1 else None
            out.add("web.session", out.at(), contact_id=person, channel=channel, campaign_id=campaign, bot=bot, **visit)


def _amount(rng: random.Random) -> str:
    return f"{rng.randrange(100_000, 5_000_000) / 100:.2f}"


def _leads_and_deals(out: _Events, people: list[str], leads: int) -> None:
    rng = out.rng
    lead_ids = [f"lead-{n}" for n in range(leads)]
    for lead in lead_ids:
        if rng.random() < 0.1:
            continue  # its creation never arrives: its person is the lead itself, with no creation touch
        channel = rng.choice(LEAD_CHANNELS)
        campaign = rng.choice(CHANNEL_CAMPAIGNS.get(str(channel), (None,)))
        person = rng.choice([*people, None])
        created = out.at(0.2, 0.6)
        out.add("lead.created", created, lead_id=lead, contact_id=person, channel=channel, campaign_id=campaign)
        if rng.random() < 0.1:  # created again later, naming another person (and no channel)
            out.add("lead.created", created + rng.randrange(60, 86400), lead_id=lead, contact_id=rng.choice(people))
    for n in range(int(leads * 0.8)):
        deal = {"deal_id": f"deal-{n}", "currency": "USD"}
        lead = rng.choice([*lead_ids, None])
        opened = out.at(0.3, 0.6)
        named = rng.choice(tuple(CHANNEL_CAMPAIGNS))
        out.add("opportunity.created", opened, lead_id=lead, amount=_amount(rng), channel=named, **deal)
        closed = opened + rng.randrange(3600, int(0.3 * SPAN))
        story = rng.choices(("won", "lost", "won lost", "lost won", "moved", "open"), (40, 15, 8, 12, 10, 15))[0]
        for step, outcome in enumerate(story.split()):
            at = closed + step * rng.randrange(60, 86400)
            if outcome == "lost":
                out.add("deal.lost", at, reason="price", deal_id=deal["deal_id"])
            elif outcome == "won":
                out.add("deal.won", at, amount=_amount(rng), **deal)
            elif outcome == "moved":  # the win names another lead: the deal is that lead's now
                out.add("deal.won", at, amount=_amount(rng), lead_id=rng.choice(lead_ids), **deal)


def _spend(out: _Events) -> None:
    for channel, campaigns in {**CHANNEL_CAMPAIGNS, "email": ("newsletter", "webinar")}.items():
        for campaign in campaigns:
            for _ in range(2):
                amount = _amount(out.rng)
                out.add(
                    "spend.recorded", out.at(), channel=channel, campaign_id=campaign, amount=amount, currency="USD"
                )


def marketing_events(seed: int, end: int, people: int = 60, leads: int = 40) -> list[Event]:
    """The events of the module docstring, in the 20 days before ``end`` (epoch seconds), deterministic."""
    rng = random.Random(seed)
    out = _Events(f"mkt-{seed}", end - SPAN - 3600, rng)
    contacts = [f"p{n}" for n in range(people)]
    _email(out, contacts)
    _sessions(out, contacts)
    _leads_and_deals(out, contacts, leads)
    _spend(out)
    return out.items


# -- the offline computation -------------------------------------------------------------------------------------


def _instant(event: Mapping[str, Any]) -> int:
    return int(datetime.fromisoformat(str(event["occurred_at"]).replace("Z", "+00:00")).timestamp())


def _latest(current: tuple[Any, ...] | None, candidate: tuple[Any, ...]) -> tuple[Any, ...]:
    """Of (time, event id, value...) tuples, the later by time, then event id."""
    return candidate if current is None or candidate[:2] > current[:2] else current


@dataclass
class _Lead:
    created: int | None = None
    person: tuple[Any, ...] | None = None  # (time, event id, contact)
    channel: tuple[Any, ...] | None = None
    campaign: tuple[Any, ...] | None = None


@dataclass
class _Deal:
    lead: tuple[Any, ...] | None = None
    channel: tuple[Any, ...] | None = None
    campaign: tuple[Any, ...] | None = None
    outcome: tuple[Any, ...] | None = None  # (time, event id, "won" or "lost", amount)


@dataclass
class _Person:
    email: defaultdict[str, dict[str, list[int]]] = field(default_factory=lambda: defaultdict(dict))
    touches: list[tuple[int, str, str, str | None]] = field(default_factory=list)  # (time, id, channel, campaign)


@dataclass
class _World:
    leads: defaultdict[str, _Lead] = field(default_factory=lambda: defaultdict(_Lead))
    deals: defaultdict[str, _Deal] = field(default_factory=lambda: defaultdict(_Deal))
    people: defaultdict[str, _Person] = field(default_factory=lambda: defaultdict(_Person))
    sends: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    spend: defaultdict[Key, Fraction] = field(default_factory=lambda: defaultdict(Fraction))

    def read(self, event: Mapping[str, Any]) -> None:
        at, kind, event_id = _instant(event), event["type"], event["event_id"]
        campaign, channel = event.get("campaign_id"), event.get("channel")
        if kind == "email_campaign.sent":
            self.sends[campaign] += event["recipients"]
        elif kind.startswith("email."):
            person = self.people[event["contact_id"]]
            person.email[campaign].setdefault(kind.removeprefix("email."), []).append(at)
            if kind == "email.clicked":
                person.touches.append((at, event_id, "email", campaign))
        elif kind == "web.session":
            if event.get("contact_id") and not event.get("bot"):
                self.people[event["contact_id"]].touches.append((at, event_id, channel or "unknown", campaign))
        elif kind == "lead.created":
            lead = self.leads[event["lead_id"]]
            lead.created = at if lead.created is None else min(lead.created, at)
            lead.person = _latest(lead.person, (at, event_id, event.get("contact_id") or event["lead_id"]))
            if channel is not None:
                lead.channel = _latest(lead.channel, (at, event_id, channel))
            if campaign is not None:
                lead.campaign = _latest(lead.campaign, (at, event_id, campaign))
        elif kind in ("opportunity.created", "deal.won", "deal.lost"):
            deal = self.deals[event["deal_id"]]
            for name in ("lead_id", "channel", "campaign_id"):
                if event.get(name) is not None:
                    attribute = name.removesuffix("_id")
                    setattr(deal, attribute, _latest(getattr(deal, attribute), (at, event_id, event[name])))
            if kind != "opportunity.created":
                amount = Fraction(event["amount"]) if kind == "deal.won" else Fraction(0)
                deal.outcome = _latest(deal.outcome, (at, event_id, kind.removeprefix("deal."), amount))
        elif kind == "spend.recorded":
            amount = Fraction(event["amount"])
            for key in (("all", ""), ("channel", channel), *((("campaign", campaign),) if campaign else ())):
                self.spend[key] += amount


def _split(
    amount: Fraction, touches: list[tuple[int, str, str, str | None]]
) -> list[tuple[str, str | None, str, Fraction]]:
    """(channel, campaign, model, share) of one win."""
    ordered = sorted(touches) or [(0, "", "unknown", None)]
    shares = [(ordered[0][2], ordered[0][3], MODELS[0], amount), (ordered[-1][2], ordered[-1][3], MODELS[1], amount)]
    shares += [(channel, campaign, MODELS[2], amount / len(ordered)) for _, _, channel, campaign in ordered]
    return shares


def _ratio(numerator: Fraction, denominator: Fraction) -> Fraction | None:
    return None if denominator == 0 else numerator / denominator


def email_and_attribution_totals(events: Iterable[Mapping[str, Any]]) -> dict[Key, dict[str, Fraction | None]]:
    """Every counter and KPI of the module docstring per scope, over all ``events`` (copies counted once)."""
    world, seen = _World(), set()
    for event in events:
        if event["event_id"] not in seen:
            seen.add(event["event_id"])
            world.read(event)
    counts: defaultdict[Key, defaultdict[str, Fraction]] = defaultdict(lambda: defaultdict(Fraction))

    def count(channel: str | None, campaign: str | None, name: str, value: Fraction) -> None:
        for key in (
            ("all", ""),
            *((("channel", channel),) if channel else ()),
            *((("campaign", campaign),) if campaign else ()),
        ):
            counts[key][name] += value

    for campaign, recipients in world.sends.items():
        count(None, campaign, "email_campaign_sends", Fraction(recipients))
    for person in world.people.values():
        for campaign, reached in person.email.items():
            for kind, name in (("bounced", "email_bounces"), ("unsubscribed", "email_unsubscribes")):
                count(None, campaign, name, Fraction(kind in reached))
            count(None, campaign, "email_unique_opens", Fraction("opened" in reached or "clicked" in reached))
            count(None, campaign, "email_unique_clicks", Fraction("clicked" in reached))
    for lead in world.leads.values():
        person = world.people.get(lead.person[2]) if lead.person else None
        if lead.created is None or person is None:
            continue
        for campaign, reached in person.email.items():
            if "clicked" in reached and min(reached["clicked"]) <= lead.created:
                count(None, campaign, "email_leads", Fraction(1))
    for deal_id, deal in world.deals.items():
        if deal.outcome is None or deal.outcome[2] != "won":
            continue
        won_at, amount = deal.outcome[0], deal.outcome[3]
        count(None, None, "revenue", amount)
        if deal.lead is None:
            channel = deal.channel[2] if deal.channel else "unknown"
            touches = [(won_at, f"deal:{deal_id}", channel, deal.campaign[2] if deal.campaign else None)]
        else:
            lead_id = deal.lead[2]
            lead = world.leads.get(lead_id, _Lead())
            person = world.people[lead.person[2] if lead.person else lead_id]
            touches = [touch for touch in person.touches if touch[0] <= won_at]
            if lead.created is not None and lead.created <= won_at:
                channel = lead.channel[2] if lead.channel else "unknown"
                touches.append((lead.created, f"lead:{lead_id}", channel, lead.campaign[2] if lead.campaign else None))
        for channel, campaign, model, share in _split(amount, touches):
            count(channel, campaign, model, share)
    for key, amount in world.spend.items():
        counts[key]["marketing_spend"] += amount
    return {key: _with_kpis(values) for key, values in counts.items()}


def _with_kpis(values: Mapping[str, Fraction]) -> dict[str, Fraction | None]:
    v = defaultdict(Fraction, values)
    sends, bounces, opens, clicks = (
        v["email_campaign_sends"],
        v["email_bounces"],
        v["email_unique_opens"],
        v["email_unique_clicks"],
    )
    deliveries = sends - bounces
    spend = v["marketing_spend"]
    return {
        **values,
        "email_deliveries": deliveries,
        "email_delivery_rate": _ratio(deliveries, sends),
        "email_open_rate": _ratio(opens, deliveries),
        "email_click_through_rate": _ratio(clicks, deliveries),
        "email_click_to_open_rate": _ratio(clicks, opens),
        "email_bounce_rate": _ratio(bounces, sends),
        "email_unsubscribe_rate": _ratio(v["email_unsubscribes"], deliveries),
        "email_conversion_rate": _ratio(v["email_leads"], clicks),
        "romi": _ratio(v["attributed_revenue_linear"] - spend, spend),
    }
