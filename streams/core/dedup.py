"""Exactly-once counting under at-least-once delivery: which events are duplicates. Pure.

Every event id is remembered with the position (topic, offset) of its first
copy. A later copy (another offset, or the same event on another topic) is a
duplicate. The first copy read again after a crash is *not* a duplicate: it is
processed again, and the offsets kept in the state make that second
application a no-op.

What is remembered is fixed-size: an id is its 16-byte BLAKE2b hash (``id_hash``),
its first copy a 12-byte code (the topic's CRC-32 and the offset, ``copy_code``;
positions are only ever compared for equality). The ids first seen in one batch of one
partition are stored together as one ``SeenChunk`` (one changelog record per batch, not
one per event), under the day of the partition's watermark after the batch
(``chunk_key``); whole days are dropped once they are older than the horizon
(``day_expired``). The store behind ``SeenLookup`` answers per id (on disk in the
worker: ``streams.worker.store``; in memory here: ``MemorySeen``).

Collisions: two different ids with the same 128-bit hash would make the second look
like a copy of the first. With n ids remembered, the chance that a new id collides
with one of them is n / 2**128: about 2e-31 per event at the 69 million ids of 8 days
at 100 events/s, 1e-21 over a year of such events. CRC-32 of the (three) source
topic names must differ, which ``copy_code`` users check once (``distinct_topic_codes``).
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from streams.core.records import Accepted
from streams.core.table_keys import split_table_key, table_key

DEDUP_HORIZON_SECONDS = 8 * 86_400
DAY_SECONDS = 86_400
ID_HASH_BYTES = 16
COPY_CODE = struct.Struct(">IQ")  # topic CRC-32, offset: 12 bytes
ENTRY_BYTES = ID_HASH_BYTES + COPY_CODE.size  # 28 bytes per id in a chunk


def id_hash(event_id: str) -> bytes:
    """The 16 bytes an event id is remembered by."""
    return hashlib.blake2b(event_id.encode(), digest_size=ID_HASH_BYTES).digest()


def topic_code(topic: str) -> int:
    return zlib.crc32(topic.encode())


def copy_code(topic: str, offset: int) -> bytes:
    """A position as 12 bytes: equal positions give equal codes."""
    return COPY_CODE.pack(topic_code(topic), offset)


def distinct_topic_codes(topics: Iterable[str]) -> bool:
    names = set(topics)
    return len({topic_code(name) for name in names}) == len(names)


def seen_day(timestamp: int) -> int:
    """The UTC day number (days since 1970-01-01) of an event time."""
    return timestamp // DAY_SECONDS


def day_expired(day: int, watermark: int, horizon: int = DEDUP_HORIZON_SECONDS) -> bool:
    """Whether every id stored under ``day`` was first seen before ``watermark - horizon``."""
    return (day + 1) * DAY_SECONDS <= watermark - horizon


def chunk_prefix(partition: int, day: int) -> str:
    """The common start of the keys of one partition's chunks of one day (days sort as text)."""
    return table_key(partition, f"{day:06d}|")


def chunk_key(partition: int, day: int, name: str) -> str:
    """``"<partition>|<day, 6 digits>|<name>"``; ``name`` is unique per batch and process."""
    return chunk_prefix(partition, day) + name


def chunk_day(key: str) -> int:
    return int(split_table_key(key)[1].split("|", 1)[0])


def encode_chunk(entries: Mapping[bytes, bytes]) -> bytes:
    """A chunk's ids as stored: 28 bytes per id (hash, then the first copy's code)."""
    return b"".join(hashed + code for hashed, code in entries.items())


def decode_chunk(value: bytes) -> Iterator[tuple[bytes, bytes]]:
    if len(value) % ENTRY_BYTES:
        raise ValueError(f"a seen chunk of {len(value)} bytes is not a whole number of {ENTRY_BYTES}-byte entries")
    for start in range(0, len(value), ENTRY_BYTES):
        yield value[start : start + ID_HASH_BYTES], value[start + ID_HASH_BYTES : start + ENTRY_BYTES]


class SeenChunk(NamedTuple):
    """Ids first seen in one batch of one partition: id hash -> first copy's code, kept under ``day``."""

    day: int
    entries: dict[bytes, bytes]


class SeenLookup(Protocol):
    def first_copy(self, partition: int, hashed: bytes) -> bytes | None:
        """The code of the first copy of the id with this hash, if it is remembered."""
        ...


class MemorySeen(dict[str, bytes]):
    """A seen table in memory (chunk key -> encoded chunk) that answers lookups, as the worker's store does."""

    def __init__(self) -> None:
        super().__init__()
        self._first: dict[tuple[int, bytes], bytes] = {}

    def __setitem__(self, key: str, value: bytes) -> None:
        partition = split_table_key(key)[0]
        super().__setitem__(key, value)
        for hashed, code in decode_chunk(value):
            self._first.setdefault((partition, hashed), code)

    def __delitem__(self, key: str) -> None:
        partition = split_table_key(key)[0]
        for hashed, _ in decode_chunk(self[key]):
            self._first.pop((partition, hashed), None)
        super().__delitem__(key)

    def first_copy(self, partition: int, hashed: bytes) -> bytes | None:
        return self._first.get((partition, hashed))

    def remembered(self) -> int:
        return len(self._first)

    def days(self, partition: int) -> list[int]:
        return sorted({chunk_day(key) for key in self if split_table_key(key)[0] == partition})

    def chunk_keys(self, partition: int, day: int, limit: int) -> list[str]:
        prefix = chunk_prefix(partition, day)
        return [key for key in self if key.startswith(prefix)][:limit]


@dataclass
class DedupResult:
    fresh: list[Accepted] = field(default_factory=list)
    duplicates: list[Accepted] = field(default_factory=list)
    new_ids: dict[int, dict[bytes, bytes]] = field(default_factory=dict)  # partition -> ids first seen now
    newest: dict[int, int] = field(default_factory=dict)  # partition -> newest event time among them


def split_duplicates(records: Sequence[Accepted], seen: SeenLookup) -> DedupResult:
    """Separate first copies from duplicates; ``new_ids`` are the ids to store."""
    result = DedupResult()
    for record in records:
        position = record.position
        hashed = id_hash(record.event.event_id)
        batch = result.new_ids.get(position.partition)
        first = batch.get(hashed) if batch is not None else None
        if first is None:
            first = seen.first_copy(position.partition, hashed)
        code = copy_code(position.topic, position.offset)
        if first is None:
            if batch is None:
                batch = result.new_ids[position.partition] = {}
            batch[hashed] = code
            newest = result.newest.get(position.partition, record.timestamp)
            result.newest[position.partition] = max(newest, record.timestamp)
            result.fresh.append(record)
        elif first == code:
            result.fresh.append(record)
        else:
            result.duplicates.append(record)
    return result


def new_chunks(result: DedupResult, watermarks: Mapping[int, int]) -> dict[int, SeenChunk]:
    """The batch's new ids per partition, under the day of the partition's watermark after the batch.

    Keyed by the watermark's day rather than each event's own: an id is kept for the whole
    horizon of event time *after it was seen*, so a copy of an old event that arrives soon
    after it is still recognised.
    """
    return {
        partition: SeenChunk(seen_day(max(result.newest[partition], watermarks.get(partition, 0))), ids)
        for partition, ids in result.new_ids.items()
    }


def expired_days(days: Iterable[int], watermark: int | None) -> list[int]:
    """The days whose ids are all older than the horizon; none without a watermark."""
    if watermark is None:
        return []
    return sorted(day for day in days if day_expired(day, watermark))
