"""streams.folding.fold_batch: hand-computed buckets and progress, idempotency and replays."""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from schemas.config import KpimonConfig, RepConfig, TeamConfig
from schemas.events import parse_event
from streams.facts import Scope
from streams.folding import (
    BucketGroup,
    FoldResult,
    GroupKey,
    ProgressValue,
    empty_progress,
    expired_group_keys,
    fold_batch,
)
from streams.records import Accepted, Position, Record, Rejected
from streams.validation import Rejection
from streams.windows import HOUR, MINUTE, QUARTER, Resolution

CONFIG = KpimonConfig(teams={"emea": TeamConfig(timezone="Europe/Berlin")}, reps={"alice": RepConfig(team="emea")})
CRM = "crm.events"
MKT = "marketing.events"

T0 = 1_700_000_000  # 2023-11-14T22:13:20Z
M1 = 1_699_999_980  # its minute (also holds T0 + 30)
M2 = 1_700_000_040  # the minute of T0 + 60
Q = 1_699_999_200  # its quarter (22:00Z)
H = 1_699_999_200  # its hour
# Groups: minute buckets by the hour, quarter and hour buckets by the UTC day.
GM = 1_699_999_200  # the minute group of T0 (22:00Z)
GD = 1_699_920_000  # the day group of T0 (2023-11-14T00:00Z)

ALL = Scope()
EMEA = Scope(team="emea")
ALICE = Scope(team="emea", rep="alice")
UNASSIGNED = Scope(team="unassigned")
BOB = Scope(team="unassigned", rep="bob")
BLOG = Scope(channel="blog")

FIELDS: dict[str, dict[str, Any]] = {
    "call.logged": {"rep_id": "alice", "duration_seconds": 120, "outcome": "connected"},
    "email.sent": {"rep_id": "bob", "contact_id": "c-1"},
    "content.published": {"channel": "blog", "content_id": "post-1"},
    "lead.created": {"lead_id": "l-1"},
}


def record(
    offset: int, event_type: str, event_id: str, timestamp: int, topic: str = CRM, partition: int = 0, **changes: Any
) -> Accepted:
    data = {
        "event_id": event_id,
        "occurred_at": datetime.fromtimestamp(timestamp, UTC).isoformat(),
        "source": "test",
        "type": event_type,
        **FIELDS[event_type],
        **changes,
    }
    return Accepted(Position(topic, partition, offset), parse_event(json.dumps(data).encode()))


def rejected(offset: int, reason: str, topic: str = CRM, partition: int = 0) -> Rejected:
    return Rejected(Position(topic, partition, offset), Rejection(reason, "detail"))


def key(scope: Scope, resolution: Resolution, group_start: int, partition: int = 0) -> str:
    return GroupKey(partition, scope, resolution, group_start).encode()


def group(buckets: dict[int, dict[str, float]], offsets: dict[str, int]) -> BucketGroup:
    return {"buckets": {str(start): counters for start, counters in buckets.items()}, "offsets": offsets}


def progress(watermark: int, offsets: dict[str, int], **counts: dict[str, int]) -> ProgressValue:
    value = empty_progress()
    value["watermark"] = watermark
    value["offsets"] = offsets
    for name, count in counts.items():
        value[name] = count  # type: ignore[literal-required]
    return value


class State:
    """The two tables as plain dicts."""

    def __init__(self) -> None:
        self.groups: dict[str, BucketGroup] = {}
        self.progress: dict[str, ProgressValue] = {}

    def fold(self, records: Sequence[Record], duplicates: Sequence[Position] = ()) -> FoldResult:
        return fold_batch(records, duplicates, groups=self.groups, progress=self.progress, config=CONFIG)

    def apply(self, result: FoldResult, *, groups: bool = True, progress: bool = True) -> None:
        if groups:
            self.groups.update(copy.deepcopy(result.groups))
        if progress:
            self.progress.update(copy.deepcopy(result.progress))

    def run(self, records: Sequence[Record], duplicates: Sequence[Position] = ()) -> FoldResult:
        result = self.fold(records, duplicates)
        self.apply(result)
        return result


CALL = {"calls": 1, "call_duration_seconds": 120.0, "calls_connected": 1}
EMAIL = {"emails_sent": 1}
CONTENT = {"content_published": 1}

BATCH: list[Record] = [
    record(0, "call.logged", "call-1", T0),
    record(1, "email.sent", "email-1", T0 + 30),
    rejected(2, "invalid_json"),
    record(3, "content.published", "post-1", T0 + 60),
]

EXPECTED_GROUPS = {
    key(ALL, MINUTE, GM): group({M1: {**CALL, **EMAIL}, M2: CONTENT}, {CRM: 3}),
    key(ALL, QUARTER, GD): group({Q: {**CALL, **EMAIL, **CONTENT}}, {CRM: 3}),
    key(ALL, HOUR, GD): group({H: {**CALL, **EMAIL, **CONTENT}}, {CRM: 3}),
    key(ALICE, MINUTE, GM): group({M1: CALL}, {CRM: 0}),
    key(ALICE, QUARTER, GD): group({Q: CALL}, {CRM: 0}),
    key(ALICE, HOUR, GD): group({H: CALL}, {CRM: 0}),
    key(EMEA, MINUTE, GM): group({M1: CALL}, {CRM: 0}),
    key(EMEA, QUARTER, GD): group({Q: CALL}, {CRM: 0}),
    key(EMEA, HOUR, GD): group({H: CALL}, {CRM: 0}),
    key(BOB, MINUTE, GM): group({M1: EMAIL}, {CRM: 1}),
    key(BOB, QUARTER, GD): group({Q: EMAIL}, {CRM: 1}),
    key(BOB, HOUR, GD): group({H: EMAIL}, {CRM: 1}),
    key(UNASSIGNED, MINUTE, GM): group({M1: EMAIL}, {CRM: 1}),
    key(UNASSIGNED, QUARTER, GD): group({Q: EMAIL}, {CRM: 1}),
    key(UNASSIGNED, HOUR, GD): group({H: EMAIL}, {CRM: 1}),
    key(BLOG, MINUTE, GM): group({M2: CONTENT}, {CRM: 3}),
    key(BLOG, QUARTER, GD): group({Q: CONTENT}, {CRM: 3}),
    key(BLOG, HOUR, GD): group({H: CONTENT}, {CRM: 3}),
}
EXPECTED_PROGRESS = {
    "0": progress(
        T0 + 60,
        {CRM: 3},
        events={"call.logged": 1, "email.sent": 1, "content.published": 1},
        rejected={"invalid_json": 1},
    )
}


@pytest.mark.parametrize(
    ("group_key", "encoded", "last_bucket_start"),
    [
        (GroupKey(0, ALL, MINUTE, GM), "0||||1m|1699999200", 1_700_002_740),
        (GroupKey(3, ALICE, QUARTER, GD), "3|emea|alice||15m|1699920000", 1_700_005_500),
        (GroupKey(11, BLOG, HOUR, GD), "11|||blog|1h|1699920000", 1_700_002_800),
        (GroupKey(1, EMEA, HOUR, 0), "1|emea|||1h|0", 82_800),
    ],
)
def test_group_key(group_key: GroupKey, encoded: str, last_bucket_start: int) -> None:
    assert group_key.encode() == encoded
    assert GroupKey.decode(encoded) == group_key
    assert group_key.last_bucket_start == last_bucket_start


def test_empty_progress() -> None:
    assert empty_progress() == {
        "watermark": 0,
        "offsets": {},
        "events": {},
        "duplicates": {},
        "late": {},
        "rejected": {},
    }
    assert empty_progress() is not empty_progress()


def test_fold_small_batch() -> None:
    result = State().fold(BATCH)
    assert result.groups == EXPECTED_GROUPS
    assert result.progress == EXPECTED_PROGRESS


def test_fold_empty_batch() -> None:
    result = State().fold([])
    assert result.groups == {}
    assert result.progress == {}


def test_fold_does_not_modify_the_stored_state() -> None:
    state = State()
    state.run(BATCH[:2])
    before = copy.deepcopy((state.groups, state.progress))
    state.fold(BATCH[2:])
    assert (state.groups, state.progress) == before


def test_fold_adds_to_stored_groups() -> None:
    state = State()
    state.run([record(0, "call.logged", "call-1", T0)])
    result = state.fold(
        [
            record(1, "call.logged", "call-2", T0 + 5, outcome="no_answer", duration_seconds=30),
            record(2, "call.logged", "call-3", T0 + 60, duration_seconds=10),
        ]
    )
    assert result.groups[key(ALICE, MINUTE, GM)] == group(
        {
            M1: {"calls": 2, "call_duration_seconds": 150.0, "calls_connected": 1},
            M2: {"calls": 1, "call_duration_seconds": 10.0, "calls_connected": 1},
        },
        {CRM: 2},
    )
    assert result.groups[key(ALICE, HOUR, GD)] == group(
        {H: {"calls": 3, "call_duration_seconds": 160.0, "calls_connected": 2}}, {CRM: 2}
    )
    assert result.progress["0"]["events"] == {"call.logged": 3}
    assert len(result.groups) == 9  # three scopes at three resolutions, each once


def test_events_without_counters_only_move_progress() -> None:
    result = State().fold([record(0, "lead.created", "lead-1", T0, team="emea")])
    assert result.groups == {}
    assert result.progress == {"0": progress(T0, {CRM: 0}, events={"lead.created": 1})}


def test_folding_again_changes_nothing() -> None:
    state = State()
    state.run(BATCH)
    again = state.fold(BATCH)
    assert again.groups == {}
    assert again.progress == {}  # unchanged values are not written again
    state.apply(again)
    assert state.groups == EXPECTED_GROUPS
    assert state.progress == EXPECTED_PROGRESS


def test_folding_again_returns_no_progress_change() -> None:
    state = State()
    state.run(BATCH)
    assert state.fold(BATCH).progress == {}


@pytest.mark.parametrize("split", range(len(BATCH) + 1))
def test_two_halves_equal_the_whole(split: int) -> None:
    state = State()
    state.run(BATCH[:split])
    state.run(BATCH[split:])
    assert state.groups == EXPECTED_GROUPS
    assert state.progress == EXPECTED_PROGRESS


@pytest.mark.parametrize("split", range(len(BATCH) + 1))
@pytest.mark.parametrize(
    ("keep_groups", "keep_progress"),
    [(True, True), (True, False), (False, True)],
    ids=["everything", "groups only", "progress only"],
)
def test_replay_after_partial_persistence(split: int, keep_groups: bool, keep_progress: bool) -> None:
    """A crash after part of the first half reached the changelog; then the whole batch is read again."""
    state = State()
    first = state.fold(BATCH[:split])
    state.apply(first, groups=keep_groups, progress=keep_progress)
    state.run(BATCH)
    assert state.groups == EXPECTED_GROUPS
    assert state.progress == EXPECTED_PROGRESS


def test_replay_after_some_group_keys_persisted() -> None:
    state = State()
    first = state.fold(BATCH)
    # Only the overall and the channel groups reached the changelog, no progress.
    state.groups.update({k: v for k, v in first.groups.items() if k.startswith(("0||||", "0|||blog|"))})
    state.run(BATCH)
    assert state.groups == EXPECTED_GROUPS
    assert state.progress == EXPECTED_PROGRESS


# At watermark T0 an event is late before 1_699_308_000 (its hour is no longer retained).
def test_late_event_counted_as_late_and_in_no_bucket() -> None:
    result = State().fold([record(0, "email.sent", "new", T0), record(1, "email.sent", "old", 1_699_307_999)])
    assert result.progress == {"0": progress(T0, {CRM: 1}, events={"email.sent": 1}, late={"email.sent": 1})}
    assert result.groups == {
        key(scope, resolution, start): group({bucket: EMAIL}, {CRM: 0})
        for scope in (ALL, BOB, UNASSIGNED)
        for resolution, start, bucket in ((MINUTE, GM, M1), (QUARTER, GD, Q), (HOUR, GD, H))
    }


def test_late_against_the_stored_watermark() -> None:
    state = State()
    state.progress["0"] = progress(T0, {CRM: 10})
    result = state.fold([record(11, "call.logged", "old", 1_699_000_000)])
    assert result.groups == {}
    assert result.progress == {"0": progress(T0, {CRM: 11}, late={"call.logged": 1})}


def test_oldest_retained_hour_gets_only_its_hour_bucket() -> None:
    # 1_699_308_000 is 2023-11-06T22:00Z, in the day group 1_699_228_800.
    result = State().fold([record(0, "email.sent", "new", T0), record(1, "email.sent", "edge", 1_699_308_000)])
    assert result.progress["0"]["events"] == {"email.sent": 2}
    assert result.progress["0"]["late"] == {}
    old = {k: v for k, v in result.groups.items() if v["offsets"] == {CRM: 1}}
    assert old == {
        key(scope, HOUR, 1_699_228_800): group({1_699_308_000: EMAIL}, {CRM: 1}) for scope in (ALL, BOB, UNASSIGNED)
    }


def test_three_hour_old_event_skips_the_minute_bucket() -> None:
    # T0 - 3 h = 1_699_989_200 (19:13:20Z): minute 1_699_989_180 is past the 2 h retention;
    # quarter and hour 1_699_988_400 (19:00Z) are retained, in the same day group as T0's.
    result = State().fold([record(0, "call.logged", "new", T0), record(1, "call.logged", "old", 1_699_989_200)])
    for scope in (ALL, ALICE, EMEA):
        assert result.groups[key(scope, MINUTE, GM)] == group({M1: CALL}, {CRM: 0})
        assert result.groups[key(scope, QUARTER, GD)] == group({Q: CALL, 1_699_988_400: CALL}, {CRM: 1})
        assert result.groups[key(scope, HOUR, GD)] == group({H: CALL, 1_699_988_400: CALL}, {CRM: 1})
    assert len(result.groups) == 9  # no minute group 1_699_988_400


def test_old_event_first_in_partition_order_keeps_its_minute_bucket() -> None:
    # The watermark only grows as records are applied: the old event comes first, so its minute is live then.
    result = State().fold([record(0, "call.logged", "old", 1_699_989_200), record(1, "call.logged", "new", T0)])
    assert result.groups[key(ALL, MINUTE, 1_699_988_400)] == group({1_699_989_180: CALL}, {CRM: 0})
    assert expired_group_keys(result.groups, {0: T0}) == [
        key(ALL, MINUTE, 1_699_988_400),
        key(ALICE, MINUTE, 1_699_988_400),
        key(EMEA, MINUTE, 1_699_988_400),
    ]


def test_duplicates_counted_and_not_folded() -> None:
    records: list[Record] = [
        record(0, "email.sent", "e1", T0),
        record(0, "email.sent", "e1", T0, topic=MKT),
        record(1, "email.sent", "e1", T0),
        record(2, "call.logged", "c1", T0 + 1),
        record(1, "call.logged", "c1", T0 + 1, topic=MKT),
    ]
    duplicates = [Position(MKT, 0, 0), Position(CRM, 0, 1), Position(MKT, 0, 1)]
    result = State().fold(records, duplicates)
    assert result.progress == {
        "0": progress(
            T0 + 1,
            {CRM: 2, MKT: 1},
            events={"email.sent": 1, "call.logged": 1},
            duplicates={"email.sent": 2, "call.logged": 1},
        )
    }
    assert result.groups[key(ALL, MINUTE, GM)] == group({M1: {**EMAIL, **CALL}}, {CRM: 2})
    assert result.groups[key(BOB, MINUTE, GM)] == group({M1: EMAIL}, {CRM: 0})


def test_duplicate_read_again_is_not_counted_twice() -> None:
    state = State()
    records: list[Record] = [record(0, "email.sent", "e1", T0), record(1, "email.sent", "e1", T0)]
    state.run(records, [Position(CRM, 0, 1)])
    state.run(records, [Position(CRM, 0, 1)])
    assert state.progress["0"]["duplicates"] == {"email.sent": 1}
    assert state.progress["0"]["events"] == {"email.sent": 1}


def test_rejected_counted_by_reason() -> None:
    state = State()
    records: list[Record] = [
        rejected(0, "invalid_json"),
        rejected(1, "unknown_type"),
        rejected(2, "invalid_json"),
        rejected(0, "too_large", topic=MKT),
    ]
    result = state.run(records)
    assert result.groups == {}
    assert result.progress == {
        "0": progress(0, {CRM: 2, MKT: 0}, rejected={"invalid_json": 2, "unknown_type": 1, "too_large": 1})
    }
    state.run(records[1:])  # read again: not counted again
    assert state.progress["0"]["rejected"] == {"invalid_json": 2, "unknown_type": 1, "too_large": 1}


def test_progress_per_partition_and_topic() -> None:
    records: list[Record] = [
        record(7, "email.sent", "a", T0, partition=0),
        record(3, "email.sent", "b", T0 - 100, topic=MKT, partition=0),
        record(40, "email.sent", "c", T0 - 50, partition=1),
        rejected(8, "invalid_json", partition=0),
        record(41, "email.sent", "d", T0 - 60, partition=1),
    ]
    result = State().fold(records)
    assert result.progress == {
        "0": progress(T0, {CRM: 8, MKT: 3}, events={"email.sent": 2}, rejected={"invalid_json": 1}),
        "1": progress(T0 - 50, {CRM: 41}, events={"email.sent": 2}),
    }
    assert result.groups[key(ALL, HOUR, GD, partition=0)] == group({H: {"emails_sent": 2}}, {CRM: 7, MKT: 3})
    assert result.groups[key(ALL, HOUR, GD, partition=1)] == group({H: {"emails_sent": 2}}, {CRM: 41})


def test_record_older_than_the_stored_offset_is_skipped() -> None:
    state = State()
    state.run([record(5, "email.sent", "a", T0)])
    result = state.fold([record(4, "email.sent", "z", T0)])  # below the applied offset: already applied
    assert result.groups == {}
    assert result.progress == {}


# A group expires when its last bucket does. At watermark T0 (cuts: 1m 1_699_992_800, 15m 1_699_827_200,
# 1h 1_699_308_800): a minute group (an hour) is live from start 1_699_989_201 on, a quarter group (a day)
# from 1_699_740_801, an hour group (a day) from 1_699_222_401.
@pytest.mark.parametrize(
    ("keys", "watermarks", "expired"),
    [
        ([key(ALL, MINUTE, 1_699_992_000)], {0: T0}, []),
        ([key(ALL, MINUTE, 1_699_988_400)], {0: T0}, [key(ALL, MINUTE, 1_699_988_400)]),
        ([key(ALL, MINUTE, 1_699_988_400)], {0: 1_699_999_199}, []),  # its last minute ends 7_200 s before
        ([key(ALL, MINUTE, 1_699_988_400)], {0: 1_699_999_200}, [key(ALL, MINUTE, 1_699_988_400)]),
        ([key(ALICE, QUARTER, 1_699_747_200)], {0: T0}, []),
        ([key(ALICE, QUARTER, 1_699_660_800)], {0: T0}, [key(ALICE, QUARTER, 1_699_660_800)]),
        ([key(BLOG, HOUR, 1_699_228_800)], {0: T0}, []),
        ([key(BLOG, HOUR, 1_699_142_400)], {0: T0}, [key(BLOG, HOUR, 1_699_142_400)]),
        ([key(ALL, HOUR, 1_699_142_400, partition=2)], {0: T0}, []),  # no watermark for partition 2
        ([key(ALL, HOUR, 1_699_142_400, partition=2)], {2: T0}, [key(ALL, HOUR, 1_699_142_400, partition=2)]),
        (
            [
                key(ALL, MINUTE, 1_699_988_400),
                key(ALL, QUARTER, 1_699_920_000),
                key(ALL, HOUR, 1_699_920_000),
                key(ALL, MINUTE, 1_699_988_400, partition=1),
            ],
            {0: T0, 1: 1_699_992_720},
            [key(ALL, MINUTE, 1_699_988_400)],
        ),
    ],
)
def test_expired_group_keys(keys: list[str], watermarks: dict[int, int], expired: list[str]) -> None:
    assert expired_group_keys(keys, watermarks) == expired
