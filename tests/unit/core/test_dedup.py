"""streams.core.dedup: first copies vs duplicates by id hash, chunks of ids by day, and forgetting old days."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from schemas.events import parse_event
from streams.core.dedup import (
    DAY_SECONDS,
    ENTRY_BYTES,
    ID_HASH_BYTES,
    MemorySeen,
    SeenChunk,
    chunk_day,
    chunk_key,
    copy_code,
    day_expired,
    decode_chunk,
    distinct_topic_codes,
    encode_chunk,
    expired_days,
    id_hash,
    new_chunks,
    seen_day,
    split_duplicates,
)
from streams.core.records import Accepted, Position

CRM = "crm.events"
MARKETING = "marketing.events"
REKEYED = "kpimon-ingest-rekeyed"
TS = 1_700_000_000  # 2023-11-14T22:13:20Z, UTC day 19_675


def accepted(topic: str, partition: int, offset: int, event_id: str = "e1", timestamp: int = TS) -> Accepted:
    data = {
        "event_id": event_id,
        "occurred_at": datetime.fromtimestamp(timestamp, UTC).isoformat(),
        "source": "crm",
        "type": "email.sent",
        "rep_id": "alice",
        "contact_id": "c-1",
    }
    return Accepted(Position(topic, partition, offset), parse_event(json.dumps(data).encode()))


def positions(records: list[Accepted]) -> list[tuple[str, int, int]]:
    return [(r.position.topic, r.position.partition, r.position.offset) for r in records]


def seen_with(*entries: tuple[int, str, str, int]) -> MemorySeen:
    """A seen table holding (partition, event id, topic, offset) first copies, one chunk each."""
    seen = MemorySeen()
    for number, (partition, event_id, topic, offset) in enumerate(entries):
        seen[chunk_key(partition, seen_day(TS), f"run-{number}")] = encode_chunk(
            {id_hash(event_id): copy_code(topic, offset)}
        )
    return seen


def test_hashes_and_codes_are_fixed_size_and_stable() -> None:
    assert len(id_hash("e1")) == ID_HASH_BYTES == 16
    assert id_hash("e1") == id_hash("e1") != id_hash("e2")
    assert id_hash("hs-18813").hex() == "8323b3037c3e8944602b517fbd8aa675"  # a stored id must hash the same for ever
    assert len(copy_code(CRM, 5)) == 12
    assert copy_code(CRM, 5) == copy_code(CRM, 5) != copy_code(REKEYED, 5) != copy_code(CRM, 6)
    assert distinct_topic_codes([CRM, MARKETING, REKEYED])
    assert distinct_topic_codes([CRM, CRM])
    assert not distinct_topic_codes(["plumless", "buckeroo"])  # a known CRC-32 collision


def test_chunks_round_trip() -> None:
    entries = {id_hash(f"e{n}"): copy_code(CRM, n) for n in range(5)}
    value = encode_chunk(entries)
    assert len(value) == 5 * ENTRY_BYTES == 5 * 28
    assert dict(decode_chunk(value)) == entries
    assert list(decode_chunk(b"")) == []
    with pytest.raises(ValueError, match="whole number"):
        list(decode_chunk(value[:-1]))


@pytest.mark.parametrize(
    ("timestamp", "day"),
    [(0, 0), (DAY_SECONDS - 1, 0), (DAY_SECONDS, 1), (TS, 19_675), (-1, -1)],
)
def test_seen_day(timestamp: int, day: int) -> None:
    assert seen_day(timestamp) == day


def test_chunk_keys_sort_by_day_and_hold_their_day() -> None:
    key = chunk_key(3, 19_675, "abc-7")
    assert key == "3|019675|abc-7"
    assert chunk_day(key) == 19_675
    assert chunk_key(3, 9_999, "z") < chunk_key(3, 10_000, "a")  # fixed width: text order is day order


# Day 19_675 ends at 1_699_920_000 + 86_400 = 1_700_006_400; it expires once the watermark is 8 days past that.
@pytest.mark.parametrize(
    ("day", "watermark", "expired"),
    [
        (19_675, 1_700_006_400 + 8 * DAY_SECONDS, True),
        (19_675, 1_700_006_400 + 8 * DAY_SECONDS - 1, False),
        (19_675, TS, False),
        (19_666, TS, True),
        (19_667, TS, False),  # its last second is 8 days before the watermark's day... still inside the horizon
    ],
)
def test_day_expired(day: int, watermark: int, expired: bool) -> None:
    assert day_expired(day, watermark) is expired


def test_expired_days() -> None:
    assert expired_days([19_660, 19_675, 19_666, 19_667], TS) == [19_660, 19_666]
    assert expired_days([19_660], None) == []  # no watermark for the partition: keep


def test_memory_seen_remembers_per_partition_and_forgets_with_the_chunk() -> None:
    seen = MemorySeen()
    first = chunk_key(0, 19_675, "run-1")
    seen[first] = encode_chunk({id_hash("e1"): copy_code(CRM, 5), id_hash("e2"): copy_code(REKEYED, 1)})
    seen[chunk_key(0, 19_676, "run-2")] = encode_chunk({id_hash("e1"): copy_code(REKEYED, 9)})
    seen[chunk_key(1, 19_676, "run-2")] = encode_chunk({id_hash("e1"): copy_code(REKEYED, 9)})
    assert seen.remembered() == 3
    assert seen.first_copy(0, id_hash("e1")) == copy_code(CRM, 5)  # the first stored position wins
    assert seen.first_copy(1, id_hash("e1")) == copy_code(REKEYED, 9)  # ids are per partition
    assert seen.first_copy(1, id_hash("e2")) is None
    assert seen.days(0) == [19_675, 19_676]
    assert seen.chunk_keys(0, 19_675, 10) == [first]
    del seen[first]
    assert seen.first_copy(0, id_hash("e2")) is None
    assert seen.days(0) == [19_676]


STORED_E1 = (0, "e1", CRM, 5)


@pytest.mark.parametrize(
    ("stored", "records", "fresh", "duplicates", "new_ids"),
    [
        pytest.param((), [accepted(CRM, 0, 5)], [(CRM, 0, 5)], [], {0: {"e1": (CRM, 5)}}, id="first copy"),
        pytest.param((STORED_E1,), [accepted(CRM, 0, 9)], [], [(CRM, 0, 9)], {}, id="same topic, later offset"),
        pytest.param((STORED_E1,), [accepted(REKEYED, 0, 2)], [], [(REKEYED, 0, 2)], {}, id="another topic"),
        pytest.param(
            (STORED_E1,), [accepted(REKEYED, 0, 5)], [], [(REKEYED, 0, 5)], {}, id="another topic, same offset"
        ),
        pytest.param((STORED_E1,), [accepted(CRM, 0, 5)], [(CRM, 0, 5)], [], {}, id="first copy re-read after a crash"),
        pytest.param(
            (),
            [accepted(CRM, 0, 5), accepted(REKEYED, 0, 1), accepted(CRM, 0, 8)],
            [(CRM, 0, 5)],
            [(REKEYED, 0, 1), (CRM, 0, 8)],
            {0: {"e1": (CRM, 5)}},
            id="duplicates within one batch",
        ),
        pytest.param(
            (),
            [accepted(CRM, 0, 5), accepted(CRM, 0, 5)],
            [(CRM, 0, 5), (CRM, 0, 5)],
            [],
            {0: {"e1": (CRM, 5)}},
            id="the same message twice in one batch",
        ),
        pytest.param(
            (STORED_E1,), [accepted(CRM, 1, 5)], [(CRM, 1, 5)], [], {1: {"e1": (CRM, 5)}}, id="ids are per partition"
        ),
        pytest.param(
            (STORED_E1,),
            [
                accepted(CRM, 0, 6, "e2", TS + 60),
                accepted(CRM, 0, 7, "e1"),
                accepted(CRM, 0, 8, "e2", TS + 60),
                accepted(CRM, 0, 9, "e3", TS - 600),
                accepted(CRM, 1, 3, "e4", TS - 5),
            ],
            [(CRM, 0, 6), (CRM, 0, 9), (CRM, 1, 3)],
            [(CRM, 0, 7), (CRM, 0, 8)],
            {0: {"e2": (CRM, 6), "e3": (CRM, 9)}, 1: {"e4": (CRM, 3)}},
            id="mixed, two partitions",
        ),
    ],
)
def test_split_duplicates(
    stored: tuple[tuple[int, str, str, int], ...],
    records: list[Accepted],
    fresh: list[tuple[str, int, int]],
    duplicates: list[tuple[str, int, int]],
    new_ids: dict[int, dict[str, tuple[str, int]]],
) -> None:
    seen = seen_with(*stored)
    size = seen.remembered()
    result = split_duplicates(records, seen)
    assert positions(result.fresh) == fresh
    assert positions(result.duplicates) == duplicates
    assert result.new_ids == {
        partition: {id_hash(event_id): copy_code(*first) for event_id, first in ids.items()}
        for partition, ids in new_ids.items()
    }
    assert seen.remembered() == size  # the store is only read


def test_split_keeps_record_identity_and_order() -> None:
    records = [accepted(CRM, 0, 1, "a"), accepted(CRM, 0, 2, "b"), accepted(CRM, 0, 3, "a")]
    result = split_duplicates(records, MemorySeen())
    assert result.fresh == records[:2]
    assert result.duplicates == [records[2]]


def test_new_chunks_are_kept_under_the_day_of_the_partitions_watermark_after_the_batch() -> None:
    records = [accepted(CRM, 0, 1, "a", TS - 20 * DAY_SECONDS), accepted(CRM, 1, 1, "b", TS)]
    result = split_duplicates(records, MemorySeen())
    chunks = new_chunks(result, {0: TS + DAY_SECONDS})  # partition 1 has no watermark yet: its newest event's day
    assert chunks == {
        0: SeenChunk(seen_day(TS) + 1, {id_hash("a"): copy_code(CRM, 1)}),  # an old event is kept as long as new ones
        1: SeenChunk(seen_day(TS), {id_hash("b"): copy_code(CRM, 1)}),
    }
