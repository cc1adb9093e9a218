"""The contact entity: the email funnel per campaign, leads after a click, and revenue attributed to touches."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from schemas.events import AnyEvent, parse_event
from streams.core.records import Fact
from streams.entities.attribution import FIRST, LAST, LINEAR
from streams.entities.contacts import ContactState, apply_contact_event, contact_facts, empty_contact
from streams.entities.deals_leads import fact_changes

T0 = 1_700_000_000
CONTACT = "c1"

Table = dict[tuple[int, str | None, str | None, str], float]  # (time, channel, campaign, counter) -> value


def iso(at: int) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat()


def event(event_type: str, event_id: str, at: int, **fields: Any) -> AnyEvent:
    body = {"event_id": event_id, "type": event_type, "occurred_at": iso(at), "source": "test", **fields}
    return parse_event(orjson.dumps(body))


def email(kind: str, event_id: str, at: int, campaign: str = "k1", contact: str = CONTACT) -> AnyEvent:
    return event(f"email.{kind}", event_id, at, campaign_id=campaign, contact_id=contact)


def session(event_id: str, at: int, channel: str | None = None, campaign: str | None = None, **extra: Any) -> AnyEvent:
    fields = {"visitor_id": "v1", "pageviews": 2, "duration_seconds": 30, "contact_id": CONTACT, **extra}
    fields |= {"channel": channel} if channel else {}
    return event("web.session", event_id, at, **fields | ({"campaign_id": campaign} if campaign else {}))


def stamp(value: str, at: int, event_id: str) -> dict[str, Any]:
    return {"value": value, "at": at, "event_id": event_id}


def won(deal: str, at: int, amount: float, lead: str = "l1", outcome: str = "won", **lead_stamp: Any) -> dict[str, Any]:
    named = stamp(lead, lead_stamp.get("named_at", T0), lead_stamp.get("named_by", f"o-{deal}"))
    return {
        "deal_id": deal,
        "lead": named,
        "outcome": outcome,
        "at": at,
        "event_id": f"w-{deal}-{at}",
        "amount": amount,
    }


def view(
    event_id: str,
    *,
    lead: str = "l1",
    person: dict[str, Any] | None = None,
    created_at: int | None = T0,
    channel: str | None = "social",
    campaign: str | None = None,
    deals: Sequence[dict[str, Any]] = (),
) -> AnyEvent:
    """A lead's view as kpimon sends it to the contact (the stamps of its lead.created: ``lc``)."""
    fields: dict[str, Any] = {"contact_id": CONTACT, "lead_id": lead, "created_at": created_at, "deals": list(deals)}
    fields["person"] = person or stamp(CONTACT, T0, "lc")
    fields["channel"] = stamp(channel, T0, "lc") if channel else None
    fields["campaign"] = stamp(campaign, T0, "lc") if campaign else None
    return event("contact.lead_updated", event_id, T0, **fields)


def run(events: Sequence[AnyEvent]) -> tuple[ContactState, Table]:
    """Apply in order; the final state and the sum of every change the events made."""
    state = empty_contact()
    changes: list[Fact] = []
    for item in events:
        new = apply_contact_event(state, item)  # type: ignore[arg-type]
        changes += fact_changes(contact_facts(CONTACT, state), contact_facts(CONTACT, new))
        state = new
    table: Table = {}
    for fact in fact_changes([], changes):
        assert fact.team is None and fact.rep is None
        for name, value in fact.counters.items():
            key = (fact.timestamp, fact.channel, fact.campaign, name)
            table[key] = table.get(key, 0.0) + value
    return state, {key: value for key, value in table.items() if abs(value) > 1e-9}


# -- the email funnel --------------------------------------------------------------------------------------------------


def test_first_open_click_bounce_and_unsubscribe_count_once_per_campaign_under_it() -> None:
    _, table = run(
        [
            email("opened", "o1", T0 + 60),
            email("opened", "o2", T0 + 120),  # opened again: still one unique open
            email("clicked", "k1", T0 + 90),
            email("clicked", "k2", T0 + 300),
            email("unsubscribed", "u1", T0 + 400),
            email("bounced", "b1", T0 + 5, campaign="k2"),
        ]
    )
    assert table == {
        (T0 + 60, None, "k1", "email_unique_opens"): 1,
        (T0 + 90, None, "k1", "email_unique_clicks"): 1,
        (T0 + 400, None, "k1", "email_unsubscribes"): 1,
        (T0 + 5, None, "k2", "email_bounces"): 1,
    }


def test_a_click_without_an_open_is_an_implied_open_at_the_click() -> None:
    _, table = run([email("clicked", "k1", T0 + 90)])
    assert table == {
        (T0 + 90, None, "k1", "email_unique_opens"): 1,
        (T0 + 90, None, "k1", "email_unique_clicks"): 1,
    }
    _, table = run([email("clicked", "k1", T0 + 90), email("opened", "o1", T0 + 200)])  # the open came after the click
    assert table[(T0 + 90, None, "k1", "email_unique_opens")] == 1
    assert (T0 + 200, None, "k1", "email_unique_opens") not in table


def test_an_open_without_any_send_counts() -> None:
    """Image proxies fetch the tracking pixel of every email; the contact knows nothing of sends."""
    _, table = run([email("opened", "o1", T0, campaign="never-sent")])
    assert table == {(T0, None, "never-sent", "email_unique_opens"): 1}


def test_a_duplicate_changes_nothing_and_returns_the_same_state() -> None:
    state, _ = run([email("opened", "o1", T0)])
    assert apply_contact_event(state, email("opened", "o1", T0)) is state  # type: ignore[arg-type]


def test_an_earlier_open_arriving_late_moves_the_open_back() -> None:
    _, in_order = run([email("opened", "o0", T0), email("clicked", "k1", T0 + 90)])
    _, late = run([email("clicked", "k1", T0 + 90), email("opened", "o0", T0)])
    assert late == in_order
    assert late[(T0, None, "k1", "email_unique_opens")] == 1


def test_any_order_and_copies_give_the_same_funnel() -> None:
    events = [
        email("opened", "o1", T0 + 60),
        email("clicked", "k1", T0 + 30),
        email("bounced", "b1", T0 + 1, campaign="k2"),
        email("unsubscribed", "u1", T0 + 400),
        email("opened", "o2", T0 + 10),
    ]
    expected = run(events)[1]
    for order in itertools.permutations(events):
        assert run([*order, order[0], order[2]])[1] == expected


def test_a_bot_session_is_no_touch_but_is_applied() -> None:
    state, table = run([session("s1", T0, "paid_search", bot=True)])
    assert state["touches"] == [] and state["event_ids"] == ["s1"]
    assert table == {}


# -- leads after a click -----------------------------------------------------------------------------------------------


def test_a_lead_created_after_a_click_counts_for_that_campaign_at_its_creation() -> None:
    _, table = run(
        [
            email("clicked", "k1", T0 - 100, campaign="newsletter"),
            email("clicked", "k2", T0 + 100, campaign="webinar"),  # after the lead: not its conversion
            email("opened", "o1", T0 - 200, campaign="promo"),  # opened, never clicked
            view("v1"),
        ]
    )
    assert {key: value for key, value in table.items() if key[3] == "email_leads"} == {
        (T0, None, "newsletter", "email_leads"): 1
    }


def test_a_click_arriving_after_the_lead_still_converts_it() -> None:
    _, table = run([view("v1"), email("clicked", "k1", T0, campaign="newsletter")])  # same second: at or before
    assert table[(T0, None, "newsletter", "email_leads")] == 1


def test_a_lead_of_another_person_is_not_this_contacts() -> None:
    moved = view("v2", person=stamp("c2", T0 + 50, "lc2"))  # a later lead.created names another contact
    _, table = run([email("clicked", "k1", T0 - 10), view("v1"), moved])
    assert not any(key[3] == "email_leads" for key in table)


# -- attribution -------------------------------------------------------------------------------------------------------


JOURNEY = [
    session("s1", T0 - 3000, "paid_search", "search-brand"),
    email("clicked", "k1", T0 - 2000, campaign="newsletter"),
    session("s2", T0 + 500, None),  # a session without channel: channel unknown
]


def attributed(table: Table) -> dict[tuple[int, str | None, str | None, str], float]:
    return {key: value for key, value in table.items() if key[3].startswith("attributed_revenue_")}


def test_a_hand_worked_attribution() -> None:
    """Touches: paid search (T0-3000), newsletter click (T0-2000), the lead's creation on social (T0), a session
    (T0+500); the deal is won at T0+1000 for 1200: 300 each linear, first to paid search, last to the session."""
    win = T0 + 1000
    _, table = run([*JOURNEY, view("v1", deals=[won("d1", win, 1200.0)])])
    assert attributed(table) == {
        (win, "paid_search", "search-brand", FIRST): 1200.0,
        (win, "paid_search", "search-brand", LINEAR): 300.0,
        (win, "email", "newsletter", LINEAR): 300.0,
        (win, "social", None, LINEAR): 300.0,
        (win, "unknown", None, LAST): 1200.0,
        (win, "unknown", None, LINEAR): 300.0,
    }


def test_touches_after_the_win_do_not_count_and_late_touches_re_attribute() -> None:
    win = T0 + 100  # before the session s2
    _, without = run([view("v1", deals=[won("d1", win, 600.0)])])
    assert attributed(without) == {(win, "social", None, model): 600.0 for model in (FIRST, LAST, LINEAR)}
    _, late = run([view("v1", deals=[won("d1", win, 600.0)]), *JOURNEY])  # the touches arrive after the win
    assert attributed(late) == {
        (win, "paid_search", "search-brand", FIRST): 600.0,
        (win, "paid_search", "search-brand", LINEAR): 200.0,
        (win, "email", "newsletter", LINEAR): 200.0,
        (win, "social", None, LAST): 600.0,
        (win, "social", None, LINEAR): 200.0,
    }


def test_a_win_without_any_touch_goes_to_channel_unknown() -> None:
    _, table = run([view("v1", created_at=None, channel=None, deals=[won("d1", T0, 50.0)])])
    assert attributed(table) == {(T0, "unknown", None, model): 50.0 for model in (FIRST, LAST, LINEAR)}


def test_a_re_won_deal_is_attributed_once_at_its_last_win_whatever_the_order() -> None:
    first_win = view("v1", deals=[won("d1", T0 + 10, 100.0)])
    lost = view("v2", deals=[won("d1", T0 + 20, 0.0, outcome="lost")])
    won_again = view("v3", deals=[won("d1", T0 + 30, 150.0)])
    expected = {(T0 + 30, "social", None, model): 150.0 for model in (FIRST, LAST, LINEAR)}
    for order in itertools.permutations([first_win, lost, won_again]):
        assert attributed(run(list(order))[1]) == expected
    assert attributed(run([won_again, first_win])[1]) == expected
    assert attributed(run([first_win, lost])[1]) == {}  # lost after the win: nothing left


def test_a_deal_moved_to_another_lead_is_attributed_by_that_lead_only() -> None:
    moved = won("d1", T0 + 10, 100.0, lead="l2", named_at=T0 + 5, named_by="o2")
    _, table = run([view("v1", deals=[won("d1", T0 + 10, 100.0)]), view("v2", deals=[moved])])
    assert attributed(table) == {}  # l1's view says d1 now names l2
    _, table = run([view("v3", lead="l2", deals=[moved])])
    assert attributed(table) == {(T0 + 10, "social", None, model): 100.0 for model in (FIRST, LAST, LINEAR)}


@pytest.mark.parametrize("order", list(itertools.permutations(range(5))))
def test_attribution_does_not_depend_on_the_order(order: tuple[int, ...]) -> None:
    events = [*JOURNEY, view("v1", channel="events", deals=[won("d1", T0 + 1000, 990.0)]), view("v0", channel="events")]
    expected = run(events)[1]
    assert run([events[i] for i in order] + [events[order[0]]])[1] == pytest.approx(expected)
