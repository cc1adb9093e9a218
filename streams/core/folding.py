"""Fold a batch of records into bucketed counters and per-partition progress. Pure.

State lives in two key-value maps (Faust tables at the edge):

* buckets: ``"<partition>|<team>|<rep>|<channel>|<campaign>|<resolution>|<group start>"`` ->
  ``{"buckets": {"<bucket start>": {counter: value}}, "offsets": {topic: last applied offset}}``
  (one key per group of buckets, see streams.core.windows; the starts of day and month
  buckets and groups are local calendar units of the scope's time zone)
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
from math import isfinite
from typing import NotRequired, TypedDict
from zoneinfo import ZoneInfo

from schemas.config import KpimonConfig
from schemas.events import entity_key, field_of
from schemas.scopes import SCOPE_KEY_SEPARATOR, Scope
from streams.core.facts import counter_deltas, event_channel, scope_timezone, scopes_for
from streams.core.records import Fact, Forwarded, Position, Record, Rejected
from streams.core.table_keys import split_table_key, table_key
from streams.core.windows import DAY, MINUTE, RESOLUTION_BY_NAME, RESOLUTIONS, FixedResolution, Resolution, is_late

Counters = dict[str, float]
Place = tuple[str | None, str | None, str | None, str | None]  # a fact's team, rep, channel, campaign
GroupAt = tuple[int, str, str, int]  # a group's partition, scope key, resolution name and start
ScopeTarget = tuple[str, ZoneInfo]  # a scope's key and time zone
MINUTE_SECONDS = MINUTE.seconds
SHARED_ENDS = 10_000  # (team, resolution, start) ends kept at most
SHORTEST_RETENTION_SECONDS = min(resolution.retention_seconds for resolution in RESOLUTIONS)


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
    labels: NotRequired[dict[str, list[str]]]  # dimension -> unknown values admitted (streams.core.labels)
    folded: NotRequired[dict[str, int]]  # dimension -> events whose value was folded into "other"


@dataclass(frozen=True)
class GroupKey:
    """Where a group of buckets is stored: partition, scope, resolution and group start."""

    partition: int
    scope: Scope
    resolution: Resolution
    start: int

    def encode(self) -> str:
        return self.text(self.partition, self.scope.key, self.resolution.name, self.start)

    @staticmethod
    def text(partition: int, scope_key: str, resolution_name: str, start: int) -> str:
        return table_key(partition, f"{scope_key}|{resolution_name}|{start}")

    @classmethod
    def decode(cls, key: str) -> GroupKey:
        partition, scope, resolution, start = cls.parts(key)
        return cls(partition, Scope.from_key(scope), RESOLUTION_BY_NAME[resolution], int(start))

    @staticmethod
    def parts(key: str) -> tuple[int, str, str, str]:
        """A key's partition, scope key, resolution name and start (as text), without decoding them further."""
        partition, rest = split_table_key(key)
        scope, resolution, start = rest.rsplit("|", 2)  # the scope's campaign, last in its key, may hold "|"
        return partition, scope, resolution, start

    def end(self, tz: ZoneInfo) -> int:
        """The end of the group's last bucket; ``tz`` is the scope's zone (see ``scope_timezone``)."""
        return self.resolution.group_end(self.start, tz)

    def last_bucket_start(self, tz: ZoneInfo) -> int:
        return self.resolution.last_bucket_start(self.start, tz)


def empty_progress() -> ProgressValue:
    return {"watermark": 0, "offsets": {}, "events": {}, "duplicates": {}, "late": {}, "rejected": {}}


def _is_new(offsets: Mapping[str, int], position: Position) -> bool:
    return position.offset > offsets.get(position.topic, -1)


def last_applied_offset(progress: Mapping[str, ProgressValue], topic: str, partition: int) -> int | None:
    """The last offset of ``topic``'s ``partition`` folded into the state, None before the first."""
    value = progress.get(str(partition))
    return None if value is None else value["offsets"].get(topic)


def _increment(counts: dict[str, int], name: str) -> None:
    counts[name] = counts.get(name, 0) + 1


@dataclass
class FoldResult:
    groups: dict[str, BucketGroup] = field(default_factory=dict)
    progress: dict[str, ProgressValue] = field(default_factory=dict)


BucketSpan = tuple[int, int, int, str]  # bucket start, bucket end, group start, the bucket start as stored (text)


class _BatchFolder:
    def __init__(
        self, groups: Mapping[str, BucketGroup], progress: Mapping[str, ProgressValue], config: KpimonConfig
    ) -> None:
        self._groups = groups
        self._progress = progress
        self._config = config
        self._zones: dict[str, ZoneInfo] = {}  # team -> the zone of its scopes ("": overall, channels, campaigns)
        self._spans: dict[tuple[str, str], BucketSpan] = {}  # (resolution, zone) -> the last bucket located
        self._scopes: dict[Place, list[Scope]] = {}
        self._targets: dict[Place, tuple[ScopeTarget, ...]] = {}
        self._stored_offsets: dict[int, Mapping[str, int] | None] = {}  # partition -> its stored progress's offsets
        self._cell_targets: dict[GroupAt, tuple[BucketGroup, Mapping[str, Counters]]] = {}  # copy, stored buckets
        self.result = FoldResult()

    def timezone_of(self, scope: Scope) -> ZoneInfo:
        tz = self._zones.get(scope.team)
        if tz is None:
            tz = self._zones[scope.team] = scope_timezone(scope, self._config)
        return tz

    def locate(self, resolution: Resolution, timestamp: int, tz: ZoneInfo) -> BucketSpan:
        """The bucket and group of ``timestamp``; the last one is cached, as a batch's events mostly share it."""
        cache_key = (resolution.name, tz.key)
        span = self._spans.get(cache_key)
        if span is None or not span[0] <= timestamp < span[1]:
            start = resolution.bucket_start(timestamp, tz)
            span = (start, resolution.bucket_end(start, tz), resolution.group_start(start, tz), str(start))
            self._spans[cache_key] = span
        return span

    def is_past_stored_progress(self, position: Position) -> bool:
        """Whether ``position`` comes after everything the stored progress of its partition has applied."""
        partition = position.partition
        if partition in self._stored_offsets:
            offsets = self._stored_offsets[partition]
        else:
            stored = self._progress.get(str(partition))
            offsets = self._stored_offsets[partition] = stored["offsets"] if stored else None
        return offsets is None or _is_new(offsets, position)

    def scopes_of(self, team: str | None, rep: str | None, channel: str | None, campaign: str | None) -> list[Scope]:
        place = (team, rep, channel, campaign)
        scopes = self._scopes.get(place)
        if scopes is None:
            scopes = self._scopes[place] = scopes_for(team, rep, channel, campaign, self._config)
        return scopes

    def targets_of(self, fact: Fact) -> tuple[ScopeTarget, ...]:
        """The scopes a fact counts in, as (scope key, time zone); computed once per place and batch."""
        place = (fact.team, fact.rep, fact.channel, fact.campaign)
        targets = self._targets.get(place)
        if targets is None:
            scopes = self.scopes_of(*place)
            targets = self._targets[place] = tuple((scope.key, self.timezone_of(scope)) for scope in scopes)
        return targets

    def add_cell(self, key: GroupAt, bucket_start: str, cell: _Cell) -> None:
        """Add a cell's counters to one bucket of the batch's copy of one group, and the cell's offsets.

        The cells are the batch's new records (see ``fold_batch``), so no group has them yet.
        """
        target = self._cell_targets.get(key)
        if target is None:
            target = self._cell_targets[key] = self._batch_copy(GroupKey.text(*key))
        group, stored_buckets = target
        _add_bucket(group["buckets"], bucket_start, cell.counters, stored_buckets)
        _take_later_offsets(group["offsets"], cell.offsets)

    def progress_of(self, partition: int) -> ProgressValue:
        key = str(partition)
        value = self.result.progress.get(key)
        if value is None:
            stored = self._progress.get(key)
            value = copy_progress(stored) if stored else empty_progress()
            self.result.progress[key] = value
        return value

    def add_to_group(self, key: str, position: Position, buckets: Mapping[str, Mapping[str, float]]) -> None:
        """Add one record's deltas to the buckets of one group, unless the group has the record already."""
        current = self.result.groups.get(key) or self._groups.get(key)
        if current is None or _is_new(current["offsets"], position):
            group = self._add(key, buckets)
            group["offsets"][position.topic] = position.offset

    def _add(self, key: str, buckets: Mapping[str, Mapping[str, float]]) -> BucketGroup:
        """Add deltas to the batch's copy of a group (see ``_batch_copy``); return the copy."""
        group, stored_buckets = self._batch_copy(key)
        _add_buckets(group, buckets, stored_buckets)
        return group

    def _batch_copy(self, key: str) -> tuple[BucketGroup, Mapping[str, Counters]]:
        """The batch's copy of a group, and the stored group's buckets ({} for a group not stored).

        The copy is made on first use: a new group, or the stored one copied. It shares the stored
        group's buckets (their counter dicts) until ``_add_bucket`` changes one, which it then copies:
        a batch copies the buckets it touches, not the whole group, and the stored group is never
        modified. A reader comparing the two groups (the /metrics totals) finds the unchanged buckets
        by identity.
        """
        stored = self._groups.get(key)
        stored_buckets = stored["buckets"] if stored else {}
        group = self.result.groups.get(key)
        if group is None:
            group = self.result.groups[key] = {
                "buckets": dict(stored_buckets),
                "offsets": dict(stored["offsets"]) if stored else {},
            }
        return group, stored_buckets


def _add_buckets(
    group: BucketGroup, buckets: Mapping[str, Mapping[str, float]], stored: Mapping[str, Counters]
) -> None:
    """Add deltas to a group's buckets (``_add_bucket``); ``stored``, the stored group's buckets."""
    group_buckets = group["buckets"]
    for text, deltas in buckets.items():
        _add_bucket(group_buckets, text, deltas, stored)


def _add_bucket(
    group_buckets: dict[str, Counters], text: str, deltas: Mapping[str, float], stored: Mapping[str, Counters]
) -> None:
    """Add deltas to one bucket of a group; a sum that is not a finite number is refused, never stored.

    A bucket still shared with the stored group (``stored``, its buckets) is copied before it
    changes. The contract bounds every number (schemas.events), so no sum of accepted events can
    overflow; a non-finite sum is a bug, and the record that causes it is dead-lettered.
    """
    counters = group_buckets.get(text)
    if counters is None:
        counters = group_buckets[text] = {}
    elif counters is stored.get(text):
        counters = group_buckets[text] = dict(counters)
    for name, delta in deltas.items():
        value = counters.get(name, 0) + delta
        if not isfinite(value):
            raise ValueError(f"counter {name} would become {value}: not stored")
        if value == 0 and ":" in name:
            counters.pop(name, None)  # a retracted per-deal or per-reason counter
        else:
            counters[name] = value


def _take_later_offsets(offsets: dict[str, int], others: Mapping[str, int]) -> None:
    """Set each topic's offset in ``offsets`` to the one in ``others`` where that is later."""
    for topic, offset in others.items():
        if offset > offsets.get(topic, -1):
            offsets[topic] = offset


def copy_progress(value: ProgressValue) -> ProgressValue:
    copy: ProgressValue = {
        "watermark": value["watermark"],
        "offsets": dict(value["offsets"]),
        "events": dict(value["events"]),
        "duplicates": dict(value["duplicates"]),
        "late": dict(value["late"]),
        "rejected": dict(value["rejected"]),
    }
    if "labels" in value:
        copy["labels"] = {dimension: list(values) for dimension, values in value["labels"].items()}
    if "folded" in value:
        copy["folded"] = dict(value["folded"])
    return copy


def fold_batch(
    records: Sequence[Record],
    duplicates: Iterable[Position],
    *,
    groups: Mapping[str, BucketGroup],
    progress: Mapping[str, ProgressValue],
    config: KpimonConfig,
    entity_facts: Mapping[Position, Sequence[Fact]] | None = None,
) -> FoldResult:
    """Apply records in their partition order; return the changed bucket groups and progress.

    An entity's event (a deal's, a lead's, ...) adds the changes it made to its
    entity's facts (``entity_facts``, from streams.entities.registry); every event adds
    its own counters (``counter_deltas``). Late facts count nowhere.

    A record past its partition's stored progress is new to every group (the progress is
    durable before the groups a batch changes: see streams.ingest.batch), so its facts are
    summed per scope and minute first, and the minutes rolled up into the coarser resolutions
    (``_fold_cells``): each bucket takes one sum. A record
    at or below the stored progress is read again after a crash: it goes to each group on
    its own, and a group that has it already skips it by offset.
    """
    folder = _BatchFolder(groups, progress, config)
    duplicate_positions = set(duplicates)
    entity_facts = entity_facts or {}
    cells = _MinuteCells()
    for record in records:
        position = record.position
        partition_progress = folder.progress_of(position.partition)
        first_time = _is_new(partition_progress["offsets"], position)
        if first_time:
            partition_progress["offsets"][position.topic] = position.offset
        if isinstance(record, Forwarded):
            continue
        if isinstance(record, Rejected):
            if first_time:
                _increment(partition_progress["rejected"], record.rejection.reason)
            continue
        event = record.event
        if position in duplicate_positions:
            if first_time:
                _increment(partition_progress["duplicates"], event.type)
            continue
        timestamp = record.timestamp
        watermark = max(partition_progress["watermark"], timestamp)
        partition_progress["watermark"] = watermark
        late = is_late(timestamp, watermark)
        if first_time:
            _increment(partition_progress["late" if late else "events"], event.type)
        facts = list(entity_facts.get(position, ())) if entity_key(event) is not None else []
        deltas = counter_deltas(event)
        if deltas:
            campaign = field_of(event, "campaign_id")
            facts.append(Fact(timestamp, event.team, event.rep_id, event_channel(event), deltas, campaign))
        if folder.is_past_stored_progress(position):
            for fact in facts:
                cells.add(position, fact, watermark, folder.targets_of(fact))
        else:
            _fold_facts(folder, position, facts, watermark, config)  # read again after a crash
    _fold_cells(folder, cells)
    result = folder.result
    result.progress = {key: value for key, value in result.progress.items() if value != progress.get(key)}
    return result


# partition, scope key, the scope's zone, minute, watermark (None: all buckets retain it)
CellKey = tuple[int, str, ZoneInfo, int, int | None]
# partition, scope key, the scope's zone, watermark (as in CellKey), bucket start, and the start of the
# local day of its minutes
SumKey = tuple[int, str, ZoneInfo, int | None, int, int]


class _Cell:
    __slots__ = ("counters", "offsets")

    def __init__(self) -> None:
        self.counters: dict[str, float] = {}
        self.offsets: dict[str, int] = {}  # topic -> the last offset that added to the cell

    def absorb(self, other: _Cell) -> None:
        """Add another cell's counters to this one's, and take its offsets where they are later."""
        counters = self.counters
        for name, delta in other.counters.items():
            counters[name] = counters.get(name, 0) + delta
        _take_later_offsets(self.offsets, other.offsets)


class _MinuteCells(dict[CellKey, _Cell]):
    """The facts of a batch's new records summed per partition, scope and minute.

    Every bucket of every resolution holds whole minutes (local midnights of every time
    zone fall on whole minutes since the 1970s), so a minute's sum lands in the same
    buckets as each of its facts would. A fact older than the shortest retention keeps the
    watermark it was folded at in its key, since which resolutions still retain it depends on it.
    Summed per scope rather than per place (team, rep, channel, campaign): the places of a
    batch share their overall and team scopes, whose minutes then go to their groups once.
    """

    def add(self, position: Position, fact: Fact, watermark: int, targets: Iterable[ScopeTarget]) -> None:
        timestamp = fact.timestamp
        if is_late(timestamp, watermark):
            return
        minute = timestamp - timestamp % MINUTE_SECONDS
        retained_everywhere = minute + MINUTE_SECONDS > watermark - SHORTEST_RETENTION_SECONDS
        kept_at = None if retained_everywhere else watermark
        deltas = fact.counters.items()
        for scope_key, tz in targets:
            key = (position.partition, scope_key, tz, minute, kept_at)
            cell = self.get(key)
            if cell is None:
                cell = self[key] = _Cell()
            counters = cell.counters
            for name, delta in deltas:
                counters[name] = counters.get(name, 0) + delta
            cell.offsets[position.topic] = position.offset


def _fold_facts(
    folder: _BatchFolder, position: Position, facts: Sequence[Fact], watermark: int, config: KpimonConfig
) -> None:
    """Add one record's facts to every bucket that still retains their time, one write per group."""
    by_group: dict[str, dict[str, dict[str, float]]] = {}
    for fact in facts:
        if is_late(fact.timestamp, watermark):
            continue
        for scope in folder.scopes_of(fact.team, fact.rep, fact.channel, fact.campaign):
            tz = folder.timezone_of(scope)
            for resolution in RESOLUTIONS:
                _, end, group_start, start = folder.locate(resolution, fact.timestamp, tz)
                if resolution.retains(end, watermark):  # else too old for this resolution: skip it
                    key = GroupKey(position.partition, scope, resolution, group_start).encode()
                    bucket = by_group.setdefault(key, {}).setdefault(start, {})
                    for name, delta in fact.counters.items():
                        bucket[name] = bucket.get(name, 0) + delta
    for key, buckets in by_group.items():
        folder.add_to_group(key, position, buckets)


def _fold_cells(folder: _BatchFolder, cells: _MinuteCells) -> None:
    """Add the minute cells to their buckets, rolled up resolution by resolution.

    Each resolution's sums go to its buckets and are summed into the next one's: minutes into
    quarter hours, those into hours, hours into local days, days into local months. A bucket then
    takes one sum per scope and batch however many minutes it holds. Sums finer than a day are kept
    apart by the local day of their minutes: in a zone whose midnight is not on a whole hour
    (+05:45), an hour takes one sum per day it overlaps, and each day only its own minutes.
    """
    sums: dict[SumKey, _Cell] = {}
    for (partition, scope_key, tz, minute, kept_at), cell in cells.items():
        day_start, day_end, _, _ = folder.locate(DAY, minute, tz)
        if minute + MINUTE_SECONDS > day_end:
            raise ValueError(f"a day of {tz.key} does not start on a whole minute: {day_end}")
        sums[(partition, scope_key, tz, kept_at, minute, day_start)] = cell
    for resolution, coarser in zip(RESOLUTIONS, (*RESOLUTIONS[1:], None), strict=True):
        sums = _fold_sums(folder, resolution, coarser, sums)


def _fold_sums(
    folder: _BatchFolder, resolution: Resolution, coarser: Resolution | None, sums: Mapping[SumKey, _Cell]
) -> dict[SumKey, _Cell]:
    """Add each sum to its ``resolution`` bucket where still retained; return them summed per ``coarser`` bucket."""
    rolled: dict[SumKey, _Cell] = {}
    for (partition, scope_key, tz, kept_at, start, day_start), cell in sums.items():
        _, end, group_start, text = folder.locate(resolution, start, tz)
        if kept_at is None or resolution.retains(end, kept_at):
            folder.add_cell((partition, scope_key, resolution.name, group_start), text, cell)
        if coarser is None:
            continue
        key: SumKey
        if isinstance(coarser, FixedResolution):  # within a day: kept apart by local day
            key = (partition, scope_key, tz, kept_at, folder.locate(coarser, start, tz)[0], day_start)
        else:  # a day takes its own minutes, a month its days
            parent_start = day_start if coarser is DAY else folder.locate(coarser, start, tz)[0]
            key = (partition, scope_key, tz, kept_at, parent_start, parent_start)
        parent = rolled.get(key)
        if parent is None:
            parent = rolled[key] = _Cell()
        parent.absorb(cell)
    return rolled


def expired_group_keys(
    keys: Iterable[str], watermarks: Mapping[int, int], config: KpimonConfig | None = None
) -> list[str]:
    """Groups whose every bucket fell out of its resolution's retention (by event time).

    Where a day or month group ends depends on its scope's time zone. With ``config``
    that end is exact; without it, the latest end in any zone is used: such a group is
    kept up to a week longer than needed, never evicted early.
    """
    return GroupEnds(config).expired(list(keys), watermarks)


class GroupEnds:
    """``expired_group_keys`` for a caller that asks again and again: each key is read once.

    The pipeline checks every stored group after every minute of event time; reading every
    key each time cost more than the check. Ends of keys no longer asked about are forgotten.
    A group's end depends only on its team's zone, resolution and start, shared by the groups of
    every rep of a team, channel and campaign: it is computed once for all of them.
    """

    def __init__(self, config: KpimonConfig | None) -> None:
        self._config = config
        self._ends: dict[str, tuple[int, int, Resolution]] = {}  # key -> partition, group end, resolution
        self._shared_ends: dict[tuple[str, str, str], int] = {}  # (team, resolution, start) -> group end

    def expired(self, keys: Sequence[str], watermarks: Mapping[int, int]) -> list[str]:
        ends, expired = self._ends, []
        for key in keys:
            entry = ends.get(key)
            if entry is None:
                entry = ends[key] = self._end(key)
            partition, end, resolution = entry
            watermark = watermarks.get(partition)
            if watermark is not None and not resolution.retains(end, watermark):
                expired.append(key)
        for key in expired:
            del ends[key]
        if len(ends) > 2 * len(keys):  # keys deleted or moved away by others: keep only those asked about
            self._ends = {key: ends[key] for key in keys if key in ends}
        return expired

    def _end(self, key: str) -> tuple[int, int, Resolution]:
        """A key's partition, group end and resolution; an end is computed once per team, resolution and start."""
        partition, scope_key, resolution_name, start = GroupKey.parts(key)
        team = scope_key.split(SCOPE_KEY_SEPARATOR, 1)[0]  # a scope key starts with its team, which the zone follows
        resolution = RESOLUTION_BY_NAME[resolution_name]
        shared = (team, resolution_name, start)
        end = self._shared_ends.get(shared)
        if end is None:
            if len(self._shared_ends) >= SHARED_ENDS:  # starts long gone: start again
                self._shared_ends.clear()
            end = self._shared_ends[shared] = self._group_end(team, resolution, int(start))
        return partition, end, resolution

    def _group_end(self, team: str, resolution: Resolution, start: int) -> int:
        if self._config is None:
            return resolution.latest_group_end(start)
        return resolution.group_end(start, scope_timezone(Scope(team=team), self._config))
