"""streams.core.dedup: first copies vs duplicates by event id, the seen index, and forgetting late batches."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from schemas.events import parse_event
from streams.core.dedup import SeenBatch, SeenIndex, expired_batch_keys, split_duplicates
from streams.core.records import Accepted, Position

CRM = "crm.events"
REKEYED = "kpimon-ingest-rekeyed"
TS = 1_700_000_000  # 2023-11-14T22:13:20Z


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


def index_of(stored: dict[str, SeenBatch]) -> SeenIndex:
    index = SeenIndex()
    index.rebuild(stored.items())
    return index


def positions(records: list[Accepted]) -> list[tuple[str, int, int]]:
    return [(r.position.topic, r.position.partition, r.position.offset) for r in records]


STORED_E1: dict[str, SeenBatch] = {"0|run-1": {"newest": TS, "ids": {"e1": [CRM, 5]}}}


def test_seen_index() -> None:
    index = SeenIndex()
    assert len(index) == 0
    assert index.get(0, "e1") is None
    first: SeenBatch = {"newest": TS, "ids": {"e1": [CRM, 5], "e2": [REKEYED, 1]}}
    later: SeenBatch = {"newest": TS + 60, "ids": {"e1": [REKEYED, 9], "e3": [CRM, 6]}}
    index.add("0|run-1", first)
    index.add("0|run-2", later)
    index.add("1|run-2", later)
    assert len(index) == 5
    assert index.get(0, "e1") == (CRM, 5)  # the first stored position wins
    assert index.get(0, "e2") == (REKEYED, 1)
    assert index.get(0, "e3") == (CRM, 6)
    assert index.get(1, "e1") == (REKEYED, 9)  # ids are per partition
    assert index.get(1, "e2") is None
    index.remove("0|run-1", first)
    assert index.get(0, "e1") is None
    assert index.get(0, "e3") == (CRM, 6)
    index.rebuild([("3|x", {"newest": 0, "ids": {"z": ["t", "4"]}})])  # type: ignore[list-item]
    assert len(index) == 1
    assert index.get(3, "z") == ("t", 4)  # positions are normalised to (str, int)


@pytest.mark.parametrize(
    ("stored", "records", "fresh", "duplicates", "new_batches"),
    [
        pytest.param(
            {},
            [accepted(CRM, 0, 5)],
            [(CRM, 0, 5)],
            [],
            {0: {"newest": TS, "ids": {"e1": [CRM, 5]}}},
            id="first copy",
        ),
        pytest.param(STORED_E1, [accepted(CRM, 0, 9)], [], [(CRM, 0, 9)], {}, id="same topic, later offset"),
        pytest.param(STORED_E1, [accepted(REKEYED, 0, 2)], [], [(REKEYED, 0, 2)], {}, id="another topic"),
        pytest.param(STORED_E1, [accepted(REKEYED, 0, 5)], [], [(REKEYED, 0, 5)], {}, id="another topic, same offset"),
        pytest.param(STORED_E1, [accepted(CRM, 0, 5)], [(CRM, 0, 5)], [], {}, id="first copy re-read after a crash"),
        pytest.param(
            {},
            [accepted(CRM, 0, 5), accepted(REKEYED, 0, 1), accepted(CRM, 0, 8)],
            [(CRM, 0, 5)],
            [(REKEYED, 0, 1), (CRM, 0, 8)],
            {0: {"newest": TS, "ids": {"e1": [CRM, 5]}}},
            id="duplicates within one batch",
        ),
        pytest.param(
            {},
            [accepted(CRM, 0, 5), accepted(CRM, 0, 5)],
            [(CRM, 0, 5), (CRM, 0, 5)],
            [],
            {0: {"newest": TS, "ids": {"e1": [CRM, 5]}}},
            id="the same message twice in one batch",
        ),
        pytest.param(
            STORED_E1,
            [accepted(CRM, 1, 5)],
            [(CRM, 1, 5)],
            [],
            {1: {"newest": TS, "ids": {"e1": [CRM, 5]}}},
            id="ids are per partition",
        ),
        pytest.param(
            STORED_E1,
            [
                accepted(CRM, 0, 6, "e2", TS + 60),
                accepted(CRM, 0, 7, "e1"),
                accepted(CRM, 0, 8, "e2", TS + 60),
                accepted(CRM, 0, 9, "e3", TS - 600),
                accepted(CRM, 1, 3, "e4", TS - 5),
            ],
            [(CRM, 0, 6), (CRM, 0, 9), (CRM, 1, 3)],
            [(CRM, 0, 7), (CRM, 0, 8)],
            {
                0: {"newest": TS + 60, "ids": {"e2": [CRM, 6], "e3": [CRM, 9]}},  # newest of the batch's ids
                1: {"newest": TS - 5, "ids": {"e4": [CRM, 3]}},
            },
            id="mixed, two partitions",
        ),
    ],
)
def test_split_duplicates(
    stored: dict[str, SeenBatch],
    records: list[Accepted],
    fresh: list[tuple[str, int, int]],
    duplicates: list[tuple[str, int, int]],
    new_batches: dict[int, SeenBatch],
) -> None:
    index = index_of(stored)
    size = len(index)
    result = split_duplicates(records, index)
    assert positions(result.fresh) == fresh
    assert positions(result.duplicates) == duplicates
    assert result.new_batches == new_batches
    assert len(index) == size  # the index is only read


def test_split_keeps_record_identity_and_order() -> None:
    records = [accepted(CRM, 0, 1, "a"), accepted(CRM, 0, 2, "b"), accepted(CRM, 0, 3, "a")]
    result = split_duplicates(records, SeenIndex())
    assert result.fresh == records[:2]
    assert result.duplicates == [records[2]]


# At watermark 1_700_000_000 the dedup horizon (8 days) starts at 1_699_308_800.
@pytest.mark.parametrize(
    ("stored", "watermarks", "expired"),
    [
        ({"0|a": {"newest": 1_699_308_799, "ids": {}}}, {0: TS}, ["0|a"]),
        ({"0|a": {"newest": 1_699_308_800, "ids": {}}}, {0: TS}, []),
        ({"0|a": {"newest": 1_699_308_799, "ids": {}}}, {}, []),  # no watermark for the partition: keep
        ({"3|a": {"newest": 1_699_308_799, "ids": {}}}, {0: TS}, []),
        ({"3|a": {"newest": 1_699_308_799, "ids": {}}}, {3: TS}, ["3|a"]),
        (
            {
                "0|old": {"newest": 1_699_000_000, "ids": {"x": [CRM, 1]}},
                "0|new": {"newest": TS, "ids": {"y": [CRM, 2]}},
                "1|old": {"newest": 1_699_000_000, "ids": {"z": [CRM, 3]}},
            },
            {0: TS, 1: 1_699_000_000},
            ["0|old"],
        ),
    ],
)
def test_expired_batch_keys(stored: dict[str, SeenBatch], watermarks: dict[int, int], expired: list[str]) -> None:
    assert expired_batch_keys(stored.items(), watermarks) == expired
