"""streams.core.folding.fold_batch: hand-computed buckets and progress, idempotency and replays."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from schemas.config import KpimonConfig, RepConfig, TeamConfig
from schemas.events import parse_event
from schemas.scopes import Scope
from streams.core.folding import (
    BucketGroup,
    FoldResult,
    GroupEnds,
    GroupKey,
    ProgressValue,
    empty_progress,
    expired_group_keys,
    fold_batch,
)
from streams.core.records import Accepted, Fact, Forwarded, Position, Record, Rejected
from streams.core.validation import Rejection
from streams.core.windows import DAY, HOUR, MINUTE, MONTH, QUARTER, Resolution

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
# Day and month buckets in the scope's zone: UTC (the config's default, and the unassigned team's)
# or Europe/Berlin (team emea and its reps). Day buckets are stored by the month, months by the year.
D_UTC = 1_699_920_000  # 2023-11-14 00:00 UTC
MO_UTC = 1_698_796_800  # 2023-11-01 00:00 UTC: the month, and the day group
Y_UTC = 1_672_531_200  # 2023-01-01 00:00 UTC: the month group
D_BER = 1_699_916_400  # 2023-11-14 00:00 CET = 2023-11-13T23:00Z (T0 is 23:13 CET)
MO_BER = 1_698_793_200  # 2023-11-01 00:00 CET
Y_BER = 1_672_527_600  # 2023-01-01 00:00 CET

ALL = Scope()
EMEA = Scope(team="emea")
ALICE = Scope(team="emea", rep="alice")
UNASSIGNED = Scope(team="unassigned")
BOB = Scope(team="unassigned", rep="bob")
BLOG = Scope(channel="blog")
SPRING = Scope(campaign="spring")
ODD = Scope(campaign="q1|2024|x")

FIELDS: dict[str, dict[str, Any]] = {
    "call.logged": {"rep_id": "alice", "duration_seconds": 120, "outcome": "connected"},
    "email.sent": {"rep_id": "bob", "contact_id": "c-1"},
    "content.published": {"channel": "blog", "content_id": "post-1"},
    "lead.created": {"lead_id": "l-1"},
    "campaign.launched": {"campaign_id": "spring", "channel": "paid_search"},
    "email_campaign.sent": {"campaign_id": "spring", "recipients": 300},
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

    def run_with_facts(self, records: Sequence[Record], facts: dict[Position, list[Fact]]) -> FoldResult:
        result = fold_batch(records, (), groups=self.groups, progress=self.progress, config=CONFIG, entity_facts=facts)
        self.apply(result)
        return result

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
    key(ALL, DAY, MO_UTC): group({D_UTC: {**CALL, **EMAIL, **CONTENT}}, {CRM: 3}),
    key(ALL, MONTH, Y_UTC): group({MO_UTC: {**CALL, **EMAIL, **CONTENT}}, {CRM: 3}),
    key(ALICE, MINUTE, GM): group({M1: CALL}, {CRM: 0}),
    key(ALICE, QUARTER, GD): group({Q: CALL}, {CRM: 0}),
    key(ALICE, HOUR, GD): group({H: CALL}, {CRM: 0}),
    key(ALICE, DAY, MO_BER): group({D_BER: CALL}, {CRM: 0}),
    key(ALICE, MONTH, Y_BER): group({MO_BER: CALL}, {CRM: 0}),
    key(EMEA, MINUTE, GM): group({M1: CALL}, {CRM: 0}),
    key(EMEA, QUARTER, GD): group({Q: CALL}, {CRM: 0}),
    key(EMEA, HOUR, GD): group({H: CALL}, {CRM: 0}),
    key(EMEA, DAY, MO_BER): group({D_BER: CALL}, {CRM: 0}),
    key(EMEA, MONTH, Y_BER): group({MO_BER: CALL}, {CRM: 0}),
    key(BOB, MINUTE, GM): group({M1: EMAIL}, {CRM: 1}),
    key(BOB, QUARTER, GD): group({Q: EMAIL}, {CRM: 1}),
    key(BOB, HOUR, GD): group({H: EMAIL}, {CRM: 1}),
    key(BOB, DAY, MO_UTC): group({D_UTC: EMAIL}, {CRM: 1}),
    key(BOB, MONTH, Y_UTC): group({MO_UTC: EMAIL}, {CRM: 1}),
    key(UNASSIGNED, MINUTE, GM): group({M1: EMAIL}, {CRM: 1}),
    key(UNASSIGNED, QUARTER, GD): group({Q: EMAIL}, {CRM: 1}),
    key(UNASSIGNED, HOUR, GD): group({H: EMAIL}, {CRM: 1}),
    key(UNASSIGNED, DAY, MO_UTC): group({D_UTC: EMAIL}, {CRM: 1}),
    key(UNASSIGNED, MONTH, Y_UTC): group({MO_UTC: EMAIL}, {CRM: 1}),
    key(BLOG, MINUTE, GM): group({M2: CONTENT}, {CRM: 3}),
    key(BLOG, QUARTER, GD): group({Q: CONTENT}, {CRM: 3}),
    key(BLOG, HOUR, GD): group({H: CONTENT}, {CRM: 3}),
    key(BLOG, DAY, MO_UTC): group({D_UTC: CONTENT}, {CRM: 3}),
    key(BLOG, MONTH, Y_UTC): group({MO_UTC: CONTENT}, {CRM: 3}),
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
    ("group_key", "tz_name", "encoded", "last_bucket_start", "end"),
    [
        (GroupKey(0, ALL, MINUTE, GM), "UTC", "0|||||1m|1699999200", 1_700_002_740, 1_700_002_800),
        (
            GroupKey(3, ALICE, QUARTER, GD),
            "Europe/Berlin",
            "3|emea|alice|||15m|1699920000",
            1_700_005_500,
            1_700_006_400,
        ),
        (GroupKey(11, BLOG, HOUR, GD), "UTC", "11|||blog||1h|1699920000", 1_700_002_800, 1_700_006_400),
        (GroupKey(1, EMEA, HOUR, 0), "Europe/Berlin", "1|emea||||1h|0", 82_800, 86_400),
        # November 2023 of days: the last starts on 2023-11-30, the next group on 2023-12-01
        (GroupKey(0, ALL, DAY, MO_UTC), "UTC", "0|||||1d|1698796800", 1_701_302_400, 1_701_388_800),
        (GroupKey(2, EMEA, DAY, MO_BER), "Europe/Berlin", "2|emea||||1d|1698793200", 1_701_298_800, 1_701_385_200),
        # 2023 of months: the last starts on 2023-12-01, the next group on 2024-01-01
        (GroupKey(0, BLOG, MONTH, Y_UTC), "UTC", "0|||blog||1mo|1672531200", 1_701_388_800, 1_704_067_200),
        (
            GroupKey(5, ALICE, MONTH, Y_BER),
            "Europe/Berlin",
            "5|emea|alice|||1mo|1672527600",
            1_701_385_200,
            1_704_063_600,
        ),
        # a campaign (the config's default zone); its id may hold the separator
        (GroupKey(4, SPRING, HOUR, GD), "UTC", "4||||spring|1h|1699920000", 1_700_002_800, 1_700_006_400),
        (GroupKey(4, ODD, MONTH, Y_UTC), "UTC", "4||||q1|2024|x|1mo|1672531200", 1_701_388_800, 1_704_067_200),
    ],
)
def test_group_key(group_key: GroupKey, tz_name: str, encoded: str, last_bucket_start: int, end: int) -> None:
    assert group_key.encode() == encoded
    assert GroupKey.decode(encoded) == group_key
    assert group_key.last_bucket_start(ZoneInfo(tz_name)) == last_bucket_start
    assert group_key.end(ZoneInfo(tz_name)) == end


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


def test_a_changed_group_shares_the_stored_buckets_it_does_not_change() -> None:
    """Only the buckets a batch adds to are copied; the others are the stored dicts (readers compare by identity)."""
    state = State()
    state.run([record(0, "call.logged", "call-1", T0)])
    stored = state.groups[key(ALICE, MINUTE, GM)]
    result = state.fold([record(1, "call.logged", "call-2", T0 + 60)])
    changed = result.groups[key(ALICE, MINUTE, GM)]
    assert changed["buckets"][str(M1)] is stored["buckets"][str(M1)]
    assert changed["buckets"][str(M2)] == CALL
    assert changed is not stored and changed["buckets"] is not stored["buckets"]
    assert changed["offsets"] is not stored["offsets"]
    again = state.fold([record(1, "call.logged", "call-2", T0 + 1)])  # the same minute: its bucket is copied
    assert again.groups[key(ALICE, MINUTE, GM)]["buckets"][str(M1)] == {
        "calls": 2,
        "call_duration_seconds": 240.0,
        "calls_connected": 2,
    }
    assert stored["buckets"][str(M1)] == CALL


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
    assert result.groups[key(ALICE, DAY, MO_BER)] == group(
        {D_BER: {"calls": 3, "call_duration_seconds": 160.0, "calls_connected": 2}}, {CRM: 2}
    )
    assert result.progress["0"]["events"] == {"call.logged": 3}
    assert len(result.groups) == 15  # three scopes at five resolutions, each once


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
    [(True, True), (False, True), (False, False)],
    ids=["everything", "progress only", "nothing"],
)
def test_replay_after_partial_persistence(split: int, keep_groups: bool, keep_progress: bool) -> None:
    """A crash after part of the first half reached the changelog; then the whole batch is read again.

    A batch's progress is durable before its groups (streams.ingest.batch), so groups never survive without it.
    """
    state = State()
    first = state.fold(BATCH[:split])
    state.apply(first, groups=keep_groups, progress=keep_progress)
    state.run(BATCH)
    assert state.groups == EXPECTED_GROUPS
    assert state.progress == EXPECTED_PROGRESS


def test_replay_after_some_group_keys_persisted() -> None:
    state = State()
    first = state.fold(BATCH)
    # The progress and only the overall and the channel groups reached the changelog.
    state.progress.update(first.progress)
    state.groups.update({k: v for k, v in first.groups.items() if k.startswith(("0||||", "0|||blog|"))})
    state.run(BATCH)
    assert state.groups == EXPECTED_GROUPS
    assert state.progress == EXPECTED_PROGRESS


# At watermark T0 an event is late before 1_630_880_000 (800 days, the 1mo retention, to the second).
def test_late_event_counted_as_late_and_in_no_bucket() -> None:
    result = State().fold([record(0, "email.sent", "new", T0), record(1, "email.sent", "old", 1_630_879_999)])
    assert result.progress == {"0": progress(T0, {CRM: 1}, events={"email.sent": 1}, late={"email.sent": 1})}
    assert result.groups == {
        key(scope, resolution, start): group({bucket: EMAIL}, {CRM: 0})
        for scope in (ALL, BOB, UNASSIGNED)
        for resolution, start, bucket in (
            (MINUTE, GM, M1),
            (QUARTER, GD, Q),
            (HOUR, GD, H),
            (DAY, MO_UTC, D_UTC),
            (MONTH, Y_UTC, MO_UTC),
        )
    }


def test_900_day_old_event_is_late() -> None:
    state = State()
    state.progress["0"] = progress(T0, {CRM: 10})
    result = state.fold([record(11, "call.logged", "old", T0 - 900 * 86_400)])
    assert result.groups == {}
    assert result.progress == {"0": progress(T0, {CRM: 11}, late={"call.logged": 1})}


def test_800_day_old_event_gets_only_its_month_bucket() -> None:
    # 1_630_880_000 is 2021-09-05T22:13:20Z = 2021-09-06 00:13:20 CEST: in September 2021 in both zones.
    state = State()
    state.progress["0"] = progress(T0, {CRM: 10})
    result = state.fold([record(11, "call.logged", "edge", 1_630_880_000)])
    assert result.progress == {"0": progress(T0, {CRM: 11}, events={"call.logged": 1})}
    assert result.groups == {
        key(ALL, MONTH, 1_609_459_200): group({1_630_454_400: CALL}, {CRM: 11}),  # 2021 and 2021-09 in UTC
        key(ALICE, MONTH, 1_609_455_600): group({1_630_447_200: CALL}, {CRM: 11}),  # in Berlin
        key(EMEA, MONTH, 1_609_455_600): group({1_630_447_200: CALL}, {CRM: 11}),
    }


def test_20_day_old_event_is_not_late_and_lands_in_its_day_and_month_only() -> None:
    # T0 - 20 days = 1_698_272_000 = 2023-10-25T22:13:20Z: still the 25th in UTC, already
    # 2023-10-26 00:13:20 CEST in Berlin. Minute, quarter and hour buckets no longer retain it.
    state = State()
    state.progress["0"] = progress(T0, {CRM: 10})
    result = state.fold([record(11, "call.logged", "old", 1_698_272_000)])
    assert result.progress == {"0": progress(T0, {CRM: 11}, events={"call.logged": 1})}
    october_utc, october_berlin = 1_696_118_400, 1_696_111_200  # 2023-10-01 00:00 UTC / CEST
    assert result.groups == {
        key(ALL, DAY, october_utc): group({1_698_192_000: CALL}, {CRM: 11}),  # 2023-10-25 UTC
        key(ALL, MONTH, Y_UTC): group({october_utc: CALL}, {CRM: 11}),
        key(ALICE, DAY, october_berlin): group({1_698_271_200: CALL}, {CRM: 11}),  # 2023-10-26 CEST
        key(ALICE, MONTH, Y_BER): group({october_berlin: CALL}, {CRM: 11}),
        key(EMEA, DAY, october_berlin): group({1_698_271_200: CALL}, {CRM: 11}),
        key(EMEA, MONTH, Y_BER): group({october_berlin: CALL}, {CRM: 11}),
    }


def test_101_day_old_event_gets_only_its_month_bucket() -> None:
    # T0 - 101 days = 1_691_273_600 = 2023-08-05T22:13:20Z: its day has ended more than 100 days before T0.
    state = State()
    state.progress["0"] = progress(T0, {CRM: 10})
    result = state.fold([record(11, "email.sent", "old", 1_691_273_600)])
    assert result.groups == {
        key(scope, MONTH, Y_UTC): group({1_690_848_000: EMAIL}, {CRM: 11}) for scope in (ALL, BOB, UNASSIGNED)
    }


def test_oldest_retained_hour_gets_its_hour_day_and_month_buckets() -> None:
    # 1_699_308_000 is 2023-11-06T22:00Z, in the day group 1_699_228_800.
    result = State().fold([record(0, "email.sent", "new", T0), record(1, "email.sent", "edge", 1_699_308_000)])
    assert result.progress["0"]["events"] == {"email.sent": 2}
    assert result.progress["0"]["late"] == {}
    for scope in (ALL, BOB, UNASSIGNED):
        assert result.groups[key(scope, HOUR, 1_699_228_800)] == group({1_699_308_000: EMAIL}, {CRM: 1})
        assert result.groups[key(scope, DAY, MO_UTC)] == group({1_699_228_800: EMAIL, D_UTC: EMAIL}, {CRM: 1})
        assert result.groups[key(scope, MONTH, Y_UTC)] == group({MO_UTC: {"emails_sent": 2}}, {CRM: 1})
    assert len(result.groups) == 3 * 6  # no minute or quarter group for the old one


BERLIN_CONFIG = KpimonConfig(
    timezone="Asia/Kathmandu",
    teams={"emea": TeamConfig(timezone="Europe/Berlin")},
    reps={"alice": RepConfig(team="emea")},
)


def test_day_buckets_across_the_25_hour_day_in_berlin() -> None:
    # Berlin 2024-10-27 runs from 2024-10-26T22:00Z to 2024-10-27T23:00Z (25 hours). The overall
    # scope is in Asia/Kathmandu (+05:45) here: its 2024-10-27 runs from 2024-10-26T18:15Z.
    calls = [
        record(0, "call.logged", "a", 1_729_989_000),  # 00:30Z = 02:30 CEST, 06:15 +05:45
        record(1, "call.logged", "b", 1_729_992_600),  # 01:30Z = 02:30 CET
        record(2, "call.logged", "c", 1_730_068_200),  # 22:30Z = 23:30 CET; 2024-10-28 04:15 +05:45
        record(3, "call.logged", "d", 1_730_071_800),  # 23:30Z = 2024-10-28 00:30 CET
    ]
    result = fold_batch(calls, [], groups={}, progress={}, config=BERLIN_CONFIG)
    october_berlin, october_kathmandu = 1_727_733_600, 1_727_720_100  # 2024-10-01 00:00 local
    assert result.groups[key(EMEA, DAY, october_berlin)]["buckets"] == {
        "1729980000": {"calls": 3, "call_duration_seconds": 360.0, "calls_connected": 3},  # 2024-10-27
        "1730070000": {"calls": 1, "call_duration_seconds": 120.0, "calls_connected": 1},  # 2024-10-28
    }
    assert result.groups[key(ALL, DAY, october_kathmandu)]["buckets"] == {
        "1729966500": {"calls": 2, "call_duration_seconds": 240.0, "calls_connected": 2},  # 2024-10-26T18:15Z
        "1730052900": {"calls": 2, "call_duration_seconds": 240.0, "calls_connected": 2},  # 2024-10-27T18:15Z
    }
    assert result.groups[key(EMEA, MONTH, 1_704_063_600)]["buckets"] == {
        str(october_berlin): {"calls": 4, "call_duration_seconds": 480.0, "calls_connected": 4}
    }


def test_an_hour_across_a_local_midnight_gives_each_day_its_own_minutes() -> None:
    # The overall scope is in Asia/Kathmandu (+05:45): 2024-10-27 starts at 2024-10-26T18:15Z, inside
    # the hour 18:00Z and its quarter 18:15Z. The minutes are rolled up into quarters, hours and days
    # kept apart by local day: the hour takes both calls, each day only its own.
    calls = [
        record(0, "call.logged", "a", 1_729_966_200),  # 18:10Z = 2024-10-26 23:55 +05:45
        record(1, "call.logged", "b", 1_729_966_560),  # 18:16Z = 2024-10-27 00:01 +05:45
        record(2, "call.logged", "c", 1_729_967_100),  # 18:25Z = 2024-10-27 00:10 +05:45
    ]
    result = fold_batch(calls, [], groups={}, progress={}, config=BERLIN_CONFIG)
    one, two = CALL, {"calls": 2, "call_duration_seconds": 240.0, "calls_connected": 2}
    day_group, october = 1_729_900_800, 1_727_720_100  # 2024-10-26T00:00Z (UTC day groups); October, local
    assert result.groups[key(ALL, QUARTER, day_group)]["buckets"] == {"1729965600": one, "1729966500": two}
    assert result.groups[key(ALL, HOUR, day_group)]["buckets"] == {
        "1729965600": {"calls": 3, "call_duration_seconds": 360.0, "calls_connected": 3}
    }
    assert result.groups[key(ALL, DAY, october)]["buckets"] == {"1729880100": one, "1729966500": two}
    assert result.groups[key(ALL, MONTH, 1_704_046_500)]["buckets"] == {
        str(october): {"calls": 3, "call_duration_seconds": 360.0, "calls_connected": 3}
    }


def test_three_hour_old_event_skips_the_minute_bucket() -> None:
    # T0 - 3 h = 1_699_989_200 (19:13:20Z): minute 1_699_989_180 is past the 2 h retention;
    # quarter and hour 1_699_988_400 (19:00Z) are retained, in the same day group as T0's.
    result = State().fold([record(0, "call.logged", "new", T0), record(1, "call.logged", "old", 1_699_989_200)])
    for scope in (ALL, ALICE, EMEA):
        assert result.groups[key(scope, MINUTE, GM)] == group({M1: CALL}, {CRM: 0})
        assert result.groups[key(scope, QUARTER, GD)] == group({Q: CALL, 1_699_988_400: CALL}, {CRM: 1})
        assert result.groups[key(scope, HOUR, GD)] == group({H: CALL, 1_699_988_400: CALL}, {CRM: 1})
        assert result.groups[key(scope, MONTH, Y_BER if scope.team else Y_UTC)]["buckets"] == {
            str(MO_BER if scope.team else MO_UTC): {"calls": 2, "call_duration_seconds": 240.0, "calls_connected": 2}
        }
    assert len(result.groups) == 3 * 5  # no minute group 1_699_988_400


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


def test_forwarded_messages_only_move_the_offsets() -> None:
    state = State()
    result = state.run([record(4, "email.sent", "a", T0), Forwarded(Position(CRM, 0, 5))])
    assert result.progress == {"0": progress(T0, {CRM: 5}, events={"email.sent": 1})}
    assert state.run([Forwarded(Position(CRM, 0, 5))]).progress == {}


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
    assert expired_group_keys(keys, watermarks, CONFIG) == expired


# Day groups (a local month) expire 100 days after their last day ends, month groups (a local year)
# 800 days after their December ends. August 2023 ends at 2023-09-01T00:00Z in UTC and at
# 2023-08-31T22:00Z in Berlin: 100 days later, 1_702_166_400 and 1_702_159_200. Berlin's 2021 ends at
# 2021-12-31T23:00Z, expired from 1_710_111_600 on. Without the config the latest end in any zone is used:
# three days after the group's longest length (31 or 366 days) from its start.
AUG_UTC, AUG_BER = 1_690_848_000, 1_690_840_800
Y2021_BER = 1_609_455_600


@pytest.mark.parametrize(
    ("group_key", "watermark", "with_config", "without_config"),
    [
        (key(ALL, DAY, AUG_UTC), 1_702_166_399, False, False),
        (key(ALL, DAY, AUG_UTC), 1_702_166_400, True, False),
        (key(EMEA, DAY, AUG_BER), 1_702_159_199, False, False),
        (key(EMEA, DAY, AUG_BER), 1_702_159_200, True, False),
        (key(ALICE, DAY, AUG_BER), 1_702_159_200, True, False),  # a rep: its team's zone
        (key(EMEA, DAY, AUG_BER), AUG_BER + 34 * 86_400 + 8_640_000 - 1, True, False),
        (key(EMEA, DAY, AUG_BER), AUG_BER + 34 * 86_400 + 8_640_000, True, True),
        (key(ALICE, MONTH, Y2021_BER), 1_710_111_599, False, False),
        (key(ALICE, MONTH, Y2021_BER), 1_710_111_600, True, False),
        (key(ALICE, MONTH, Y2021_BER), Y2021_BER + 369 * 86_400 + 69_120_000, True, True),
        (key(ALL, MONTH, Y_UTC), T0, False, False),
    ],
)
def test_expired_calendar_group_keys(group_key: str, watermark: int, with_config: bool, without_config: bool) -> None:
    assert expired_group_keys([group_key], {0: watermark}, CONFIG) == ([group_key] if with_config else [])
    assert expired_group_keys([group_key], {0: watermark}) == ([group_key] if without_config else [])


@pytest.mark.parametrize("config", [CONFIG, None])
def test_group_ends_asked_again_agree_with_expired_group_keys(config: KpimonConfig | None) -> None:
    """The cached ends give what decoding every key gives, batch after batch, as keys come, go and expire."""
    ends = GroupEnds(config)
    keys = [key(scope, resolution, start, partition) for scope, resolution, start, partition in GROUPS_OF_SWEEPS]
    for watermark in range(T0, T0 + 200 * 86_400, 7 * 86_400):
        watermarks = {0: watermark, 1: watermark - 3 * 86_400}
        expired = ends.expired(keys, watermarks)
        assert expired == expired_group_keys(keys, watermarks, config)
        keys = [name for name in keys if name not in expired]
    assert keys == [key(ALICE, MONTH, Y_BER), key(BOB, MINUTE, GM, 2)]
    assert ends.expired([], {0: T0}) == []  # keys no longer asked about are forgotten
    assert ends.expired(keys, {0: T0 + 3_000 * 86_400}) == keys[:1]


GROUPS_OF_SWEEPS = [
    (ALL, MINUTE, GM, 0),
    (ALICE, QUARTER, GD, 0),
    (EMEA, HOUR, GD, 1),
    (EMEA, DAY, MO_BER, 0),
    (ALL, DAY, MO_UTC, 1),
    (ALICE, MONTH, Y_BER, 0),
    (BOB, MINUTE, GM, 2),  # a partition without a watermark: never expired
]


def test_an_entity_record_folds_its_facts_into_their_own_buckets_once() -> None:
    """A deal won before its creation arrived: the creation adds the opportunity and the cycle, one write per group."""
    state = State()
    created = record(5, "lead.created", "lc", T0)  # any entity event: its facts come from streams.entities.deals_leads
    facts = [
        Fact(T0, None, None, "web", {"leads": 1}),
        Fact(T0 + 60, None, None, "web", {"cycle_sample:d1": 60.0, "cycle_seconds": 60}),
    ]
    result = state.run_with_facts([created], {created.position: facts})
    web = Scope(channel="web")
    assert result.groups[key(web, MINUTE, GM)] == group(
        {M1: {"leads": 1}, M2: {"cycle_sample:d1": 60.0, "cycle_seconds": 60}}, {CRM: 5}
    )
    assert result.groups[key(web, MONTH, Y_UTC)] == group(
        {MO_UTC: {"leads": 1, "cycle_sample:d1": 60.0, "cycle_seconds": 60}}, {CRM: 5}
    )
    assert state.run_with_facts([created], {created.position: facts}).groups == {}  # read again: applied already


def test_a_retracted_per_deal_counter_leaves_the_bucket() -> None:
    state = State()
    first, second = record(5, "lead.created", "a", T0), record(6, "lead.created", "b", T0)
    state.run_with_facts([first], {first.position: [Fact(T0, None, None, "web", {"cycle_sample:d1": 60.0})]})
    result = state.run_with_facts(
        [second], {second.position: [Fact(T0, None, None, "web", {"cycle_sample:d1": -60.0})]}
    )
    assert result.groups[key(Scope(channel="web"), MONTH, Y_UTC)] == group({MO_UTC: {}}, {CRM: 6})


def test_a_campaigns_own_events_count_under_it_in_the_default_zone() -> None:
    state = State()
    result = state.run(
        [
            record(0, "campaign.launched", "launch", T0, MKT, team="emea"),
            record(1, "email_campaign.sent", "send", T0 + 60, MKT),
            record(2, "content.published", "post", T0 + 60, MKT),  # no campaign_id: in no campaign
        ]
    )
    assert result.groups[key(SPRING, MINUTE, GM)] == group(
        {M1: {"campaigns_launched": 1}, M2: {"email_campaign_sends": 300}}, {MKT: 1}
    )
    assert result.groups[key(SPRING, DAY, MO_UTC)] == group(
        {D_UTC: {"campaigns_launched": 1, "email_campaign_sends": 300}}, {MKT: 1}
    )  # the config's default zone (UTC), not the launching team's (Berlin)
    assert result.groups[key(Scope(channel="paid_search"), MINUTE, GM)] == group(
        {M1: {"campaigns_launched": 1}}, {MKT: 0}
    )
    campaigns = {GroupKey.decode(name).scope.campaign for name in result.groups} - {""}
    assert campaigns == {"spring"}


def test_entity_facts_count_in_their_campaign_and_facts_without_one_in_none() -> None:
    state = State()
    created = record(5, "lead.created", "lc", T0)
    facts = [
        Fact(T0, "emea", None, "web", {"leads": 1}, "q1|2024|x"),
        Fact(T0 + 60, None, None, "web", {"mqls": 1}),
    ]
    result = state.run_with_facts([created], {created.position: facts})
    assert result.groups[key(ODD, MINUTE, GM)] == group({M1: {"leads": 1}}, {CRM: 5})
    assert result.groups[key(ODD, MONTH, Y_UTC)] == group({MO_UTC: {"leads": 1}}, {CRM: 5})
    assert result.groups[key(Scope(channel="web"), MINUTE, GM)] == group({M1: {"leads": 1}, M2: {"mqls": 1}}, {CRM: 5})
    assert {GroupKey.decode(name).scope.kind for name in result.groups} == {"all", "team", "channel", "campaign"}
    assert all(GroupKey.decode(name).scope.campaign in ("", "q1|2024|x") for name in result.groups)


def test_a_sum_that_is_not_a_finite_number_is_refused_not_stored() -> None:
    """Bounded events never overflow (the contract); a sum that would not be a number is refused, never written."""
    state = State()
    state.groups[key(Scope(), MINUTE, T0 - T0 % 3600)] = group({T0 - T0 % 60: {"call_duration_seconds": math.inf}}, {})
    with pytest.raises(ValueError, match="call_duration_seconds would become inf"):
        state.fold([record(0, "call.logged", "c1", T0, duration_seconds=86_400)])


def test_stored_values_read_back_as_written() -> None:
    """What the changelog restores (JSON) equals what folding wrote: numbers only, all finite."""
    result = State().fold([*BATCH, record(1000, "call.logged", "c1", T0, duration_seconds=86_400)])
    values = [value for g in result.groups.values() for bucket in g["buckets"].values() for value in bucket.values()]
    assert values and all(math.isfinite(value) for value in values)
    assert orjson.loads(orjson.dumps(result.groups)) == result.groups
