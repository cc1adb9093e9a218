"""streams.entities.retention: caps on every list an entity keeps, and when a state may be evicted."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest

from schemas.events import parse_event
from streams.core.records import Accepted, Position
from streams.entities.contacts import apply_contact_event, contact_facts, empty_contact
from streams.entities.deals_leads import apply_deal_event, empty_deal
from streams.entities.registry import apply_entity_events
from streams.entities.retention import (
    ENTITY_RETENTION_SECONDS,
    MAX_CONTACT_DEALS,
    MAX_EMAIL_CAMPAIGNS,
    MAX_EVENT_IDS,
    MAX_NAMED,
    MAX_STAGES,
    MAX_STATE_BYTES,
    MAX_TOUCHES,
    MAX_VIEWS,
    cap_contact,
    capped,
    capped_touches,
    evictable,
    is_closed,
    keeps_view,
    with_activity,
)

AT = 1_764_590_400  # 2025-12-01 12:00 UTC


def event(event_type: str, event_id: str, at: int = AT, **fields: Any) -> Any:
    payload = {"event_id": event_id, "type": event_type, "source": "test", **fields}
    payload["occurred_at"] = datetime.fromtimestamp(at, UTC).isoformat()
    return parse_event(orjson.dumps(payload))


def to_usd(amount: Decimal, currency: str) -> float:
    return float(amount)


def test_capped_keeps_the_latest_and_the_one_to_keep() -> None:
    assert capped([1, 2, 3], 5) == [1, 2, 3]
    assert capped([1, 2, 3, 4, 5], 3) == [3, 4, 5]
    assert capped([1, 2, 3, 4, 5], 3, keep=1) == [1, 4, 5]
    assert capped([1, 2, 3, 4, 5], 3, keep=4) == [3, 4, 5]
    assert capped([1, 2, 3, 4, 5], 3, keep=9) == [3, 4, 5]


def test_capped_touches_keep_the_first_and_the_latest() -> None:
    touches = [[AT + n, f"t{n}", "web", None] for n in range(MAX_TOUCHES + 10)]
    kept = capped_touches(list(reversed(touches)))
    assert len(kept) == MAX_TOUCHES
    assert kept[0] == touches[0] and kept[1:] == touches[11:]


def test_views_are_kept_up_to_the_cap() -> None:
    views = {f"l{n}": {} for n in range(MAX_VIEWS)}
    assert keeps_view(views, "l0") and not keeps_view(views, "new")
    assert keeps_view({}, "new")


def test_event_ids_are_capped_and_the_latest_event_time_kept() -> None:
    records = [
        Accepted(
            Position("crm", 0, n),
            event("opportunity.stage_changed", f"s{n}", AT + n, deal_id="d", from_stage="a", to_stage="b"),
        )
        for n in range(MAX_EVENT_IDS + 5)
    ]
    records.append(
        Accepted(
            Position("crm", 0, 999),
            event("opportunity.stage_changed", "old", AT - 86_400, deal_id="d", from_stage="a", to_stage="b"),
        )
    )
    state = apply_entity_events(records, {}, to_usd).states["0|deal:d"]
    assert len(state["event_ids"]) == MAX_EVENT_IDS and state["event_ids"][-1] == "old"
    assert state["last_at"] == AT + MAX_EVENT_IDS + 4  # a late-arriving older event does not move it back


def test_a_deal_keeps_its_latest_max_stages_stage_changes_in_time_order() -> None:
    """Stage changes every minute, delivered newest first, and an old one last: the latest ``MAX_STAGES`` stay."""
    changes = [
        event("opportunity.stage_changed", f"s{n}", AT + 60 * n, deal_id="d", from_stage="a", to_stage=f"stage {n}")
        for n in range(MAX_STAGES + 8)
    ]
    late = event("opportunity.stage_changed", "old", AT - 86_400, deal_id="d", from_stage="a", to_stage="first")
    records = [Accepted(Position("crm", 0, n), change) for n, change in enumerate([*changes[::-1], late])]
    state = apply_entity_events(records, {}, to_usd).states["0|deal:d"]
    assert [stamp[0] for stamp in state["stages"]] == [f"stage {n}" for n in range(8, MAX_STAGES + 8)]
    assert state["stage"][0] == f"stage {MAX_STAGES + 7}"
    again = apply_deal_event({**state, "event_ids": []}, changes[-1], to_usd)  # its id forgotten
    assert again["stages"] == state["stages"]


def test_a_deal_names_at_most_max_named_leads_and_always_its_current_one() -> None:
    records = [
        Accepted(
            Position("crm", 0, n),
            event("opportunity.created", f"o{n}", AT + n, deal_id="d", lead_id=f"l{n}", amount="10", currency="USD"),
        )
        for n in range(MAX_NAMED + 3)
    ]
    # the latest by event time is the first record: it stays the deal's lead while others are named after it
    records[0] = Accepted(
        Position("crm", 0, 0),
        event("opportunity.created", "o0", AT + 10_000, deal_id="d", lead_id="l0", amount="10", currency="USD"),
    )
    state = apply_entity_events(records, {}, to_usd).states["0|deal:d"]
    assert len(state["leads"]) == MAX_NAMED
    assert state["leads"][0] == "l0" and state["attributes"]["lead"][0] == "l0"


def test_applying_an_event_again_gives_the_same_state_once_its_id_is_forgotten() -> None:
    """What makes the event-id cap safe: a copy applied again changes nothing."""
    won = event("deal.won", "w", deal_id="d", amount="5", currency="USD", lead_id="l")
    once = apply_deal_event(empty_deal(), won, to_usd)
    again = apply_deal_event({**once, "event_ids": []}, won, to_usd)
    assert {**again, "event_ids": []} == {**once, "event_ids": []}
    click = event("email.clicked", "c", campaign_id="k", contact_id="p")
    session = event("web.session", "s", visitor_id="v", pageviews=1, duration_seconds=5, contact_id="p")
    contact = apply_contact_event(apply_contact_event(empty_contact(), click), session)
    forgotten = {**contact, "event_ids": []}
    twice = apply_contact_event(apply_contact_event(forgotten, click), session)
    assert {**twice, "event_ids": []} == forgotten  # no second touch


OLD = AT - ENTITY_RETENTION_SECONDS - 1


@pytest.mark.parametrize(
    ("kind", "state", "closed", "evicted"),
    [
        pytest.param(
            "deal",
            {"created_at": AT, "outcome": None, "stage": None, "last_at": OLD},
            False,
            False,
            id="an open deal is kept however old",
        ),
        pytest.param(
            "deal",
            {"created_at": AT, "outcome": {"at": AT, "event_id": "w"}, "stage": None, "last_at": OLD},
            True,
            True,
            id="a won deal past the retention",
        ),
        pytest.param(
            "deal",
            {"created_at": AT, "outcome": {"at": AT, "event_id": "w"}, "stage": None, "last_at": OLD + 1},
            True,
            False,
            id="a won deal inside the retention",
        ),
        pytest.param("lead", {"last_at": OLD}, True, True, id="a lead"),
        pytest.param("contact", {"last_at": OLD}, True, True, id="a contact without touches since"),
        pytest.param("spend", {"last_at": OLD}, True, True, id="a spend chain"),
        pytest.param("lead", {}, True, False, id="no time: kept"),
    ],
)
def test_evictable(kind: str, state: dict[str, Any], closed: bool, evicted: bool) -> None:
    assert is_closed(kind, state) is closed
    assert evictable(kind, state, AT) is evicted


def test_a_late_event_creates_no_entity_but_updates_one_that_exists() -> None:
    created = Accepted(
        Position("crm", 0, 1), event("opportunity.created", "o", OLD, deal_id="d", amount="1", currency="USD")
    )
    assert apply_entity_events([created], {}, to_usd, late={created.position}).states == {}
    stored = {
        "0|deal:d": apply_deal_event(
            empty_deal(), event("deal.won", "w", deal_id="d", amount="5", currency="USD"), to_usd
        )
    }
    update = apply_entity_events([created], stored, to_usd, late={created.position})
    assert update.states["0|deal:d"]["created_at"] == OLD


def _longest(prefix: str, n: int, length: int = 200) -> str:
    """An id (200 characters) or label (100) at the contract's longest."""
    return f"{prefix}{n}".ljust(length, "x")


def _stamp(n: int) -> dict[str, Any]:
    return {"value": _longest("v", n), "at": AT, "event_id": _longest("s", n)}


def _lead_view(n: int, deals: int) -> Any:
    outcomes = [
        {"deal_id": _longest("d", m), "lead": _stamp(m), "outcome": "won", "at": AT, "event_id": _longest("x", m)}
        | {"amount": 1e15}
        for m in range(n * 1000, n * 1000 + deals)
    ]
    return event(
        "contact.lead_updated",
        _longest("u", n),
        contact_id="c",
        lead_id=_longest("l", n),
        person=_stamp(n),
        created_at=AT,
        channel=_stamp(n),
        campaign=_stamp(n),
        deals=outcomes,
    )


def _applied(state: Any, at: int, contact_event: Any) -> Any:
    new = apply_contact_event(state, contact_event)
    return cap_contact("c", with_activity(new, state, at))


def test_a_contact_on_10000_web_sessions_and_every_other_list_at_its_cap_stays_under_its_size_bound() -> None:
    state: Any = empty_contact()
    for n in range(10_000):
        session = event(
            "web.session",
            _longest("w", n),
            visitor_id="v",
            pageviews=1,
            duration_seconds=1,
            channel=_longest("ch", n, 100),
            campaign_id=_longest("cp", n),
            contact_id="c",
        )
        state = _applied(state, AT + n, session)
    for n in range(2_000):
        state = _applied(
            state, AT, event("email.clicked", _longest("e", n), campaign_id=_longest("cm", n), contact_id="c")
        )
    for n in range(100):
        state = _applied(state, AT, _lead_view(n, 100))
    assert len(state["touches"]) == MAX_TOUCHES and len(state["event_ids"]) == MAX_EVENT_IDS
    assert len(state["email"]) == MAX_EMAIL_CAMPAIGNS + 1  # and "other"
    assert len(state["leads"]) == MAX_VIEWS
    assert sum(len(view["deals"]) for view in state["leads"].values()) == MAX_CONTACT_DEALS
    assert len(orjson.dumps(state)) < MAX_STATE_BYTES


def test_email_campaigns_past_the_cap_count_under_other_and_every_first_engagement_counts_once() -> None:
    state: Any = empty_contact()
    for n in range(MAX_EMAIL_CAMPAIGNS + 5):
        state = apply_contact_event(state, event("email.opened", f"o{n}", campaign_id=f"c{n}", contact_id="p"))
    opens = [fact for fact in contact_facts("p", state) if "email_unique_opens" in fact.counters]
    by_campaign = {fact.campaign: fact.counters["email_unique_opens"] for fact in opens}
    assert len(by_campaign) == MAX_EMAIL_CAMPAIGNS + 1 and by_campaign["other"] == 1  # one contact: one unique open


def test_a_view_past_the_contacts_deal_cap_keeps_the_deals_it_has_and_new_ones_by_id() -> None:
    state: Any = empty_contact()
    state = apply_contact_event(state, _lead_view(0, MAX_CONTACT_DEALS - 2))
    state = apply_contact_event(state, _lead_view(1, 5))
    kept = state["leads"][_longest("l", 1)]["deals"]
    assert sorted(kept) == sorted(_longest("d", m) for m in range(1000, 1005))[:2]
    again = apply_contact_event(state, _lead_view(1, 5))  # the same lead's deals again: nothing new, nothing lost
    assert again["leads"][_longest("l", 1)]["deals"].keys() == kept.keys()
