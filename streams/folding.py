"""Fold a batch of records into bucketed counters and per-partition progress. Pure.

State lives in two key-value maps (Faust tables at the edge):

* buckets: ``"<partition>|<team>|<rep>|<channel>|<resolution>|<group start>"`` ->
  ``{"buckets": {"<bucket start>": {counter: value}}, "offsets": {topic: last applied offset}}``
  (one key per group of buckets, see streams.windows)
* progress: ``"<partition>"`` -> the partition's watermark, its own applied
  offsets and the monotonic counts behind the ``*_total`` metrics.

Each value carries the last offset it absorbed from every source topic, so a
record delivered again after a crash changes nothing: folding is idempotent
whatever part of the previous attempt reached the changelog. Only changed keys
are returned, each once per batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypedDict

from schemas.config import KpimonConfig
from streams.facts import Scope, counter_deltas, scopes_of
from streams.records import Accepted, Position, Record, Rejected
from streams.windows import RESOLUTION_BY_NAME, RESOLUTIONS, Resolution, is_late

Counters = dict[str, float]


class BucketGroup(TypedDict):
    buckets: dict[str, Counters]  # bucket start (epoch seconds, as text for JSON) -> counters
    offsets: dict[str, int]


class ProgressValue(TypedDict):
    watermark: int
    offsets: dict[str, int]
    events: dict[str, int]
    duplicates: dict[str, int]
    late: dict[str, int]
    rejected: dict[str, int]


@dataclass(frozen=True)
class GroupKey:
    """Where a group of buckets is stored: partition, scope, resolution and group start."""

    partition: int
    scope: Scope
    resolution: Resolution
    start: int

    def encode(self) -> str:
        return f"{self.partition}|{self.scope.key}|{self.resolution.name}|{self.start}"

    @classmethod
    def decode(cls, key: str) -> GroupKey:
        partition, team, rep, channel, resolution, start = key.split("|")
        return cls(int(partition), Scope(team, rep, channel), RESOLUTION_BY_NAME[resolution], int(start))

    @property
    def last_bucket_start(self) -> int:
        return self.start + self.resolution.group_seconds - self.resolution.seconds


def empty_progress() -> ProgressValue:
    return {"watermark": 0, "offsets": {}, "events": {}, "duplicates": {}, "late": {}, "rejected": {}}


def _is_new(offsets: Mapping[str, int], position: Position) -> bool:
    return position.offset > offsets.get(position.topic, -1)


def _increment(counts: dict[str, int], name: str) -> None:
    counts[name] = counts.get(name, 0) + 1


@dataclass
class FoldResult:
    groups: dict[str, BucketGroup] = field(default_factory=dict)
    progress: dict[str, ProgressValue] = field(default_factory=dict)


class _BatchFolder:
    def __init__(self, groups: Mapping[str, BucketGroup], progress: Mapping[str, ProgressValue]) -> None:
        self._groups = groups
        self._progress = progress
        self.result = FoldResult()

    def progress_of(self, partition: int) -> ProgressValue:
        key = str(partition)
        value = self.result.progress.get(key)
        if value is None:
            stored = self._progress.get(key)
            value = _copy_progress(stored) if stored else empty_progress()
            self.result.progress[key] = value
        return value

    def add_to_bucket(self, key: str, bucket_start: int, position: Position, deltas: Mapping[str, float]) -> None:
        group = self.result.groups.get(key)
        if group is None:
            stored = self._groups.get(key)
            offsets = stored["offsets"] if stored else {}
            if not _is_new(offsets, position):
                return
            group = {
                "buckets": {start: dict(counters) for start, counters in stored["buckets"].items()} if stored else {},
                "offsets": dict(offsets),
            }
            self.result.groups[key] = group
        elif not _is_new(group["offsets"], position):
            return
        counters = group["buckets"].setdefault(str(bucket_start), {})
        for name, delta in deltas.items():
            counters[name] = counters.get(name, 0) + delta
        group["offsets"][position.topic] = position.offset


def _copy_progress(value: ProgressValue) -> ProgressValue:
    return {
        "watermark": value["watermark"],
        "offsets": dict(value["offsets"]),
        "events": dict(value["events"]),
        "duplicates": dict(value["duplicates"]),
        "late": dict(value["late"]),
        "rejected": dict(value["rejected"]),
    }


def fold_batch(
    records: Sequence[Record],
    duplicates: Iterable[Position],
    *,
    groups: Mapping[str, BucketGroup],
    progress: Mapping[str, ProgressValue],
    config: KpimonConfig,
) -> FoldResult:
    """Apply records in their partition order; return the changed bucket groups and progress."""
    folder = _BatchFolder(groups, progress)
    duplicate_positions = set(duplicates)
    for record in records:
        position = record.position
        partition_progress = folder.progress_of(position.partition)
        first_time = _is_new(partition_progress["offsets"], position)
        if first_time:
            partition_progress["offsets"][position.topic] = position.offset
        if isinstance(record, Rejected):
            if first_time:
                _increment(partition_progress["rejected"], record.rejection.reason)
            continue
        event_type = record.event.type
        if position in duplicate_positions:
            if first_time:
                _increment(partition_progress["duplicates"], event_type)
            continue
        timestamp = record.timestamp
        watermark = max(partition_progress["watermark"], timestamp)
        partition_progress["watermark"] = watermark
        late = is_late(timestamp, watermark)
        if first_time:
            _increment(partition_progress["late" if late else "events"], event_type)
        deltas = counter_deltas(record.event)
        if late or not deltas:
            continue
        _fold_event(folder, record, deltas, watermark, config)
    result = folder.result
    result.progress = {key: value for key, value in result.progress.items() if value != progress.get(key)}
    return result


def _fold_event(
    folder: _BatchFolder, record: Accepted, deltas: Mapping[str, float], watermark: int, config: KpimonConfig
) -> None:
    position = record.position
    scopes = scopes_of(record.event, config)
    for resolution in RESOLUTIONS:
        start = resolution.bucket_start(record.timestamp)
        if not resolution.is_live(start, watermark):
            continue
        group_start = resolution.group_start(start)
        for scope in scopes:
            key = GroupKey(position.partition, scope, resolution, group_start).encode()
            folder.add_to_bucket(key, start, position, deltas)


def expired_group_keys(keys: Iterable[str], watermarks: Mapping[int, int]) -> list[str]:
    """Groups whose every bucket fell out of its resolution's retention (by event time)."""
    expired = []
    for key in keys:
        group = GroupKey.decode(key)
        watermark = watermarks.get(group.partition)
        if watermark is not None and not group.resolution.is_live(group.last_bucket_start, watermark):
            expired.append(key)
    return expired
