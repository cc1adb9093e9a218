"""Property tests: dedup + folding under duplicates, batching, crashes and replays equals a naive count.

The stream model: events (some with several copies, on two topics) and a few rejected messages,
partitioned by event id as the pipeline does, read in batches. After a batch the worker writes its
seen ids (flushed first), then its progress (flushed), then the changed bucket groups, then deletes
expired groups.
Buckets are stored in groups (one key per scope, resolution and hour, day, local month or local year).
Events are up to 800 days old (the longest retention), so none is late whatever the order; only
those inside the dedup horizon (8 days) have several copies.
A crash loses the writes of the newest batches except a prefix of each table's changelog (a progress
prefix that covers every batch whose buckets survived, a seen prefix that covers both), and the consumer resumes from an
offset no later than the first batch not fully written. The expected values come from the distinct
events by the definitions in streams/core/windows.py, computed here without the code under test.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.config import KpimonConfig, RepConfig, TeamConfig
from schemas.events import parse_event
from schemas.scopes import Scope
from streams.core.dedup import MemorySeen, chunk_key, encode_chunk, expired_days
from streams.core.folding import GroupKey, expired_group_keys
from streams.core.records import Accepted, Position, Record, Rejected
from streams.core.validation import Rejection
from streams.core.windows import DAY, HOUR, MINUTE, MONTH, QUARTER, Resolution
from streams.ingest.batch import StoredState, plan_batch
from streams.readout.kpis import monthly_totals, window_totals

NOW = 1_700_000_000  # 2023-11-14T22:13:20Z, a Tuesday
WEEK = 7 * 86_400
DAYS = 86_400
# streams.core.dedup remembers event ids for 8 days of event time (at least): copies of older events may count twice.
DEDUP_HORIZON = 8 * DAYS
CONFIG = KpimonConfig(
    timezone="Europe/Berlin",
    teams={
        "emea": TeamConfig(timezone="Europe/Berlin"),
        "amer": TeamConfig(timezone="America/New_York"),
        "apac": TeamConfig(timezone="Asia/Kathmandu"),
    },
    reps={"alice": RepConfig(team="emea"), "bob": RepConfig(team="amer"), "dev": RepConfig(team="apac")},
)
REP_TEAMS = {"alice": "emea", "bob": "amer", "dev": "apac"}  # carol has no team
REPS = ("alice", "bob", "carol", "dev")
EVENT_TEAMS = (None, None, "emea", "amer", "apac")
TYPES = ("call.logged", "email.sent", "email.replied", "meeting.booked")
TOPICS = ("crm.events", "kpimon-ingest-rekeyed")
PARTITIONS = 2

# The first bucket of each calendar window at NOW, by hand: local midnight of today (2023-11-14, and
# already the 15th in Kathmandu), of Monday 13th, of the 29th day before today, of November 1st
# and of October 1st.
NOW_STARTS: dict[str, dict[str, int]] = {
    "Europe/Berlin": {
        "today": 1_699_916_400,  # 2023-11-13T23:00Z
        "week": 1_699_830_000,  # 2023-11-12T23:00Z
        "30d": 1_697_407_200,  # 2023-10-16 00:00 CEST
        "month": 1_698_793_200,  # 2023-10-31T23:00Z
        "quarter": 1_696_111_200,  # 2023-10-01 00:00 CEST
    },
    "America/New_York": {
        "today": 1_699_938_000,  # 2023-11-14T05:00Z
        "week": 1_699_851_600,
        "30d": 1_697_428_800,  # 2023-10-16 00:00 EDT
        "month": 1_698_811_200,  # 2023-11-01 00:00 EDT
        "quarter": 1_696_132_800,
    },
    "Asia/Kathmandu": {
        "today": 1_699_985_700,  # 2023-11-14T18:15Z
        "week": 1_699_812_900,
        "30d": 1_697_480_100,  # 2023-10-17 00:00 +05:45
        "month": 1_698_776_100,
        "quarter": 1_696_097_700,
    },
}
TEAM_ZONES = {"emea": "Europe/Berlin", "amer": "America/New_York", "apac": "Asia/Kathmandu"}
# Ages (NOW - timestamp) just inside and outside each window's first bucket at NOW.
EDGE_AGES = (
    0,
    20,  # the first second of the current minute
    21,
    3_560,  # 1h: first minute 1_699_996_440
    3_561,
    7_220,  # the 2 h minute retention at watermark NOW
    7_221,
    14_300,  # today in Kathmandu
    14_301,
    62_000,  # today in New York
    62_001,
    83_600,  # today in Berlin
    83_601,
    86_300,  # 24h: first quarter 1_699_913_700
    86_301,
    602_000,  # 7d: first hour 1_699_398_000
    602_001,
    WEEK - 1,
    691_200,  # the 8-day hour retention
    691_201,
    100 * DAYS,  # the 100-day day retention
    100 * DAYS + 1,
    NOW - 1_691_359_200,  # the day 2023-08-07 starts then in Berlin: the day before is no longer retained
    NOW - 1_691_359_200 + 1,
    NOW - 1_691_345_700,  # ... and then in Kathmandu
    NOW - 1_691_345_700 + 1,
    800 * DAYS - 1,
    800 * DAYS,  # exactly the longest retention: still not late
    # the first second of each calendar window at NOW in each zone, and the second before it
    *(NOW - start + extra for starts in NOW_STARTS.values() for start in starts.values() for extra in (0, 1)),
)
RETENTION = {"1m": 7_200, "15m": 172_800, "1h": 691_200, "1d": 100 * DAYS, "1mo": 800 * DAYS}
SIZE = {"1m": 60, "15m": 900, "1h": 3_600}
GROUP = {"1m": 3_600, "15m": 86_400, "1h": 86_400}
RESOLUTION_NAMES = ("1m", "15m", "1h", "1d", "1mo")
WINDOWS = {"1m": ("1h",), "15m": ("24h",), "1h": ("7d",), "1d": ("today", "week", "30d"), "1mo": ("month", "quarter")}


@dataclass(frozen=True)
class Spec:
    event_id: str
    event_type: str
    rep: str
    team: str | None
    timestamp: int
    connected: bool
    duration: int

    @property
    def partition(self) -> int:
        return int(self.event_id[1:]) % PARTITIONS

    def payload(self) -> bytes:
        data: dict[str, Any] = {
            "event_id": self.event_id,
            "occurred_at": datetime.fromtimestamp(self.timestamp, UTC).isoformat(),
            "source": "prop",
            "type": self.event_type,
            "rep_id": self.rep,
        }
        if self.team:
            data["team"] = self.team
        if self.event_type == "call.logged":
            data["duration_seconds"] = self.duration
            data["outcome"] = "connected" if self.connected else "voicemail"
        elif self.event_type == "meeting.booked":
            data["meeting_id"] = "m"
        else:
            data["contact_id"] = "c"
        return json.dumps(data).encode()

    def counters(self) -> dict[str, float]:
        if self.event_type == "call.logged":
            counters: dict[str, float] = {"calls": 1, "call_duration_seconds": self.duration}
            if self.connected:
                counters["calls_connected"] = 1
            return counters
        return {
            {"email.sent": "emails_sent", "email.replied": "email_replies"}.get(self.event_type, "meetings_booked"): 1
        }


@st.composite
def specs(draw: st.DrawFn) -> list[Spec]:
    count = draw(st.integers(0, 24))
    result = []
    for index in range(count):
        age = draw(
            st.one_of(
                st.integers(0, 7_200),
                st.integers(0, WEEK - 1),
                st.integers(0, 120 * DAYS),
                st.integers(0, 800 * DAYS),
                st.sampled_from(EDGE_AGES),
            )
        )
        result.append(
            Spec(
                event_id=f"e{index}",
                event_type=draw(st.sampled_from(TYPES)),
                rep=draw(st.sampled_from(REPS)),
                team=draw(st.sampled_from(EVENT_TEAMS)),
                timestamp=NOW - age,
                connected=draw(st.booleans()),
                duration=draw(st.integers(0, 900)),
            )
        )
    return result


@st.composite
def streams_of(draw: st.DrawFn) -> tuple[list[Spec], list[Record], int]:
    """Distinct events, the stream of their copies (and rejected messages) with offsets, and the copy count."""
    events = draw(specs())
    messages: list[tuple[str, int, Spec | None]] = []
    for spec in events:
        # ids are remembered for the dedup horizon only: an older event has no second copy here
        most = 3 if NOW - spec.timestamp <= DEDUP_HORIZON else 1
        for _ in range(draw(st.integers(1, most))):
            messages.append((draw(st.sampled_from(TOPICS)), spec.partition, spec))
    for _ in range(draw(st.integers(0, 3))):
        messages.append((draw(st.sampled_from(TOPICS)), draw(st.integers(0, PARTITIONS - 1)), None))
    messages = draw(st.permutations(messages))
    next_offset: dict[tuple[str, int], int] = {}
    parsed = {spec.event_id: parse_event(spec.payload()) for spec in events}
    stream: list[Record] = []
    for topic, partition, spec in messages:
        offset = next_offset.get((topic, partition), 0)
        next_offset[(topic, partition)] = offset + 1
        position = Position(topic, partition, offset)
        if spec is None:
            stream.append(Rejected(position, Rejection("invalid_json", "not JSON")))
        else:
            stream.append(Accepted(position, parsed[spec.event_id]))
    copies = sum(1 for _, _, spec in messages if spec is not None)
    return events, stream, copies


TABLES = ("seen", "groups", "progress")
Entry = tuple[int, str, str, Any]  # (batch number, table, key, value or None for a delete)


def rebuild(log: list[Entry]) -> dict[str, dict[str, Any]]:
    state: dict[str, dict[str, Any]] = {"seen": MemorySeen(), "groups": {}, "progress": {}}
    for _, table, key, value in log:
        if value is None:
            if key in state[table]:
                del state[table][key]  # (MemorySeen forgets the chunk's ids with it)
        else:
            state[table][key] = copy.deepcopy(value)
    return state


class Worker:
    """One worker consuming the stream; its tables are rebuilt from the changelog log after a crash.

    Each topic partition is read in offset order, but how they interleave is random, and differs
    between the first read and a replay, as with Kafka.
    """

    def __init__(self, stream: list[Record], data: st.DataObject) -> None:
        self.data = data
        self.queues: dict[tuple[str, int], list[Record]] = {}
        for record in stream:  # offsets are 0, 1, 2... per topic partition: the index in its queue
            self.queues.setdefault((record.position.topic, record.position.partition), []).append(record)
        self.next_offset = dict.fromkeys(sorted(self.queues), 0)
        self.log: list[Entry] = []
        self.memory = rebuild(self.log)
        self.batches: list[dict[tuple[str, int], int]] = []  # per batch: the first offset read from each queue
        self.durable_batches = 0  # batches numbered below this are in the log for good
        self.crashes = 0
        # eviction with the config (exact group ends) or without (the latest end in any zone)
        self.evict_config = data.draw(st.sampled_from([None, CONFIG]), label="evict with config")

    def readable(self) -> list[tuple[str, int]]:
        return [name for name, offset in self.next_offset.items() if offset < len(self.queues[name])]

    def read_batch(self) -> list[Record]:
        batch: list[Record] = []
        first_read: dict[tuple[str, int], int] = {}
        for _ in range(self.data.draw(st.integers(1, 8), label="batch size")):
            if not self.readable():
                break
            name = self.data.draw(st.sampled_from(self.readable()), label="next queue")
            first_read.setdefault(name, self.next_offset[name])
            batch.append(self.queues[name][self.next_offset[name]])
            self.next_offset[name] += 1
        self.batches.append(first_read)
        return batch

    def process(self, batch: list[Record]) -> None:
        """What streams.worker.pipeline does with a batch: its plan's writes, stage by stage, then eviction."""
        number = len(self.batches) - 1
        memory = self.memory
        plan = plan_batch(batch, StoredState(memory["seen"], memory["groups"], memory["progress"], {}), CONFIG)
        writes: list[tuple[str, str, Any]] = []
        for stage in plan.stages:
            assert not stage.emitted and not stage.entities  # activity events have no entity
            for partition, chunk in stage.seen.items():
                key = chunk_key(partition, chunk.day, f"run{self.crashes}-{number}")  # one key per batch and process
                writes.append(("seen", key, encode_chunk(chunk.entries)))
                memory["seen"][key] = encode_chunk(chunk.entries)
            writes += [("groups", key, value) for key, value in stage.groups.items()]
            writes += [("progress", key, value) for key, value in stage.progress.items()]
            memory["groups"].update(copy.deepcopy(dict(stage.groups)))
            memory["progress"].update(copy.deepcopy(dict(stage.progress)))
        watermarks = {int(key): value["watermark"] for key, value in memory["progress"].items()}
        for key in expired_group_keys(list(memory["groups"]), watermarks, self.evict_config):
            writes.append(("groups", key, None))
            del memory["groups"][key]
        for partition, watermark in watermarks.items():
            for day in expired_days(memory["seen"].days(partition), watermark):
                for key in memory["seen"].chunk_keys(partition, day, 1_000_000):
                    writes.append(("seen", key, None))
                    del memory["seen"][key]
        self.log += [(number, table, key, copy.deepcopy(value)) for table, key, value in writes]

    def crash(self) -> None:
        """Lose part of the newest writes, recover the tables, and resume from committed offsets."""
        draw = self.data.draw
        self.crashes += 1
        whole = draw(st.integers(self.durable_batches, len(self.batches)), label="fully written batches")
        kept = [entry for entry in self.log if entry[0] < whole]
        pending = {table: [e for e in self.log if e[0] >= whole and e[1] == table] for table in TABLES}
        cut = {table: draw(st.integers(0, len(pending[table])), label=f"{table} kept") for table in TABLES}
        # a batch's seen ids are flushed before its progress is written, its progress before its groups
        newest = max((e[0] for e in pending["groups"][: cut["groups"]]), default=-1)
        cut["progress"] = max(cut["progress"], sum(1 for e in pending["progress"] if e[0] <= newest))
        newest = max((e[0] for t in ("groups", "progress") for e in pending[t][: cut[t]]), default=-1)
        cut["seen"] = max(cut["seen"], sum(1 for e in pending["seen"] if e[0] <= newest))
        self.log = [(-1, t, k, v) for _, t, k, v in kept + [e for t in TABLES for e in pending[t][: cut[t]]]]
        self.durable_batches = len(self.batches)
        self.memory = rebuild(self.log)
        for name, offset in self.next_offset.items():  # committed: at most the first offset not fully written
            bound = min((read[name] for read in self.batches[whole:] if name in read), default=offset)
            self.next_offset[name] = draw(st.integers(0, bound), label="replay from")


def process(stream: list[Record], data: st.DataObject) -> dict[str, dict[str, Any]]:
    """Run the stream through dedup and folding with random batches, up to 3 crashes and replays."""
    worker = Worker(stream, data)
    while worker.readable():
        worker.process(worker.read_batch())
        if worker.crashes < 3 and data.draw(st.integers(0, 4), label="crash?") == 0:
            worker.crash()
    return worker.memory


def local_day(timestamp: int, tz_name: str) -> date:
    return datetime.fromtimestamp(timestamp, ZoneInfo(tz_name)).date()


def midnight(day: date, tz_name: str) -> int:
    """Local 00:00 of ``day`` (it exists on every day of the zones used here)."""
    return int(datetime.combine(day, time(0), tzinfo=ZoneInfo(tz_name)).timestamp())


def first_of_month(day: date, months_later: int = 0) -> date:
    index = day.year * 12 + day.month - 1 + months_later
    return date(index // 12, index % 12 + 1, 1)


def bucket(resolution: str, timestamp: int, tz_name: str) -> tuple[int, int]:
    """Start and end of the bucket holding ``timestamp``: fixed sizes, or a local day or month."""
    if resolution in SIZE:
        start = timestamp - timestamp % SIZE[resolution]
        return start, start + SIZE[resolution]
    day = local_day(timestamp, tz_name)
    if resolution == "1d":
        return midnight(day, tz_name), midnight(day + timedelta(days=1), tz_name)
    return midnight(first_of_month(day), tz_name), midnight(first_of_month(day, 1), tz_name)


def group_span(resolution: str, timestamp: int, tz_name: str) -> tuple[int, int]:
    """Start and end of the group holding ``timestamp``: an hour or UTC day, or a local month or year."""
    if resolution in GROUP:
        start = timestamp - timestamp % GROUP[resolution]
        return start, start + GROUP[resolution]
    day = local_day(timestamp, tz_name)
    if resolution == "1d":
        return midnight(first_of_month(day), tz_name), midnight(first_of_month(day, 1), tz_name)
    return midnight(date(day.year, 1, 1), tz_name), midnight(date(day.year + 1, 1, 1), tz_name)


def first_bucket(window: str, now: int, tz_name: str) -> tuple[str, int, int]:
    """The window's resolution and first and last bucket start, from the definitions."""
    if window == "1h":
        last = now - now % 60
        return "1m", last - 59 * 60, last
    if window == "24h":
        last = now - now % 900
        return "15m", last - 95 * 900, last
    if window == "7d":
        last = now - now % 3_600
        return "1h", last - 167 * 3_600, last
    resolution = "1mo" if window in ("month", "quarter") else "1d"
    last, _ = bucket(resolution, now, tz_name)
    if now == NOW:
        return resolution, NOW_STARTS[tz_name][window], last
    today = local_day(now, tz_name)
    first = {
        "today": today,
        "week": today - timedelta(days=today.weekday()),
        "30d": today - timedelta(days=29),
        "month": first_of_month(today),
        "quarter": first_of_month(today, -((today.month - 1) % 3)),
    }[window]
    return resolution, midnight(first, tz_name), last


def scope_zone(scope: Scope) -> str:
    return TEAM_ZONES.get(scope.team, "Europe/Berlin")


def spec_scopes(spec: Spec) -> tuple[Scope, ...]:
    team = spec.team or REP_TEAMS.get(spec.rep) or "unassigned"
    return (Scope(), Scope(team=team, rep=spec.rep), Scope(team=team))


def add(sums: dict[str, float], counters: dict[str, float]) -> None:
    for name, amount in counters.items():
        sums[name] = sums.get(name, 0) + amount


def naive_totals(events: list[Spec]) -> dict[tuple[Scope, str], dict[str, float]]:
    expected: dict[tuple[Scope, str], dict[str, float]] = {}
    for spec in events:
        for scope in spec_scopes(spec):
            for window in ("1h", "24h", "7d", "30d", "today", "week", "month", "quarter"):
                resolution, first, last = first_bucket(window, NOW, scope_zone(scope))
                start, _ = bucket(resolution, spec.timestamp, scope_zone(scope))
                if first <= start <= last:
                    add(expected.setdefault((scope, window), {}), spec.counters())
    return expected


def naive_months(events: list[Spec]) -> dict[tuple[Scope, str], dict[str, float]]:
    expected: dict[tuple[Scope, str], dict[str, float]] = {}
    for spec in events:
        for scope in spec_scopes(spec):
            day = local_day(spec.timestamp, scope_zone(scope))
            add(expected.setdefault((scope, f"{day.year:04d}-{day.month:02d}"), {}), spec.counters())
    return expected


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(streams_of(), st.data())
def test_window_totals_equal_a_naive_count(
    generated: tuple[list[Spec], list[Record], int], data: st.DataObject
) -> None:
    events, stream, copies = generated
    state = process(stream, data)

    totals = window_totals(state["groups"].items(), NOW, CONFIG).windows
    assert {index: sums for index, sums in totals.items() if sums} == naive_totals(events)
    # every event is in its month bucket (none is older than the month buckets' retention)
    assert monthly_totals(state["groups"].items(), CONFIG) == naive_months(events)

    # progress: every event once, every other copy a duplicate, every rejected message once
    progress = state["progress"].values()
    assert sum(sum(p["events"].values()) for p in progress) == len(events)
    assert sum(sum(p["duplicates"].values()) for p in progress) == copies - len(events)
    assert sum(sum(p["late"].values()) for p in progress) == 0
    assert sum(sum(p["rejected"].values()) for p in progress) == sum(isinstance(r, Rejected) for r in stream)
    for partition in range(PARTITIONS):
        timestamps = [spec.timestamp for spec in events if spec.partition == partition]
        stored = state["progress"].get(str(partition))
        if timestamps:
            assert stored["watermark"] == max(timestamps)
        last_offsets = {r.position.topic: r.position.offset for r in stream if r.position.partition == partition}
        assert (stored["offsets"] if stored else {}) == last_offsets


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(streams_of(), st.data())
def test_live_buckets_hold_exactly_the_events_in_range(
    generated: tuple[list[Spec], list[Record], int], data: st.DataObject
) -> None:
    events, stream, _ = generated
    state = process(stream, data)
    watermarks = {int(key): value["watermark"] for key, value in state["progress"].items()}
    evicted = set(expired_group_keys(list(state["groups"]), watermarks, CONFIG))
    assert evicted <= set(expired_group_keys(list(state["groups"]), watermarks))  # without the config: later

    for key in evicted:  # no window at NOW (>= every watermark) needs a bucket of an evicted group
        group = GroupKey.decode(key)
        tz_name = scope_zone(group.scope)
        group_end = group_span(group.resolution.name, group.start, tz_name)[1]
        for window in WINDOWS[group.resolution.name]:
            _, first, _ = first_bucket(window, NOW, tz_name)
            assert group_end <= first

    def live(resolution: str, start: int, partition: int, tz_name: str) -> bool:
        return bucket(resolution, start, tz_name)[1] > watermarks[partition] - RETENTION[resolution]

    counted: dict[tuple[Scope, str], float] = {}
    for key, value in state["groups"].items():
        group = GroupKey.decode(key)
        if key in evicted:
            continue
        name, tz_name = group.resolution.name, scope_zone(group.scope)
        assert group_span(name, group.start, tz_name)[0] == group.start  # an aligned group start
        for start, counters in value["buckets"].items():
            assert bucket(name, int(start), tz_name)[0] == int(start)  # an aligned bucket start
            assert group_span(name, int(start), tz_name)[0] == group.start  # in its group
            if live(name, int(start), group.partition, tz_name):
                counted[(group.scope, name)] = counted.get((group.scope, name), 0) + sum(
                    counters.get(counter, 0) for counter in ("calls", "emails_sent", "email_replies", "meetings_booked")
                )
    in_range: dict[tuple[Scope, str], float] = {}
    for spec in events:
        for scope in spec_scopes(spec):
            for name in RESOLUTION_NAMES:
                start, _ = bucket(name, spec.timestamp, scope_zone(scope))
                if live(name, start, spec.partition, scope_zone(scope)):
                    in_range[(scope, name)] = in_range.get((scope, name), 0) + 1
    assert {index: count for index, count in counted.items() if count} == in_range


ZONES = ["Europe/Berlin", "America/New_York", "Asia/Kathmandu", "Pacific/Kiritimati", "Pacific/Pago_Pago"]


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([MINUTE, QUARTER, HOUR, DAY, MONTH]),
    st.integers(1_500_000_000, 1_800_000_000),
    st.one_of(st.integers(-2 * DAYS, 2 * DAYS), st.integers(-400 * DAYS, 400 * DAYS)),
    st.sampled_from(ZONES),
)
def test_eviction_never_removes_a_bucket_a_window_still_needs(
    resolution: Resolution, timestamp: int, delta: int, tz_name: str
) -> None:
    """A group stored at ``timestamp``, evicted or not at a watermark ``delta`` after its end + retention."""
    group_start, group_end = group_span(resolution.name, timestamp, tz_name)
    watermark = max(timestamp, group_end + RETENTION[resolution.name] + delta)
    key = GroupKey(0, Scope(team="t"), resolution, group_start).encode()
    config = KpimonConfig(teams={"t": TeamConfig(timezone=tz_name)})
    exact = bool(expired_group_keys([key], {0: watermark}, config))
    # with the config: expired exactly when the group's last bucket has ended before watermark - retention
    assert exact is (group_end <= watermark - RETENTION[resolution.name])
    # without: never earlier, and at most a week later (February taken as 31 days, plus 3 days of slack)
    if expired_group_keys([key], {0: watermark}):
        assert exact
    elif exact:
        assert group_end > watermark - RETENTION[resolution.name] - 7 * DAYS
    if exact:
        last_bucket = bucket(resolution.name, group_end - 1, tz_name)[0]
        for window in WINDOWS[resolution.name]:
            for now in (watermark, watermark + 1, watermark + 3_600):
                _, first, _ = first_bucket(window, now, tz_name)
                assert last_bucket < first
