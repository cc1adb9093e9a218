"""Deals tell their leads, leads their contacts: the internal events, their merge, and exact attribution end to end.

The end-to-end tests run the real entity registry (``apply_entity_events``) as a small network: every event a
deal or lead emits is delivered back, in a random order, with copies, as the re-keyed topic would.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.events import AnyEvent, parse_event
from streams.core.records import Accepted, Fact, Position
from streams.entities.attribution import MODEL_COUNTERS
from streams.entities.lead_views import LeadView, merge_view
from streams.entities.registry import EntityState, apply_entity_events

T0 = 1_700_000_000
DAY = 86_400


def to_usd(amount: Decimal, currency: str) -> float:
    return float(amount)


def event(event_type: str, event_id: str, at: int, **fields: Any) -> AnyEvent:
    body = {"event_id": event_id, "type": event_type, "occurred_at": datetime.fromtimestamp(at, UTC).isoformat()}
    return parse_event(orjson.dumps(body | {"source": "test"} | {k: v for k, v in fields.items() if v is not None}))


class Network:
    """Entities of one partition; what they emit is delivered again like any other event."""

    def __init__(self) -> None:
        self.states: dict[str, EntityState] = {}
        self.facts: list[Fact] = []
        self.offset = 0

    def apply(self, item: AnyEvent) -> list[AnyEvent]:
        self.offset += 1
        update = apply_entity_events([Accepted(Position("t", 0, self.offset), item)], self.states, to_usd)
        self.states.update(update.states)
        self.facts += [fact for facts in update.facts.values() for fact in facts]
        return [parse_event(orjson.dumps(emitted)) for emitted in update.emitted]

    def deliver_in_order(self, events: Sequence[AnyEvent]) -> None:
        """Each event, then what it caused, depth first."""
        for item in events:
            self.deliver_in_order(self.apply(item))

    def deliver_shuffled(self, events: Sequence[AnyEvent], rng: random.Random, copies: float = 0.3) -> None:
        pending = [*events, *(item for item in events if rng.random() < copies)]
        while pending:
            item = pending.pop(rng.randrange(len(pending)))
            emitted = self.apply(item)
            pending += emitted + [copy for copy in emitted if rng.random() < copies]  # a re-send after a crash

    def totals(self) -> dict[tuple[Any, ...], float]:
        """Every counter but the lead cohorts': a win later replaced by a loss converts its lead only if the lead
        hears of it first (``lead.converted`` is never withdrawn), so those depend on the order."""
        table: dict[tuple[Any, ...], float] = {}
        for fact in self.facts:
            for name, value in fact.counters.items():
                if name.startswith("cohort_"):
                    continue
                key = (fact.timestamp, fact.team, fact.rep, fact.channel, fact.campaign, name)
                table[key] = table.get(key, 0.0) + value
        return {key: value for key, value in table.items() if abs(value) > 1e-6}

    def summed(self, counter: str) -> float:
        return sum(value for fact in self.facts for name, value in fact.counters.items() if name == counter)


def emitted_of(events: Sequence[AnyEvent]) -> list[dict[str, Any]]:
    update = apply_entity_events([Accepted(Position("t", 0, n), item) for n, item in enumerate(events)], {}, to_usd)
    return update.emitted


# -- what is sent ------------------------------------------------------------------------------------------------------


def test_a_closed_deal_tells_every_lead_it_named_its_latest_outcome() -> None:
    deal = dict(deal_id="d1", amount="100", currency="USD")
    created = event("opportunity.created", "c", T0, lead_id="l1", **deal)
    won = event("deal.won", "w", T0 + DAY, lead_id="l2", **deal)  # names another lead
    sent = [item for item in emitted_of([created, won]) if item["type"] == "lead.deal_closed"]
    assert [(item["lead_id"], item["deal"]["lead"]["value"], item["deal"]["outcome"]) for item in sent] == [
        ("l1", "l2", "won"),  # l1 learns the deal is l2's now
        ("l2", "l2", "won"),
    ]
    assert all(item["source"] == "kpimon" and item["event_id"].startswith("kpimon-") for item in sent)
    assert sent == [item for item in emitted_of([created, won]) if item["type"] == "lead.deal_closed"]  # stable ids


def test_an_open_deal_tells_nothing() -> None:
    created = event("opportunity.created", "c", T0, lead_id="l1", deal_id="d1", amount="100", currency="USD")
    assert [item["type"] for item in emitted_of([created])] == ["lead.converted"]


def test_a_lead_tells_its_person_once_created_and_both_people_when_its_person_changes() -> None:
    created = event("lead.created", "lc1", T0, lead_id="l1", channel="social")
    assert [(e["contact_id"], e["person"]) for e in emitted_of([created])] == [
        ("l1", {"value": "l1", "at": T0, "event_id": "lc1"})  # no contact_id: the lead_id
    ]
    again = event("lead.created", "lc2", T0 + 60, lead_id="l1", contact_id="c9")
    sent = emitted_of([created, again])
    assert [e["contact_id"] for e in sent] == ["l1", "l1", "c9"]
    assert sent[-2]["person"] == sent[-1]["person"] == {"value": "c9", "at": T0 + 60, "event_id": "lc2"}
    qualified = event("lead.qualified", "q", T0 + 120, lead_id="l1", stage="mql")
    assert emitted_of([created, qualified]) == emitted_of([created])  # nothing attribution needs changed


def test_views_merge_to_the_latest_whatever_the_order() -> None:
    old: LeadView = {"person": ["c1", T0, "a"], "created_at": T0 + 5, "channel": None, "campaign": None, "deals": {}}
    new: LeadView = {
        "person": ["c2", T0 + 9, "b"],
        "created_at": T0,
        "channel": ["email", T0 + 9, "b"],
        "campaign": None,
        "deals": {"d1": {"lead": ["l1", T0, "o"], "outcome": "won", "at": T0 + 99, "event_id": "w", "amount": 5.0}},
    }
    assert merge_view(old, new) == merge_view(new, old) == {**new, "created_at": T0}
    assert merge_view(merge_view(None, new), new) == new


# -- end to end: deals, leads and contacts, in any order ---------------------------------------------------------------


def journey(rng: random.Random, leads: int, deals: int, touches: int) -> list[AnyEvent]:
    """Leads of a few people, their sessions and email clicks, and deals won, lost, re-won and moved between leads."""
    events: list[AnyEvent] = []
    people = ["p0", "p1", "p2"]
    channels = ["paid_search", "social", "events", None]
    campaigns = ["k1", "k2", None]

    def at() -> int:
        return T0 + rng.randrange(30 * DAY)

    for n in range(leads):
        if rng.random() < 0.85:  # else the lead's creation never arrives
            fields = {"channel": rng.choice(channels), "campaign_id": rng.choice(campaigns)}
            contact = rng.choice([*people, None])
            events.append(event("lead.created", f"lc{n}", at(), lead_id=f"l{n}", contact_id=contact, **fields))
            if rng.random() < 0.15:  # a second lead.created naming another person
                events.append(event("lead.created", f"lc{n}b", at(), lead_id=f"l{n}", contact_id=rng.choice(people)))
    for n in range(touches):
        person = rng.choice([*people, "l0"])
        if rng.random() < 0.5:
            events.append(
                event("email.clicked", f"k{n}", at(), contact_id=person, campaign_id=rng.choice(["k1", "k2"]))
            )
        else:
            source = {"channel": rng.choice(channels), "campaign_id": rng.choice(campaigns), "bot": rng.random() < 0.2}
            visit = {"visitor_id": "v", "pageviews": 1, "duration_seconds": 5}
            events.append(event("web.session", f"s{n}", at(), contact_id=person, **visit, **source))
    for n in range(deals):
        deal = {"deal_id": f"d{n}", "currency": "USD"}
        lead = rng.choice([f"l{i}" for i in range(leads)] + [None])
        opened = at()
        events.append(
            event("opportunity.created", f"o{n}", opened, lead_id=lead, amount="100", channel="events", **deal)
        )
        for step in range(rng.randrange(4)):
            closed = opened + rng.randrange(1, 20 * DAY)
            amount = str(Decimal(rng.randrange(1, 10**6)) / 100)
            if rng.random() < 0.6:
                moved = rng.choice([None, None, f"l{rng.randrange(leads)}"])
                events.append(event("deal.won", f"w{n}-{step}", closed, amount=amount, lead_id=moved, **deal))
            else:
                events.append(event("deal.lost", f"x{n}-{step}", closed, reason="price", deal_id=f"d{n}"))
    return events


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10**9), leads=st.integers(1, 4), deals=st.integers(0, 5), touches=st.integers(0, 8))
def test_every_model_sums_to_the_won_revenue_in_any_order_with_copies(
    seed: int, leads: int, deals: int, touches: int
) -> None:
    rng = random.Random(seed)
    events = journey(rng, leads, deals, touches)
    in_order = Network()
    in_order.deliver_in_order(sorted(events, key=lambda item: (item.occurred_at, item.event_id)))
    revenue = in_order.summed("revenue")
    for model in MODEL_COUNTERS:
        assert math.isclose(in_order.summed(model), revenue, rel_tol=1e-9, abs_tol=1e-6), model
    shuffled = Network()
    shuffled.deliver_shuffled(events, rng)
    expected = in_order.totals()
    observed = shuffled.totals()
    assert observed.keys() == expected.keys()
    for key, value in expected.items():
        assert math.isclose(observed[key], value, rel_tol=1e-9, abs_tol=1e-6), key


def test_a_hand_worked_chain_from_deal_to_person() -> None:
    """p1 clicks the newsletter, then creates lead l1 on social; deal d1 naming l1 is won for 900, and later a web
    session of p1 from paid search before the win arrives: 300 each linear, first email, last paid search."""
    win = T0 + 10 * DAY
    network = Network()
    network.deliver_in_order(
        [
            event("email.clicked", "k1", T0 - DAY, contact_id="p1", campaign_id="newsletter"),
            event("lead.created", "lc1", T0, lead_id="l1", contact_id="p1", channel="social"),
            event("opportunity.created", "o1", T0 + DAY, deal_id="d1", lead_id="l1", amount="800", currency="USD"),
            event("deal.won", "w1", win, deal_id="d1", amount="900", currency="USD"),
            event("web.session", "s1", T0 + 5 * DAY, contact_id="p1", channel="paid_search", visitor_id="v",
                  pageviews=3, duration_seconds=60),
        ]
    )  # fmt: skip
    attributed = {
        (key[3], key[4], key[5]): value for key, value in network.totals().items() if key[5] in MODEL_COUNTERS
    }
    assert attributed == {
        ("email", "newsletter", "attributed_revenue_first"): 900.0,
        ("email", "newsletter", "attributed_revenue_linear"): 300.0,
        ("social", None, "attributed_revenue_linear"): 300.0,
        ("paid_search", None, "attributed_revenue_last"): 900.0,
        ("paid_search", None, "attributed_revenue_linear"): 300.0,
    }
    assert network.totals()[(T0, None, None, None, "newsletter", "email_leads")] == 1


def test_a_deal_without_a_lead_is_its_own_touch_until_one_is_named() -> None:
    deal = {"deal_id": "d1", "amount": "500", "currency": "USD"}
    network = Network()
    network.deliver_in_order(
        [
            event("opportunity.created", "o1", T0, channel="events", campaign_id="trade-show", **deal),
            event("deal.won", "w1", T0 + DAY, **deal),
        ]
    )
    table = network.totals()
    assert {key[5]: (key[3], key[4], value) for key, value in table.items() if key[5] in MODEL_COUNTERS} == {
        model: ("events", "trade-show", 500.0) for model in MODEL_COUNTERS
    }
    network.deliver_in_order([event("deal.won", "w2", T0 + DAY, lead_id="l7", **deal)])  # the lead, never created
    table = network.totals()
    assert {key[5]: (key[3], key[4], value) for key, value in table.items() if key[5] in MODEL_COUNTERS} == {
        model: ("unknown", None, 500.0) for model in MODEL_COUNTERS
    }
