"""streams.entities.spend: a spend and its corrections counted once, at the latest amount, in any order and copies."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.events import SpendRecorded, entity_key, parse_event
from streams.core.records import Accepted, Fact, Position
from streams.entities.deals_leads import fact_changes
from streams.entities.registry import apply_entity_events
from streams.entities.spend import SpendState, apply_spend_event, empty_spend, spend_facts

T0 = 1_700_000_000
HOUR = 3600
RATES = {"USD": Decimal("1"), "EUR": Decimal("1.1")}


def to_usd(amount: Decimal, currency: str) -> float:
    return float(amount * RATES[currency])


def spend(event_id: str, at: int, amount: str, **fields: Any) -> SpendRecorded:
    data = {"event_id": event_id, "type": "spend.recorded", "occurred_at": datetime.fromtimestamp(at, UTC).isoformat()}
    data |= {"source": "test", "channel": "paid_search", "amount": amount, "currency": "USD", **fields}
    event = parse_event(orjson.dumps(data))
    assert isinstance(event, SpendRecorded)
    return event


def run(records: Sequence[SpendRecorded]) -> tuple[SpendState, list[Fact]]:
    """Apply records in order; the final state and the sum of the counter changes they made."""
    state = empty_spend()
    changes: list[Fact] = []
    for record in records:
        new = apply_spend_event(state, record, to_usd)
        changes += fact_changes(spend_facts("s1", state), spend_facts("s1", new))
        state = new
    return state, fact_changes([], changes)


def table(facts: Sequence[Fact]) -> dict[tuple[int, str | None, str | None, str], float]:
    """(time, channel, campaign, counter) -> amount, zero sums left out; spend is in no team or rep."""
    sums: dict[tuple[int, str | None, str | None, str], float] = {}
    for fact in facts:
        assert (fact.team, fact.rep) == (None, None)
        for name, value in fact.counters.items():
            key = (fact.timestamp, fact.channel, fact.campaign, name)
            sums[key] = sums.get(key, 0.0) + value
    return {key: round(value, 6) for key, value in sums.items() if round(value, 6) != 0}


ORIGINAL = spend("s1", T0, "100.00", campaign_id="brand")
CORRECTION = spend("s1-fix", T0 + 2 * HOUR, "80.00", replaces="s1", campaign_id="brand")


def test_a_record_counts_its_amount_at_its_time_under_its_channel_and_campaign() -> None:
    assert table(run([ORIGINAL])[1]) == {(T0, "paid_search", "brand", "marketing_spend"): 100.0}


def test_a_correction_replaces_the_amount_at_the_first_records_time() -> None:
    assert table(run([ORIGINAL, CORRECTION])[1]) == {(T0, "paid_search", "brand", "marketing_spend"): 80.0}


def test_a_correction_before_its_original_counts_at_once_and_moves_when_the_original_arrives() -> None:
    early = run([CORRECTION])
    assert table(early[1]) == {(T0 + 2 * HOUR, "paid_search", "brand", "marketing_spend"): 80.0}
    assert table(run([CORRECTION, ORIGINAL])[1]) == {(T0, "paid_search", "brand", "marketing_spend"): 80.0}


def test_before_the_original_the_earliest_record_seen_gives_the_time() -> None:
    later = spend("s1-fix2", T0 + 5 * HOUR, "70.00", replaces="s1", campaign_id="brand")
    assert table(run([later, CORRECTION])[1]) == {(T0 + 2 * HOUR, "paid_search", "brand", "marketing_spend"): 70.0}


def test_a_chain_of_corrections_counts_the_latest_by_event_time() -> None:
    second = spend("s1-fix2", T0 + 5 * HOUR, "95.50", replaces="s1", campaign_id="brand")
    expected = {(T0, "paid_search", "brand", "marketing_spend"): 95.5}
    assert table(run([ORIGINAL, CORRECTION, second])[1]) == expected
    assert table(run([second, ORIGINAL, CORRECTION])[1]) == expected  # an older correction arriving last loses


def test_equal_times_are_ordered_by_event_id() -> None:
    a = spend("fix-a", T0 + HOUR, "10.00", replaces="s1")
    b = spend("fix-b", T0 + HOUR, "20.00", replaces="s1")
    assert table(run([ORIGINAL, b, a])[1]) == {(T0, "paid_search", None, "marketing_spend"): 20.0}


def test_a_copy_changes_nothing() -> None:
    state, _ = run([ORIGINAL, CORRECTION])
    assert apply_spend_event(state, CORRECTION, to_usd) is state
    assert apply_spend_event(state, ORIGINAL, to_usd) is state


def test_a_correction_moving_channel_campaign_and_kind_retracts_the_first() -> None:
    moved = spend("s1-fix", T0 + HOUR, "40.00", replaces="s1", channel="social", kind="sales")
    assert table(run([ORIGINAL, moved])[1]) == {(T0, "social", None, "sales_spend"): 40.0}


def test_amounts_in_the_reporting_currency() -> None:
    assert table(run([spend("s2", T0, "200.00", currency="EUR")])[1]) == {
        (T0, "paid_search", None, "marketing_spend"): 220.0
    }


def test_sales_spend_is_its_own_counter() -> None:
    assert table(run([spend("s3", T0, "5000", kind="sales", channel="sales")])[1]) == {
        (T0, "sales", None, "sales_spend"): 5000.0
    }


def test_a_record_and_its_corrections_share_one_entity() -> None:
    assert entity_key(ORIGINAL) == entity_key(CORRECTION) == "spend:s1"


def test_a_batch_counts_each_spend_once_and_recognises_copies() -> None:
    records = [
        Accepted(Position("marketing", 1, 10), CORRECTION),
        Accepted(Position("marketing", 1, 11), ORIGINAL),
        Accepted(Position("marketing", 1, 12), ORIGINAL),  # a copy
    ]
    update = apply_entity_events(records, {}, to_usd)
    assert list(update.states) == ["1|spend:s1"]
    assert update.duplicates == [Position("marketing", 1, 12)]
    changes = [fact for facts in update.facts.values() for fact in facts]
    assert table(changes) == {(T0, "paid_search", "brand", "marketing_spend"): 80.0}
    again = apply_entity_events(records, update.states, to_usd)
    assert again.facts == {} and len(again.duplicates) == 3


CHAIN = [
    ORIGINAL,
    CORRECTION,
    spend("s1-fix2", T0 + 3 * HOUR, "64.25", replaces="s1", campaign_id="summer"),
    spend("s1-fix3", T0 - HOUR, "999.00", replaces="s1"),  # older than the original: never the latest
    spend("s1-fix4", T0 + 3 * HOUR, "12.00", replaces="s1", currency="EUR", channel="social"),  # ties by id: wins
]


@settings(max_examples=300, deadline=None)
@given(order=st.permutations(range(len(CHAIN))), copies=st.lists(st.integers(0, len(CHAIN) - 1), max_size=8))
def test_any_order_and_copies_of_a_chain_give_the_same_facts(order: list[int], copies: list[int]) -> None:
    in_order_state, in_order = run(CHAIN)
    state, changes = run([CHAIN[i] for i in order] + [CHAIN[i] for i in copies])
    expected = {(T0, "social", None, "marketing_spend"): 13.2}
    assert table(changes) == table(in_order) == table(spend_facts("s1", in_order_state)) == expected
    assert spend_facts("s1", state) == spend_facts("s1", in_order_state)


@settings(max_examples=200, deadline=None)
@given(
    order=st.permutations(range(len(CHAIN))),
    present=st.lists(st.booleans(), min_size=len(CHAIN), max_size=len(CHAIN)),
)
def test_any_subset_counts_its_latest_record_once(order: list[int], present: list[bool]) -> None:
    """Whatever part of the chain has arrived, exactly one amount counts: the latest record's."""
    arrived = [CHAIN[i] for i in order if present[i]]
    _, changes = run(arrived)
    if not arrived:
        assert table(changes) == {}
        return
    latest = max(arrived, key=lambda record: (record.occurred_at, record.event_id))
    times = [int(record.occurred_at.timestamp()) for record in arrived]
    at = T0 if ORIGINAL in arrived else min(times)
    counter = "marketing_spend"
    amount = round(to_usd(latest.amount, latest.currency), 6)
    assert table(changes) == {(at, latest.channel, latest.campaign_id, counter): amount}
