"""Property tests: dedup + folding under duplicates, batching, crashes and replays equals a naive count.

The stream model: events (some with several copies, on two topics) and a few rejected messages,
partitioned by event id as the pipeline does, read in batches. After a batch the worker writes its
seen ids (flushed first), then the changed bucket groups and progress, then deletes expired groups.
Buckets are stored in groups (one key per scope, resolution and hour or day).
A crash loses the writes of the newest batches except a prefix of each table's changelog (a seen
prefix that covers every batch whose buckets or progress survived), and the consumer resumes from an
offset no later than the first batch not fully written. The expected values come from the distinct
events by the definitions in streams/windows.py, computed here without the code under test.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.config import KpimonConfig, RepConfig, TeamConfig
from schemas.events import parse_event
from streams.dedup import SeenIndex, expired_batch_keys, split_duplicates
from streams.facts import Scope
from streams.folding import GroupKey, expired_group_keys, fold_batch
from streams.kpis import window_totals
from streams.records import Accepted, Position, Record, Rejected
from streams.validation import Rejection
from streams.windows import HOUR, MINUTE, QUARTER, Resolution

NOW = 1_700_000_000  # 2023-11-14T22:13:20Z
WEEK = 7 * 86_400
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

# Local midnight before NOW, by hand: 2023-11-14 00:00 in each zone.
MIDNIGHT = {
    "Europe/Berlin": 1_699_916_400,  # 2023-11-13T23:00Z
    "America/New_York": 1_699_938_000,  # 2023-11-14T05:00Z
    "Asia/Kathmandu": 1_699_985_700,  # 2023-11-14T18:15Z
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
)
RETENTION = {"1m": 7_200, "15m": 172_800, "1h": 691_200}
SIZE = {"1m": 60, "15m": 900, "1h": 3_600}
GROUP = {"1m": 3_600, "15m": 86_400, "1h": 86_400}


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
        age = draw(st.one_of(st.integers(0, 7_200), st.integers(0, WEEK - 1), st.sampled_from(EDGE_AGES)))
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
        for _ in range(draw(st.integers(1, 3))):
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
    state: dict[str, dict[str, Any]] = {table: {} for table in TABLES}
    for _, table, key, value in log:
        if value is None:
            state[table].pop(key, None)
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
        self.index = SeenIndex()
        self.batches: list[dict[tuple[str, int], int]] = []  # per batch: the first offset read from each queue
        self.durable_batches = 0  # batches numbered below this are in the log for good
        self.crashes = 0

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
        """What streams.pipeline does with a batch, writes in the same order."""
        number = len(self.batches) - 1
        memory = self.memory
        dedup = split_duplicates([r for r in batch if isinstance(r, Accepted)], self.index)
        writes: list[tuple[str, str, Any]] = []
        for partition, seen_batch in dedup.new_batches.items():
            key = f"{partition}|run{self.crashes}-{number}"  # one key per batch and process
            writes.append(("seen", key, seen_batch))
            memory["seen"][key] = copy.deepcopy(seen_batch)
            self.index.add(key, seen_batch)
        folded = fold_batch(
            batch,
            [r.position for r in dedup.duplicates],
            groups=memory["groups"],
            progress=memory["progress"],
            config=CONFIG,
        )
        writes += [("groups", key, value) for key, value in folded.groups.items()]
        writes += [("progress", key, value) for key, value in folded.progress.items()]
        memory["groups"].update(copy.deepcopy(folded.groups))
        memory["progress"].update(copy.deepcopy(folded.progress))
        watermarks = {int(key): value["watermark"] for key, value in memory["progress"].items()}
        for key in expired_group_keys(list(memory["groups"]), watermarks):
            writes.append(("groups", key, None))
            del memory["groups"][key]
        for key in expired_batch_keys(list(memory["seen"].items()), watermarks):
            writes.append(("seen", key, None))
            self.index.remove(key, memory["seen"].pop(key))
        self.log += [(number, table, key, copy.deepcopy(value)) for table, key, value in writes]

    def crash(self) -> None:
        """Lose part of the newest writes, recover the tables, and resume from committed offsets."""
        draw = self.data.draw
        self.crashes += 1
        whole = draw(st.integers(self.durable_batches, len(self.batches)), label="fully written batches")
        kept = [entry for entry in self.log if entry[0] < whole]
        pending = {table: [e for e in self.log if e[0] >= whole and e[1] == table] for table in TABLES}
        cut = {table: draw(st.integers(0, len(pending[table])), label=f"{table} kept") for table in TABLES}
        # the seen writes of a batch are flushed before its groups and progress are written
        newest = max((e[0] for t in ("groups", "progress") for e in pending[t][: cut[t]]), default=-1)
        cut["seen"] = max(cut["seen"], sum(1 for e in pending["seen"] if e[0] <= newest))
        self.log = [(-1, t, k, v) for _, t, k, v in kept + [e for t in TABLES for e in pending[t][: cut[t]]]]
        self.durable_batches = len(self.batches)
        self.memory = rebuild(self.log)
        self.index = SeenIndex()
        self.index.rebuild(self.memory["seen"].items())
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
    last = now - now % 900
    if now == NOW:
        midnight = MIDNIGHT[tz_name]
    else:
        tz = ZoneInfo(tz_name)
        midnight = int(datetime.combine(datetime.fromtimestamp(now, tz).date(), time(0), tzinfo=tz).timestamp())
    return "15m", midnight - midnight % 900, last


def scope_zone(scope: Scope) -> str:
    return TEAM_ZONES.get(scope.team, "Europe/Berlin")


def naive_totals(events: list[Spec]) -> dict[tuple[Scope, str], dict[str, float]]:
    expected: dict[tuple[Scope, str], dict[str, float]] = {}
    for spec in events:
        team = spec.team or REP_TEAMS.get(spec.rep) or "unassigned"
        for scope in (Scope(), Scope(team=team, rep=spec.rep), Scope(team=team)):
            for window in ("1h", "24h", "7d", "today"):
                resolution, first, last = first_bucket(window, NOW, scope_zone(scope))
                start = spec.timestamp - spec.timestamp % SIZE[resolution]
                if first <= start <= last:
                    sums = expected.setdefault((scope, window), {})
                    for name, amount in spec.counters().items():
                        sums[name] = sums.get(name, 0) + amount
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
    evicted = expired_group_keys(list(state["groups"]), watermarks)

    for key in evicted:  # no window at NOW (>= every watermark) needs a bucket of an evicted group
        group = GroupKey.decode(key)
        name = group.resolution.name
        for window in {"1m": ("1h",), "15m": ("24h", "today"), "1h": ("7d",)}[name]:
            _, first, _ = first_bucket(window, NOW, scope_zone(group.scope))
            assert group.start + GROUP[name] - SIZE[name] < first

    def live(resolution: str, start: int, partition: int) -> bool:
        return start + SIZE[resolution] > watermarks[partition] - RETENTION[resolution]

    for resolution in ("1m", "15m", "1h"):
        counted = 0.0
        for key, value in state["groups"].items():
            group = GroupKey.decode(key)
            if key in evicted or group.scope != Scope() or group.resolution.name != resolution:
                continue
            for start, counters in value["buckets"].items():
                assert group.start <= int(start) < group.start + GROUP[resolution]
                if live(resolution, int(start), group.partition):
                    counted += sum(
                        counters.get(name, 0) for name in ("calls", "emails_sent", "email_replies", "meetings_booked")
                    )
        in_range = sum(
            1 for spec in events if live(resolution, spec.timestamp - spec.timestamp % SIZE[resolution], spec.partition)
        )
        assert counted == in_range


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from([MINUTE, QUARTER, HOUR]),
    st.integers(1_600_000_000, 1_900_000_000),
    st.integers(0, 10 * 86_400),
    st.sampled_from(["Europe/Berlin", "America/New_York", "Asia/Kathmandu", "Pacific/Kiritimati", "Pacific/Pago_Pago"]),
)
def test_eviction_never_removes_a_bucket_a_window_still_needs(
    resolution: Resolution, watermark: int, age: int, tz_name: str
) -> None:
    timestamp = watermark - age
    group_start = timestamp - timestamp % GROUP[resolution.name]
    key = GroupKey(0, Scope(team="t"), resolution, group_start).encode()
    if expired_group_keys([key], {0: watermark}):
        last_bucket = group_start + GROUP[resolution.name] - SIZE[resolution.name]
        for window in {"1m": ("1h",), "15m": ("24h", "today"), "1h": ("7d",)}[resolution.name]:
            for now in (watermark, watermark + 1, watermark + 3_600):
                _, first, _ = first_bucket(window, now, tz_name)
                assert last_bucket < first
