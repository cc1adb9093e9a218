"""streams.worker.eviction: closed entities past the retention are deleted, and no KPI changes.

A funnel of leads, deals, spend and email engagement goes through the pure pipeline (plan_batch) in
batches, with the events entities send each other fed back; then the watermark moves on by more
than the retention, and every event is sent again. Run once with the entity sweep and once
without: the buckets (every counter of every KPI) and the open deals are identical, and the sweep
kept only the open deals.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson

from schemas.config import KpimonConfig
from schemas.events import parse_event
from streams.core.dedup import MemorySeen, chunk_key, encode_chunk, expired_days
from streams.core.records import Accepted, Position, Record
from streams.entities.deals_leads import open_deals
from streams.entities.retention import ENTITY_RETENTION_SECONDS
from streams.ingest.batch import StoredState, plan_batch
from streams.worker.eviction import EntitySweep, scan_mapping
from tests.reference.offline_campaigns import campaign_events
from tests.reference.offline_email_attribution import marketing_events

CONFIG = KpimonConfig(currency_rates={"USD": Decimal(1), "EUR": Decimal("1.1")})


def test_scan_mapping_walks_one_partition_in_key_order() -> None:
    states = {"1|b": 2, "0|c": 3, "0|a": 1}
    scan = scan_mapping(states)
    assert scan(0, None, 1) == [("0|a", 1)]
    assert scan(0, "0|a", 5) == [("0|c", 3)]


def test_the_sweep_pauses_a_day_of_event_time_between_rounds() -> None:
    old = {"last_at": 0}
    states: dict[str, Any] = {"0|lead:a": old}
    sweep = EntitySweep(states, scan_mapping(states))
    sweep.run({0: ENTITY_RETENTION_SECONDS})  # not older than the retention yet
    states["0|lead:b"] = old
    sweep.run({0: ENTITY_RETENTION_SECONDS + 3_600})  # a round was done an hour ago: wait
    assert set(states) == {"0|lead:a", "0|lead:b"}
    sweep.run({0: ENTITY_RETENTION_SECONDS + 86_400})
    assert states == {} and sweep.evicted == 2


class Worker:
    """plan_batch over memory tables, one partition, as streams.worker.pipeline writes it."""

    def __init__(self, sweep: bool) -> None:
        self.seen = MemorySeen()
        self.groups: dict[str, Any] = {}
        self.progress: dict[str, Any] = {}
        self.entities: dict[str, Any] = {}
        self.sweep = EntitySweep(self.entities, scan_mapping(self.entities)) if sweep else None
        self.offsets = {"crm": 0, "rekeyed": 0}
        self.batches = 0

    def record(self, topic: str, event: dict[str, Any]) -> Accepted:
        self.offsets[topic] += 1
        return Accepted(Position(topic, 0, self.offsets[topic]), parse_event(orjson.dumps(event)))

    def send(self, events: list[dict[str, Any]], batch: int = 50) -> None:
        queue = [self.record("crm", event) for event in events]
        while queue:
            records: list[Record] = list(queue[:batch])
            queue = queue[batch:]
            stored = StoredState(self.seen, self.groups, self.progress, self.entities)
            for stage in plan_batch(records, stored, CONFIG).stages:
                for partition, chunk in stage.seen.items():
                    self.seen[chunk_key(partition, chunk.day, f"b{self.batches}")] = encode_chunk(chunk.entries)
                self.groups.update(stage.groups)
                self.progress.update(stage.progress)
                self.entities.update(stage.entities)
                queue += [self.record("rekeyed", emitted) for emitted in stage.emitted]
            self.batches += 1
            watermark = self.progress["0"]["watermark"]
            for day in expired_days(self.seen.days(0), watermark):
                for key in self.seen.chunk_keys(0, day, 1_000_000):
                    del self.seen[key]
            if self.sweep is not None:
                self.sweep.run({0: watermark})


def _funnel() -> list[dict[str, Any]]:
    funnel, marketing = campaign_events(seed=3, leads=120)
    end = max(int(parse_event(orjson.dumps(event)).occurred_at.timestamp()) for event in funnel)
    people = marketing_events(seed=3, end=end, people=20, leads=15)
    events = [*funnel, *marketing, *people]
    return sorted(events, key=lambda event: str(event["occurred_at"]))


def test_evicting_closed_entities_past_the_retention_changes_no_kpi() -> None:
    events = _funnel()
    last = max(int(parse_event(orjson.dumps(event)).occurred_at.timestamp()) for event in events)
    later = parse_event(orjson.dumps(events[0])).occurred_at.fromtimestamp(last + ENTITY_RETENTION_SECONDS + 86_400)
    tick = {
        "event_id": "tick",
        "type": "call.logged",
        "occurred_at": later.astimezone().isoformat(),
        "source": "t",
        "rep_id": "r",
        "duration_seconds": 1,
        "outcome": "connected",
    }
    workers = {sweep: Worker(sweep) for sweep in (False, True)}
    for worker in workers.values():
        worker.send(events)
        worker.send([tick])
        for _ in range(3):  # a few batches: the sweep goes round
            worker.send([{**tick, "event_id": f"tick-{worker.batches}"}])
        worker.send(events)  # every event again: late now
    kept, swept = workers[False], workers[True]
    assert swept.sweep is not None and swept.sweep.evicted > 100
    assert swept.groups == kept.groups  # every counter of every scope, resolution and bucket
    assert list(open_deals(swept.entities.items())) == list(open_deals(kept.entities.items()))
    assert {key for key in swept.entities} == {key for key, _ in kept.entities.items() if key in swept.entities}
    assert all(key.startswith("0|deal:") for key in swept.entities)  # only open deals are left
    progress = swept.progress["0"]
    assert progress["events"] == kept.progress["0"]["events"]
    # the copies: late, applied nowhere (those of the open deals kept: duplicates, as without the sweep)
    assert sum(progress["late"].values()) + sum(progress["duplicates"].values()) >= len(events)
