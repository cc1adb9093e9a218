"""Exactly-once counting under at-least-once delivery: which events are duplicates. Pure.

Every event id is remembered with the position (topic, offset) of its first
copy. A later copy (another offset, or the same event on another topic) is a
duplicate. The first copy read again after a crash is *not* a duplicate: it is
processed again, and the offsets kept in the state make that second
application a no-op.

The ids first seen in one batch of one partition are stored together as one
``SeenBatch`` (one changelog record per batch, not one per event); a
``SeenIndex`` in memory answers lookups and is rebuilt from the stored batches
after every recovery.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypedDict

from streams.core.records import Accepted
from streams.core.table_keys import key_partition

DEDUP_HORIZON_SECONDS = 8 * 86_400
FirstCopy = tuple[str, int]  # (topic, offset) of an event id's first copy


class SeenBatch(TypedDict):
    """Event ids first seen in one batch of one partition, with their positions."""

    newest: int  # newest occurred_at among them: the batch expires when that is late
    ids: dict[str, list[str | int]]  # event_id -> [topic, offset]


class SeenIndex:
    """(partition, event_id) -> position of the first copy, for every stored batch."""

    def __init__(self) -> None:
        self._first: dict[tuple[int, str], FirstCopy] = {}

    def __len__(self) -> int:
        return len(self._first)

    def get(self, partition: int, event_id: str) -> FirstCopy | None:
        return self._first.get((partition, event_id))

    def add(self, key: str, batch: SeenBatch) -> None:
        partition = key_partition(key)
        for event_id, (topic, offset) in batch["ids"].items():
            self._first.setdefault((partition, event_id), (str(topic), int(offset)))

    def remove(self, key: str, batch: SeenBatch) -> None:
        partition = key_partition(key)
        for event_id in batch["ids"]:
            self._first.pop((partition, event_id), None)

    def rebuild(self, batches: Iterable[tuple[str, SeenBatch]]) -> None:
        self._first.clear()
        for key, batch in batches:
            self.add(key, batch)


@dataclass
class DedupResult:
    fresh: list[Accepted] = field(default_factory=list)
    duplicates: list[Accepted] = field(default_factory=list)
    new_batches: dict[int, SeenBatch] = field(default_factory=dict)  # partition -> ids first seen now


def split_duplicates(records: Sequence[Accepted], index: SeenIndex) -> DedupResult:
    """Separate first copies from duplicates; ``new_batches`` are the ids to store."""
    result = DedupResult()
    for record in records:
        position = record.position
        event_id = record.event.event_id
        batch = result.new_batches.get(position.partition)
        first = index.get(position.partition, event_id)
        if first is None and batch is not None and event_id in batch["ids"]:
            topic, offset = batch["ids"][event_id]
            first = (str(topic), int(offset))
        if first is None:
            if batch is None:
                batch = result.new_batches[position.partition] = {"newest": record.timestamp, "ids": {}}
            batch["ids"][event_id] = [position.topic, position.offset]
            batch["newest"] = max(batch["newest"], record.timestamp)
            result.fresh.append(record)
        elif first == (position.topic, position.offset):
            result.fresh.append(record)
        else:
            result.duplicates.append(record)
    return result


def expired_batch_keys(batches: Iterable[tuple[str, SeenBatch]], watermarks: dict[int, int]) -> list[str]:
    """Batches whose newest event is older than the dedup horizon at its partition's watermark.

    The horizon (8 days) is shorter than the longest window's retention (months):
    keeping every id for months would cost far more memory than the counters. A
    copy of an activity event arriving more than 8 days (event time) after the
    newest events is counted again; deals and leads keep their own event ids, so
    funnel counts stay exact whatever the delay.
    """
    expired = []
    for key, batch in batches:
        watermark = watermarks.get(key_partition(key))
        if watermark is not None and batch["newest"] < watermark - DEDUP_HORIZON_SECONDS:
            expired.append(key)
    return expired
