"""One batch of records as a value: everything it writes, and the order in which it must become durable. Pure.

``plan_batch`` runs the pure steps (dedup, entity states, folding) over a batch and the
state it reads, and returns a ``BatchPlan``: its writes in ``stages``. The worker's
pipeline writes each stage and waits until Kafka has acknowledged it before it writes
the next (``streams.worker.pipeline``). The order is what keeps counts exact across a
crash at any point:

1. ``seen``: the event ids first seen in this batch. They are durable before any counter
   or progress they cause: otherwise a crash could keep the counters (or the offsets read),
   lose the ids, and let a copy of the same event on another topic be counted again.
2. ``progress``: the partitions' progress (the offsets read, the watermark, the ``*_total``
   counts). It is durable before any group: so no group ever holds a record past its
   partition's stored progress, and a record past it is new to every group, which lets
   folding sum a batch's new records before touching a group (streams.core.folding). It
   holds the label values the partition admitted (streams.core.labels), so they too are
   durable before any counter they place.
3. ``counters``: changed bucket groups, and the events entities emit for other entities
   (to their partition; stable ids make a second copy a duplicate).
4. ``entities``: the changed entity states, only after the counters and events they caused
   are durable. A crash in between applies the event again to the old state, which gives
   the same changes, and the groups that have them skip them by offset. The same changes
   need the same order: an entity's events all come from one topic, the re-keyed one
   (``streams.worker.pipeline.must_be_rekeyed``), so they are read again in their order.

The property test (tests/unit/ingest/test_batch_properties.py) crashes between and inside
stages: progress kept with its ids lost counted an event twice, hence ``seen`` on its own.

Empty stages are left out; the batch is acknowledged only after the last one is durable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from schemas.config import KpimonConfig
from schemas.events import WebSession
from streams.core.dedup import SeenChunk, SeenLookup, new_chunks, split_duplicates
from streams.core.folding import BucketGroup, ProgressValue, copy_progress, empty_progress, fold_batch
from streams.core.labels import LabelPlacement, LabelPolicy
from streams.core.money import to_reporting_currency
from streams.core.records import Accepted, Position, Record
from streams.core.windows import is_late
from streams.entities.registry import Emitted, EntityState, apply_entity_events

StageName = Literal["seen", "progress", "counters", "entities"]


@dataclass(frozen=True)
class Stage:
    """Writes that may reach Kafka in any order among themselves, all durable before the next stage's."""

    name: StageName
    seen: Mapping[int, SeenChunk] = field(default_factory=dict)  # partition -> ids first seen in the batch
    groups: Mapping[str, BucketGroup] = field(default_factory=dict)  # changed bucket groups by table key
    progress: Mapping[str, ProgressValue] = field(default_factory=dict)  # changed progress by partition
    emitted: Sequence[Emitted] = ()  # events for other entities, to send keyed by their routing key
    entities: Mapping[str, EntityState] = field(default_factory=dict)  # changed entity states by table key

    def is_empty(self) -> bool:
        return not (self.seen or self.groups or self.progress or self.emitted or self.entities)


@dataclass(frozen=True)
class StoredState:
    """What a batch reads: the local stores of the worker's tables (the seen ids by their hash)."""

    seen: SeenLookup
    groups: Mapping[str, BucketGroup]
    progress: Mapping[str, ProgressValue]
    entities: Mapping[str, EntityState]


@dataclass(frozen=True)
class BatchPlan:
    stages: tuple[Stage, ...]  # in the order they must become durable
    fresh: Sequence[Accepted]  # first copies of events (their web sessions' visitors go to Redis)

    def web_sessions(self) -> list[WebSession]:
        return [record.event for record in self.fresh if isinstance(record.event, WebSession)]


def _watermark(key: str, *progress: Mapping[str, ProgressValue]) -> int:
    """The partition's watermark in the first of ``progress`` that has the partition."""
    for values in progress:
        value = values.get(key)
        if value is not None:
            return value["watermark"]
    return 0


def _late(records: Sequence[Accepted], progress: Mapping[str, ProgressValue]) -> set[Position]:
    """The records older than every bucket's retention at their partition's watermark, as folding finds them."""
    watermarks: dict[int, int] = {}
    late = set()
    for record in records:
        partition = record.position.partition
        watermark = watermarks.get(partition)
        if watermark is None:
            watermark = _watermark(str(partition), progress)
        watermarks[partition] = watermark = max(watermark, record.timestamp)
        if is_late(record.timestamp, watermark):
            late.add(record.position)
    return late


def _placed(
    records: Sequence[Record], placement: LabelPlacement, progress: Mapping[str, ProgressValue]
) -> list[Record]:
    """The records with their events' labels placed (streams.core.labels); folds counted on a first reading."""
    placed: list[Record] = []
    for record in records:
        if isinstance(record, Accepted):
            stored = progress.get(str(record.position.partition))
            first = stored is None or record.position.offset > stored["offsets"].get(record.position.topic, -1)
            placed.append(placement.place(record, count=first))
        else:
            placed.append(record)
    return placed


def _with_labels(
    changed: Mapping[str, ProgressValue], stored: Mapping[str, ProgressValue], placement: LabelPlacement
) -> dict[str, ProgressValue]:
    """The changed progress, with the values each partition admitted and the folds it counted."""
    progress = dict(changed)
    for key in {*placement.admitted, *placement.folded}:
        value = progress.get(key) or stored.get(key)
        value = copy_progress(value) if value is not None else empty_progress()
        if key in placement.admitted:
            value["labels"] = placement.admitted[key]
        folds = dict(value.get("folded", {}))
        for dimension, count in placement.folded.get(key, {}).items():
            folds[dimension] = folds.get(dimension, 0) + count
        if folds:
            value["folded"] = folds
        progress[key] = value
    return progress


def plan_batch(
    records: Sequence[Record], stored: StoredState, config: KpimonConfig, policy: LabelPolicy | None = None
) -> BatchPlan:
    """Everything ``records`` write into ``stored``, in stages (see the module's docstring).

    ``policy``: the config's label rules (``LabelPolicy.from_config``), built once by a caller that plans many batches.
    """
    admitted = {key: value.get("labels", {}) for key, value in stored.progress.items()}
    placement = LabelPlacement(policy or LabelPolicy.from_config(config), admitted)
    records = _placed(records, placement, stored.progress)
    dedup = split_duplicates([record for record in records if isinstance(record, Accepted)], stored.seen)
    entities = apply_entity_events(
        dedup.fresh,
        stored.entities,
        lambda amount, currency: to_reporting_currency(amount, currency, config),
        late=_late(dedup.fresh, stored.progress),
    )
    folded = fold_batch(
        records,
        [*(record.position for record in dedup.duplicates), *entities.duplicates],
        groups=stored.groups,
        progress=stored.progress,
        config=config,
        entity_facts=entities.facts,
    )
    watermarks = {p: _watermark(str(p), folded.progress, stored.progress) for p in dedup.new_ids}
    stages = (
        Stage("seen", seen=new_chunks(dedup, watermarks)),
        Stage("progress", progress=_with_labels(folded.progress, stored.progress, placement)),
        Stage("counters", groups=folded.groups, emitted=entities.emitted),
        Stage("entities", entities=entities.states),
    )
    return BatchPlan(tuple(stage for stage in stages if not stage.is_empty()), dedup.fresh)
