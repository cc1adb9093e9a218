"""Deal and lead state: hand-computed facts, and independence from delivery order."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.config import KpimonConfig
from schemas.events import AnyEvent, parse_event
from schemas.scopes import Scope
from streams.core.facts import scopes_for
from streams.core.records import Accepted, Fact, Position
from streams.entities.deals_leads import (
    CYCLE_SAMPLE_PREFIX,
    LOST_STAGE_PREFIX,
    WON_STAGE_PREFIX,
    DealState,
    LeadState,
    apply_deal_event,
    apply_lead_event,
    deal_facts,
    empty_deal,
    empty_lead,
    fact_changes,
    lead_facts,
    open_deals,
)
from streams.entities.registry import apply_entity_events

T0 = 1_700_000_000
DAY = 86_400
RATES = {"USD": Decimal("1"), "EUR": Decimal("1.1")}


def to_usd(amount: Decimal, currency: str) -> float:
    return float(amount * RATES[currency])


def iso(at: int) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat()


def event(event_type: str, event_id: str, at: int, **fields: Any) -> AnyEvent:
    return parse_event(
        orjson.dumps({"event_id": event_id, "type": event_type, "occurred_at": iso(at), "source": "test", **fields})
    )


def created(event_id: str, at: int, amount: str = "1000", currency: str = "USD", **fields: Any) -> AnyEvent:
    return event("opportunity.created", event_id, at, deal_id="d1", amount=amount, currency=currency, **fields)


def won(event_id: str, at: int, amount: str = "900", **fields: Any) -> AnyEvent:
    return event("deal.won", event_id, at, deal_id="d1", amount=amount, currency="USD", **fields)


def lost(event_id: str, at: int, reason: str = "price") -> AnyEvent:
    return event("deal.lost", event_id, at, deal_id="d1", reason=reason)


def stage(event_id: str, at: int, to_stage: str) -> AnyEvent:
    return event("opportunity.stage_changed", event_id, at, deal_id="d1", from_stage="x", to_stage=to_stage)


def run_deal(events: Sequence[AnyEvent]) -> tuple[DealState, list[Fact]]:
    """Apply events in order; return the final state and the sum of all emitted changes."""
    state = empty_deal()
    emitted: list[Fact] = []
    for item in events:
        new = apply_deal_event(state, item, to_usd)  # type: ignore[arg-type]
        emitted += fact_changes(deal_facts("d1", state), deal_facts("d1", new))
        state = new
    return state, fact_changes([], emitted)


def as_table(facts: Sequence[Fact]) -> dict[tuple[int, str | None, str | None, str | None, str], float]:
    table: dict[tuple[int, str | None, str | None, str | None, str], float] = {}
    for fact in facts:
        for name, value in fact.counters.items():
            key = (fact.timestamp, fact.team, fact.rep, fact.channel, name)
            table[key] = table.get(key, 0.0) + value
    return {key: value for key, value in table.items() if value != 0}


def test_created_then_won_counts_the_opportunity_the_win_and_the_cycle() -> None:
    state, emitted = run_deal([created("c", T0, team="emea", rep_id="ann"), won("w", T0 + 3 * DAY)])
    assert as_table(emitted) == {
        (T0, "emea", "ann", "unknown", "opportunities_created"): 1,
        (T0 + 3 * DAY, "emea", "ann", "unknown", "deals_won"): 1,
        (T0 + 3 * DAY, "emea", "ann", "unknown", "revenue"): 900,
        (T0 + 3 * DAY, "emea", "ann", "unknown", "deals_won_timed"): 1,
        (T0 + 3 * DAY, "emea", "ann", "unknown", "cycle_seconds"): 3 * DAY,
        (T0 + 3 * DAY, "emea", "ann", "unknown", CYCLE_SAMPLE_PREFIX + "d1"): 3 * DAY,
        (T0 + 3 * DAY, "emea", "ann", "unknown", WON_STAGE_PREFIX + "unknown"): 1,  # won with no stage change
    }
    assert as_table(emitted) == as_table(deal_facts("d1", state))


def test_won_before_created_gets_its_cycle_when_the_creation_arrives() -> None:
    in_order = run_deal([created("c", T0, channel="web"), won("w", T0 + DAY)])[1]
    _, emitted = run_deal([won("w", T0 + DAY), created("c", T0, channel="web")])
    assert as_table(emitted) == as_table(in_order)
    assert as_table(emitted)[(T0 + DAY, None, None, "web", "cycle_seconds")] == DAY


def test_opened_at_gives_the_cycle_when_the_creation_never_arrives() -> None:
    _, emitted = run_deal([won("w", T0 + 2 * DAY, opened_at=iso(T0))])
    assert as_table(emitted)[(T0 + 2 * DAY, None, None, "unknown", "cycle_seconds")] == 2 * DAY
    assert (T0, None, None, "unknown", "opportunities_created") not in as_table(emitted)


def test_creation_time_beats_opened_at() -> None:
    _, emitted = run_deal([won("w", T0 + 2 * DAY, opened_at=iso(T0 - DAY)), created("c", T0)])
    assert as_table(emitted)[(T0 + 2 * DAY, None, None, "unknown", "cycle_seconds")] == 2 * DAY


def test_a_duplicate_changes_nothing() -> None:
    state, _ = run_deal([created("c", T0), won("w", T0 + DAY)])
    assert apply_deal_event(state, won("w", T0 + DAY), to_usd) is state  # type: ignore[arg-type]


def test_reopened_and_won_again_counts_once_at_the_last_win() -> None:
    _, emitted = run_deal(
        [
            created("c", T0),
            won("w1", T0 + DAY, amount="100"),
            stage("s", T0 + 2 * DAY, "negotiation"),
            won("w2", T0 + 5 * DAY, amount="120"),
        ]
    )
    table = as_table(emitted)
    assert table[(T0 + 5 * DAY, None, None, "unknown", "deals_won")] == 1
    assert table[(T0 + 5 * DAY, None, None, "unknown", "revenue")] == 120
    assert (T0 + DAY, None, None, "unknown", "deals_won") not in table
    assert sum(value for key, value in table.items() if key[4] == "deals_won") == 1


def test_a_later_win_replaces_a_loss_and_the_other_way_round() -> None:
    table = as_table(run_deal([created("c", T0), lost("l", T0 + DAY), won("w", T0 + 2 * DAY)])[1])
    assert table[(T0 + 2 * DAY, None, None, "unknown", "deals_won")] == 1
    assert not any(key[4] in ("deals_lost", "lost_reason:price") for key in table)
    table = as_table(run_deal([created("c", T0), won("w", T0 + DAY), lost("l", T0 + 2 * DAY)])[1])
    assert table[(T0 + 2 * DAY, None, None, "unknown", "deals_lost")] == 1
    assert table[(T0 + 2 * DAY, None, None, "unknown", "lost_reason:price")] == 1
    assert not any(key[4] == "deals_won" for key in table)


def test_the_outcome_counts_under_the_stage_it_closed_from_whatever_the_order() -> None:
    """Proposal on day 1, negotiation on day 2, won on day 3, moved to discovery on day 4 (re-opened there).

    By hand: the win counts under negotiation (the last stage change before it), once; the deal is open in
    discovery. The same in every delivery order, with copies.
    """
    history = [
        created("c", T0, amount="1000"),
        stage("s1", T0 + DAY, "proposal"),
        stage("s2", T0 + 2 * DAY, "negotiation"),
        won("w", T0 + 3 * DAY),
        stage("s3", T0 + 4 * DAY, "discovery"),
    ]
    expected = {(T0 + 3 * DAY, None, None, "unknown", WON_STAGE_PREFIX + "negotiation"): 1}
    for events in (history, history[::-1], [history[3], history[4], history[0], history[2], history[1], history[3]]):
        state, emitted = run_deal(events)
        table = as_table(emitted)
        assert {key: value for key, value in table.items() if "_stage:" in key[4]} == expected
        assert [(deal.stage, deal.amount) for deal in open_deals([("0|deal:d1", state)])] == [("discovery", 1000.0)]


def test_a_late_stage_change_moves_the_outcome_from_one_stage_to_another() -> None:
    """Lost on day 3 with no stage change known: under unknown; the change to proposal of day 2 arrives: moved."""
    state, _ = run_deal([created("c", T0), lost("l", T0 + 3 * DAY)])
    assert LOST_STAGE_PREFIX + "unknown" in deal_facts("d1", state)[-1].counters
    moved = apply_deal_event(state, stage("s", T0 + 2 * DAY, "proposal"), to_usd)  # type: ignore[arg-type]
    changes = as_table(fact_changes(deal_facts("d1", state), deal_facts("d1", moved)))
    assert changes == {
        (T0 + 3 * DAY, None, None, "unknown", LOST_STAGE_PREFIX + "unknown"): -1,
        (T0 + 3 * DAY, None, None, "unknown", LOST_STAGE_PREFIX + "proposal"): 1,
    }
    # a change after the loss re-opens the deal in its stage; the loss still counts under proposal
    reopened = apply_deal_event(moved, stage("s2", T0 + 4 * DAY, "negotiation"), to_usd)  # type: ignore[arg-type]
    assert as_table(fact_changes(deal_facts("d1", moved), deal_facts("d1", reopened))) == {}
    assert [deal.stage for deal in open_deals([("0|deal:d1", reopened)])] == ["negotiation"]
    assert [deal.stage for deal in open_deals([("0|deal:d1", run_deal([created("c", T0)])[0])])] == ["unknown"]


def test_amounts_in_the_reporting_currency() -> None:
    state, _ = run_deal([created("c", T0, amount="200", currency="EUR")])
    assert state["amount"] == 220.0  # Decimal 200 x 1.1, exact before the conversion to float


def test_a_reassigned_deal_moves_to_its_new_rep() -> None:
    _, emitted = run_deal([created("c", T0, team="emea", rep_id="ann"), won("w", T0 + DAY, team="emea", rep_id="bob")])
    table = as_table(emitted)
    assert table[(T0, "emea", "bob", "unknown", "opportunities_created")] == 1
    assert not any(key[2] == "ann" for key in table)


def run_lead(events: Sequence[AnyEvent]) -> tuple[LeadState, list[Fact]]:
    state = empty_lead()
    emitted: list[Fact] = []
    for item in events:
        new = apply_lead_event(state, item)  # type: ignore[arg-type]
        emitted += fact_changes(lead_facts(state), lead_facts(new))
        state = new
    return state, fact_changes([], emitted)


def lead_event(event_type: str, event_id: str, at: int, **fields: Any) -> AnyEvent:
    return event(event_type, event_id, at, lead_id="l1", **fields)


def test_a_lead_counts_once_per_stage_under_its_channel_whatever_the_order() -> None:
    _, emitted = run_lead(
        [
            lead_event("lead.qualified", "q1", T0 + 60, stage="mql"),
            lead_event("lead.created", "c", T0, channel="paid_search"),
            lead_event("lead.qualified", "q2", T0 + 30, stage="mql"),
            lead_event("lead.qualified", "q3", T0 + 90, stage="sql"),
        ]
    )
    assert as_table(emitted) == {
        (T0, None, None, "paid_search", "leads"): 1,
        (T0 + 30, None, None, "paid_search", "mqls"): 1,
        (T0 + 90, None, None, "paid_search", "sqls"): 1,
    }


def test_a_lead_without_channel_is_counted_under_unknown() -> None:
    _, emitted = run_lead([lead_event("lead.created", "c", T0)])
    assert as_table(emitted) == {(T0, None, None, "unknown", "leads"): 1}


DEAL_HISTORY = [
    created("c", T0, team="emea", rep_id="ann", channel="web", campaign_id="spring"),
    stage("s1", T0 + DAY, "proposal"),
    won("w1", T0 + 2 * DAY, amount="500", campaign_id="summer"),
    stage("s2", T0 + 3 * DAY, "negotiation"),
    lost("l1", T0 + 4 * DAY, reason="timing"),
    won("w2", T0 + 6 * DAY, amount="650", rep_id="bob"),
]


@settings(max_examples=200, deadline=None)
@given(order=st.permutations(range(len(DEAL_HISTORY))), copies=st.lists(st.integers(0, len(DEAL_HISTORY) - 1)))
def test_any_delivery_order_with_duplicates_gives_the_same_counts(order: list[int], copies: list[int]) -> None:
    in_order_state, in_order = run_deal(DEAL_HISTORY)
    shuffled = [DEAL_HISTORY[i] for i in order] + [DEAL_HISTORY[i] for i in copies]
    state, emitted = run_deal(shuffled)
    assert as_table(emitted) == as_table(in_order) == as_table(deal_facts("d1", in_order_state))
    assert deal_facts("d1", state) == deal_facts("d1", in_order_state)
    # the last win (day 6) closed from negotiation (day 3), the last stage change before it
    assert as_table(emitted)[(T0 + 6 * DAY, "emea", "bob", "web", WON_STAGE_PREFIX + "negotiation")] == 1


def test_a_batch_updates_each_entity_in_order_and_reports_each_records_changes() -> None:
    records = [
        Accepted(Position("crm", 2, 10), created("c", T0)),
        Accepted(
            Position("crm", 2, 11), event("call.logged", "x", T0, rep_id="ann", duration_seconds=5, outcome="connected")
        ),
        Accepted(Position("crm", 2, 12), won("w", T0 + DAY)),
        Accepted(Position("crm", 2, 13), won("w", T0 + DAY)),  # a copy: the deal has it already
        Accepted(Position("crm", 3, 5), lead_event("lead.created", "lc", T0, channel="web")),
    ]
    update = apply_entity_events(records, {}, to_usd)
    assert sorted(update.states) == ["2|deal:d1", "3|lead:l1"]
    assert update.duplicates == [Position("crm", 2, 13)]
    assert update.states["2|deal:d1"]["event_ids"] == ["c", "w"]
    assert set(update.facts) == {Position("crm", 2, 10), Position("crm", 2, 12), Position("crm", 3, 5)}
    assert as_table(update.facts[Position("crm", 2, 12)])[(T0 + DAY, None, None, "unknown", "deals_won")] == 1
    again = apply_entity_events(records, update.states, to_usd)
    assert again.states == {} and again.facts == {}
    assert len(again.duplicates) == 4  # every deal and lead event: their entities have them


def test_a_deal_naming_its_lead_converts_the_lead_once_per_stage() -> None:
    records = [
        Accepted(Position("crm", 0, 1), created("c", T0, lead_id="l1")),
        Accepted(Position("crm", 0, 2), won("w", T0 + 3 * DAY)),
        Accepted(Position("crm", 0, 3), stage("s", T0 + 4 * DAY, "negotiation")),
    ]
    update = apply_entity_events(records, {}, to_usd)
    conversions = [c for c in update.emitted if c["type"] == "lead.converted"]  # besides its outcome (attribution)
    assert [(c["event_id"], c["stage"], c["lead_id"], c["occurred_at"]) for c in conversions] == [
        ("kpimon-opportunity-d1", "opportunity", "l1", iso(T0)),
        ("kpimon-customer-d1", "customer", "l1", iso(T0 + 3 * DAY)),
    ]
    assert apply_entity_events(records, update.states, to_usd).emitted == []
    assert apply_entity_events([records[1]], {}, to_usd).emitted == []  # the lead is not known yet
    converted = lead_event("lead.converted", "kpimon-customer-d1", T0 + 3 * DAY, stage="customer", deal_id="d1")
    lead_update = apply_entity_events([Accepted(Position("crm", 1, 7), converted)], {}, to_usd)
    assert lead_update.states["1|lead:l1"]["customer_at"] == T0 + 3 * DAY  # type: ignore[typeddict-item]


@pytest.mark.parametrize("win_first", [True, False])
def test_a_win_replaced_by_a_later_loss_still_made_the_lead_a_customer_in_either_order(win_first: bool) -> None:
    created_, won_, lost_ = created("c", T0, lead_id="l1"), won("w", T0 + 3 * DAY), lost("x", T0 + 5 * DAY)
    closing = [won_, lost_] if win_first else [lost_, won_]
    records = [Accepted(Position("crm", 0, offset), event) for offset, event in enumerate([created_, *closing])]
    update = apply_entity_events(records, {}, to_usd)
    customer = [c for c in update.emitted if c["type"] == "lead.converted" and c["stage"] == "customer"]
    assert [(c["event_id"], c["occurred_at"]) for c in customer] == [("kpimon-customer-d1", iso(T0 + 3 * DAY))]


def test_a_converted_lead_counts_in_its_creation_cohort() -> None:
    _, emitted = run_lead(
        [
            lead_event("lead.converted", "k1", T0 + 9 * DAY, stage="customer", deal_id="d1"),
            lead_event("lead.created", "c", T0, channel="web"),
            lead_event("lead.converted", "k2", T0 + 2 * DAY, stage="opportunity", deal_id="d1"),
        ]
    )
    assert as_table(emitted) == {
        (T0, None, None, "web", "leads"): 1,
        (T0, None, None, "web", "cohort_opportunities"): 1,
        (T0, None, None, "web", "cohort_customers"): 1,
    }


# -- campaigns ---------------------------------------------------------------------------------------------------------


def by_campaign(facts: Sequence[Fact]) -> dict[tuple[int, str | None, str], float]:
    """Non-zero sums per (time, campaign, counter); campaign None: counted in no campaign."""
    table: dict[tuple[int, str | None, str], float] = {}
    for fact in facts:
        for name, value in fact.counters.items():
            table[fact.timestamp, fact.campaign, name] = table.get((fact.timestamp, fact.campaign, name), 0.0) + value
    return {key: value for key, value in table.items() if value != 0}


def test_a_lead_counts_its_stages_and_cohort_in_the_campaign_of_its_creation() -> None:
    _, emitted = run_lead(
        [
            lead_event("lead.qualified", "q1", T0 + 60, stage="mql"),  # before its creation arrived
            lead_event("lead.created", "c", T0, channel="paid_search", campaign_id="c1"),
            lead_event("lead.qualified", "q2", T0 + 90, stage="sql", rep_id="ann"),
            lead_event("lead.converted", "k1", T0 + DAY, stage="opportunity", deal_id="d1"),
            lead_event("lead.converted", "k2", T0 + 5 * DAY, stage="customer", deal_id="d1"),
        ]
    )
    assert by_campaign(emitted) == {
        (T0, "c1", "leads"): 1,
        (T0 + 60, "c1", "mqls"): 1,
        (T0 + 90, "c1", "sqls"): 1,
        (T0, "c1", "cohort_opportunities"): 1,
        (T0, "c1", "cohort_customers"): 1,
    }
    scopes = scopes_for(emitted[0].team, emitted[0].rep, emitted[0].channel, emitted[0].campaign, KpimonConfig())
    assert Scope(campaign="c1") in scopes


def test_a_deal_counts_its_opportunity_win_revenue_and_cycle_in_its_campaign() -> None:
    state, emitted = run_deal([created("c", T0, campaign_id="c2"), won("w", T0 + 2 * DAY)])
    assert by_campaign(emitted) == {
        (T0, "c2", "opportunities_created"): 1,
        (T0 + 2 * DAY, "c2", "deals_won"): 1,
        (T0 + 2 * DAY, "c2", "revenue"): 900,
        (T0 + 2 * DAY, "c2", "deals_won_timed"): 1,
        (T0 + 2 * DAY, "c2", "cycle_seconds"): 2 * DAY,
        (T0 + 2 * DAY, "c2", CYCLE_SAMPLE_PREFIX + "d1"): 2 * DAY,
        (T0 + 2 * DAY, "c2", WON_STAGE_PREFIX + "unknown"): 1,
    }
    still_open = run_deal([created("c", T0, campaign_id="c2")])[0]
    assert [deal.campaign for deal in open_deals([("0|deal:d1", still_open)])] == ["c2"]
    lost_deal = run_deal([created("c", T0, campaign_id="c2"), lost("l", T0 + DAY)])[1]
    assert by_campaign(lost_deal)[(T0 + DAY, "c2", "deals_lost")] == 1
    assert state["attributes"]["campaign"][0] == "c2"


def test_the_campaign_on_the_win_counts_when_the_creation_names_none() -> None:
    _, emitted = run_deal([created("c", T0), won("w", T0 + DAY, campaign_id="c3")])
    assert by_campaign(emitted)[(T0, "c3", "opportunities_created")] == 1
    assert by_campaign(emitted)[(T0 + DAY, "c3", "deals_won")] == 1


def test_without_a_campaign_nothing_counts_in_any_campaign() -> None:
    _, lead = run_lead(
        [lead_event("lead.created", "c", T0, channel="web"), lead_event("lead.qualified", "q", T0, stage="mql")]
    )
    _, deal = run_deal([created("c", T0, channel="web"), won("w", T0 + DAY)])
    assert {fact.campaign for fact in [*lead, *deal]} == {None}
    for fact in [*lead, *deal]:
        scopes = scopes_for(fact.team, fact.rep, fact.channel, fact.campaign, KpimonConfig())
        assert [scope.kind for scope in scopes] == ["all", "channel"]  # the channel, never a campaign


def test_a_later_event_naming_another_campaign_moves_the_deal_there() -> None:
    _, emitted = run_deal(
        [created("c", T0, campaign_id="c1"), won("w", T0 + 3 * DAY, campaign_id="c2"), stage("s", T0 + DAY, "proposal")]
    )
    table = by_campaign(emitted)
    assert table[(T0, "c2", "opportunities_created")] == 1
    assert table[(T0 + 3 * DAY, "c2", "deals_won")] == 1
    assert table[(T0 + 3 * DAY, "c2", "revenue")] == 900
    assert not any(campaign == "c1" for _, campaign, _ in table)
    # by event time, not by arrival: a creation that arrives last does not take the deal back to c1
    _, late_creation = run_deal(
        [won("w", T0 + 3 * DAY, campaign_id="c2"), stage("s", T0 + DAY, "proposal"), created("c", T0, campaign_id="c1")]
    )
    assert by_campaign(late_creation) == table


def test_moving_a_deal_between_campaigns_retracts_its_counts_from_the_first() -> None:
    state = run_deal([created("c", T0, campaign_id="c1"), won("w", T0 + DAY)])[0]
    moved = apply_deal_event(state, won("w2", T0 + 2 * DAY, amount="950", campaign_id="c2"), to_usd)  # type: ignore[arg-type]
    before = deal_facts("d1", state)
    changes = by_campaign(fact_changes(before, deal_facts("d1", moved)))
    assert changes[(T0, "c1", "opportunities_created")] == -1
    assert changes[(T0 + DAY, "c1", "deals_won")] == -1
    assert changes[(T0 + DAY, "c1", "revenue")] == -900
    assert changes[(T0, "c2", "opportunities_created")] == 1
    assert changes[(T0 + 2 * DAY, "c2", "deals_won")] == 1
    assert changes[(T0 + 2 * DAY, "c2", "revenue")] == 950


def test_a_win_with_its_cost_counts_in_the_profit_margin_and_a_later_win_replaces_it() -> None:
    at = 1_767_225_600
    _, facts = run_deal([won("w1", at, amount="1000", cost="600")])
    (fact,) = facts
    assert fact.counters["revenue_costed"] == 1000 and fact.counters["won_deal_costs"] == 600
    _, rewon = run_deal([won("w1", at, amount="1000", cost="600"), won("w2", at + 100, amount="1100")])
    totals: dict[str, float] = {}
    for item in rewon:
        for name, value in item.counters.items():
            totals[name] = totals.get(name, 0) + value
    assert "revenue_costed" not in totals and "won_deal_costs" not in totals  # the latest win gives no cost
    assert totals["revenue"] == 1100
