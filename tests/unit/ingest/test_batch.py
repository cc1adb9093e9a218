"""streams.ingest.batch.plan_batch: a batch's writes in stages, in the order they must become durable."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

import orjson

from schemas.config import KpimonConfig
from schemas.events import parse_event
from streams.core.dedup import MemorySeen, chunk_key, copy_code, encode_chunk, id_hash, seen_day
from streams.core.records import Accepted, Position, Record, Rejected
from streams.core.validation import Rejection
from streams.ingest.batch import StoredState, plan_batch
from streams.readout.kpis import monthly_totals

AT = 1_764_590_400  # 2025-12-01 12:00 UTC
CONFIG = KpimonConfig(currency_rates={"USD": Decimal(1)})


def accepted(offset: int, event_type: str, event_id: str, **fields: Any) -> Accepted:
    payload = {"event_id": event_id, "type": event_type, "source": "test", **fields}
    payload["occurred_at"] = datetime.fromtimestamp(AT, UTC).isoformat()
    return Accepted(Position("crm", 0, offset), parse_event(orjson.dumps(payload)))


def empty_state() -> StoredState:
    return StoredState(MemorySeen(), groups={}, progress={}, entities={})


def test_a_call_writes_its_id_before_its_counters() -> None:
    call: list[Record] = [accepted(0, "call.logged", "c1", rep_id="ann", duration_seconds=60, outcome="connected")]
    plan = plan_batch(call, empty_state(), CONFIG)
    assert [stage.name for stage in plan.stages] == ["seen", "progress", "counters"]
    seen, progress, counters = plan.stages
    assert list(seen.seen) == [0] and set(seen.seen[0].entries) == {id_hash("c1")}
    assert seen.seen[0].day == seen_day(AT)
    assert progress.progress["0"]["offsets"] == {"crm": 0}  # after the ids, before any group
    assert counters.groups and not counters.progress and not counters.entities and not counters.emitted


def test_a_deal_naming_its_lead_writes_its_state_after_its_counters_and_the_event_for_its_lead() -> None:
    opened = accepted(0, "opportunity.created", "o1", deal_id="d1", lead_id="l1", amount="100", currency="USD")
    plan = plan_batch([opened], empty_state(), CONFIG)
    assert [stage.name for stage in plan.stages] == ["seen", "progress", "counters", "entities"]
    _, _, counters, entities = plan.stages
    assert [event["type"] for event in counters.emitted] == ["lead.converted"]
    assert list(entities.entities) == ["0|deal:d1"]


def test_a_batch_of_copies_and_rejections_writes_only_its_progress() -> None:
    first = accepted(0, "email.sent", "e1", rep_id="ann", contact_id="x")
    index = MemorySeen()
    index[chunk_key(0, seen_day(AT), "run-1")] = encode_chunk({id_hash("e1"): copy_code("crm", 0)})
    copy = Accepted(Position("crm", 0, 1), first.event)
    rejected: Record = Rejected(Position("crm", 0, 2), Rejection("invalid_json", "not JSON"))
    plan = plan_batch([copy, rejected], StoredState(index, {}, {}, {}), CONFIG)
    assert [stage.name for stage in plan.stages] == ["progress"]
    progress = plan.stages[0].progress["0"]
    assert progress["offsets"] == {"crm": 2}
    assert progress["duplicates"] and progress["rejected"] == {"invalid_json": 1}
    assert not plan.stages[0].groups and plan.fresh == []


def _stored_after(state: StoredState, records: list[Record], *, crash_before_entities: bool = False) -> None:
    """Write a batch's stages into ``state``; a crash after its counters leaves its entity states unwritten."""
    for stage in plan_batch(records, state, CONFIG).stages:
        if stage.name == "entities" and crash_before_entities:
            return
        for partition, chunk in stage.seen.items():
            state.seen[chunk_key(partition, chunk.day, f"batch-{id(chunk)}")] = encode_chunk(chunk.entries)  # type: ignore[index]
        cast(dict[str, Any], state.groups).update(stage.groups)
        cast(dict[str, Any], state.progress).update(stage.progress)
        cast(dict[str, Any], state.entities).update(stage.entities)


def test_an_entitys_events_read_again_in_their_order_after_a_crash_count_once() -> None:
    """A crash after the counters, before the entity states: read again in the same order, nothing counts twice.

    The order is the same because an entity's events are applied from one topic only, the re-keyed
    one (``streams.worker.pipeline.must_be_rekeyed``): interleaved otherwise across two topics, the
    change would land in groups the first reading did not change, and count there again.
    """

    def record(topic: str, offset: int, event_id: str, at: int, event_type: str, **fields: Any) -> Accepted:
        payload = {"event_id": event_id, "type": event_type, "source": "test", "account_id": "a1", "currency": "USD"}
        payload["occurred_at"] = datetime.fromtimestamp(at, UTC).isoformat()
        return Accepted(Position(topic, 0, offset), parse_event(orjson.dumps(payload | fields)))

    start = record("rekeyed", 5, "s", AT - 40 * 86_400, "subscription.started", mrr=100, team="emea", rep_id="ana")
    change = record("rekeyed", 6, "c", AT, "subscription.changed", mrr=150)
    clean, crashed = empty_state(), empty_state()
    _stored_after(clean, [start, change])
    _stored_after(crashed, [start, change], crash_before_entities=True)
    _stored_after(crashed, [start])  # read again after the crash in the topic's order, in two batches
    _stored_after(crashed, [change])

    def months(state: StoredState) -> dict[object, dict[str, float]]:
        totals = monthly_totals(state.groups.items(), CONFIG).items()
        return {
            key: {name: value for name, value in sums.items() if value} for key, sums in totals if any(sums.values())
        }

    assert months(crashed) == months(clean)
