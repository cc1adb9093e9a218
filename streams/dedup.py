"""Exactly-once counting under at-least-once delivery: which events are duplicates. Pure.

Every event id is remembered with the position of its first copy. A later copy
(another offset, or the same event on another topic) is a duplicate. The first
copy read again after a crash is *not* a duplicate: it is processed again and
the offsets kept in the state make that second application a no-op.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from streams.records import Accepted
from streams.windows import is_late

SeenEntry = list[str | int]  # [topic, offset, occurred_at epoch seconds], JSON-friendly


def seen_key(partition: int, event_id: str) -> str:
    return f"{partition}|{event_id}"


@dataclass
class DedupResult:
    fresh: list[Accepted] = field(default_factory=list)
    duplicates: list[Accepted] = field(default_factory=list)
    new_seen: dict[str, SeenEntry] = field(default_factory=dict)


def split_duplicates(records: Sequence[Accepted], seen: Mapping[str, SeenEntry]) -> DedupResult:
    """Separate first copies from duplicates; ``new_seen`` are the entries to store."""
    result = DedupResult()
    for record in records:
        position = record.position
        key = seen_key(position.partition, record.event.event_id)
        first = result.new_seen.get(key) or seen.get(key)
        if first is None:
            result.new_seen[key] = [position.topic, position.offset, record.timestamp]
            result.fresh.append(record)
        elif first[0] == position.topic and first[1] == position.offset:
            result.fresh.append(record)
        else:
            result.duplicates.append(record)
    return result


def expired_seen_keys(seen: Mapping[str, SeenEntry], watermarks: Mapping[int, int]) -> list[str]:
    """Entries whose event has become too late for its partition's watermark.

    A later copy of such an event is dropped as late anyway, so forgetting its
    id cannot let a duplicate be counted.
    """
    expired = []
    for key, entry in seen.items():
        watermark = watermarks.get(int(key.split("|", 1)[0]))
        if watermark is not None and is_late(int(entry[2]), watermark):
            expired.append(key)
    return expired
