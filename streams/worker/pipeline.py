"""One batch of Kafka messages through validation, dedup and folding into the tables.

The edge around the pure core: reads come from the tables' local stores, and
every changed key is written back once per batch (one changelog record each).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

import orjson
from faust.types import ProducerT, TopicT

from schemas.config import KpimonConfig
from schemas.events import AnyEvent, entity_key, routing_key, routing_key_of
from streams.core.continuity import ContinuityGuard, PartitionTail
from streams.core.dedup import SeenLookup, chunk_key, encode_chunk, expired_days
from streams.core.folding import BucketGroup, GroupEnds, ProgressValue, last_applied_offset
from streams.core.kafka_partition import partition_of
from streams.core.labels import LabelPolicy
from streams.core.records import Accepted, Forwarded, Position, Record, Rejected
from streams.core.validation import Rejection, validate_message
from streams.core.windows import MINUTE
from streams.entities.registry import EntityState
from streams.ingest.batch import Stage, StoredState, plan_batch
from streams.readout.visitor_keys import HllAddition, visitor_additions
from streams.worker.batch_consumer import CommitOffsets, RawRecord
from streams.worker.eviction import EntitySweep, Scan, scan_mapping
from streams.worker.retries import EdgeRetries
from streams.worker.settings import Settings
from streams.worker.visitor_store import VisitorRecorder

log = logging.getLogger(__name__)
SEEN_SWEEP_SECONDS = 3600
SEEN_SWEEP_CHUNKS = 200  # chunks of expired days deleted per batch at most: a day is dropped over several batches
TAIL_IDLE_SECONDS = 5.0
WRITE_SLICE_SECONDS = 0.005


class LoopTurns:
    """Called after each step of a long loop: yields to the event loop once a slice has run ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._started = time.perf_counter()

    async def __call__(self) -> None:
        if time.perf_counter() - self._started >= self._seconds:
            await asyncio.sleep(0)
            self._started = time.perf_counter()


async def flush_completely(producer: ProducerT) -> None:
    """Wait until every message produced so far is acknowledged by Kafka.

    Faust's own ``flush()`` returns as soon as its buffer makes no progress for
    0.1 s, possibly with messages still buffered; Faust calls it before it
    commits offsets, so on its own it does not guarantee that a committed
    batch's state is durable.
    """
    while producer.buffer.size:
        await producer.buffer.flush()
    await producer.flush()


def deadletter_headers(position: Position, rejection: Rejection, now: float) -> list[tuple[str, bytes]]:
    return [
        ("kpimon-reason", rejection.reason.encode()),
        ("kpimon-detail", rejection.detail.encode()),
        ("kpimon-source-topic", position.topic.encode()),
        ("kpimon-source-partition", str(position.partition).encode()),
        ("kpimon-source-offset", str(position.offset).encode()),
        ("kpimon-rejected-at", f"{now:.3f}".encode()),
    ]


class LocalSeen(SeenLookup, Protocol):
    """The seen table's local store: lookups by id hash, and its chunks by day (``streams.worker.seen_store``)."""

    def days(self, partition: int) -> list[int]: ...

    def chunk_keys(self, partition: int, day: int, limit: int) -> list[str]: ...


def _no_checkpoint() -> None:
    """The memory tables of tests have nothing to write to disk."""


async def _no_changelog_batches() -> None:
    """The memory tables of tests send no changelog records."""


@dataclass
class Tables:
    """The worker's state; each a Faust table whose keys start with their partition."""

    seen: MutableMapping[str, Any]
    buckets: MutableMapping[str, Any]
    progress: MutableMapping[str, Any]
    local_seen: LocalSeen
    local_buckets: MutableMapping[str, BucketGroup]
    local_progress: MutableMapping[str, ProgressValue]
    entities: MutableMapping[str, Any]
    local_entities: MutableMapping[str, EntityState]
    checkpoint: Callable[[], None] = _no_checkpoint  # the local stores' writes to disk, once Kafka has them
    # the changelog records of the writes so far sent, returning once Kafka has them (streams.worker.changelog_batches)
    send_changelogs: Callable[[], Awaitable[None]] = _no_changelog_batches
    entity_scan: Scan | None = None  # the entity store in key order (None: scan local_entities as a mapping)


class StateObserver(Protocol):
    """Told every stage written (after its writes), every bucket group evicted and every batch made durable whole.

    /metrics keeps its totals so, and serves the ingest counters as of the last batch written whole:
    the progress stage is durable a stage before the counters it counts.
    """

    def written(self, stage: Stage) -> None: ...

    def evicted(self, group_keys: Sequence[str]) -> None: ...

    def batch_written(self) -> None: ...


class PoisonBatch(Exception):
    """Computing a batch's writes raised: a message caused it (or a bug it runs into), so retrying cannot help."""


@dataclass(frozen=True)
class Outgoing:
    """A message the batch sends besides its state: a dead letter or an event forwarded to its partition."""

    topic: TopicT
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] | None = None


@dataclass(frozen=True)
class Planned:
    """A batch's computed writes: its stages, the messages it sends, the visitors it adds to Redis."""

    records: int
    stages: Sequence[Stage]
    outgoing: Sequence[Outgoing]
    additions: Mapping[str, HllAddition]


def _no_commits(topic: str, partition: int) -> int | None:
    return None


@dataclass
class SourceConsumer:
    """The consumer behind the agent: its rebalance generation, a way to re-read a partition, its commits."""

    generation: Callable[[], int]
    rewind: Callable[[Position], Awaitable[None]]
    tails: Callable[[], Awaitable[list[PartitionTail]]]
    committed: Callable[[str, int], int | None] = _no_commits  # the group's committed offset, None before any


class StateBehindCommits(RuntimeError):
    """The group committed offsets past what the restored state has applied: counting on would lose events."""


def state_behind_commits(topic: str, partition: int, applied: int | None, committed: int | None) -> str | None:
    """Why the state of a source partition cannot be trusted, or None when it covers the group's commits.

    kpimon commits an offset only once the state of every record below it is durable in the
    changelogs, so a committed offset past the restored state's means the state was lost: its
    changelog topics were deleted or truncated, or the tables are new (a new ``STATE_VERSION``).
    """
    if committed is None or (applied is not None and applied + 1 >= committed):
        return None
    restored = "nothing of it" if applied is None else f"it up to offset {applied} only"
    return (
        f"the consumer group committed {topic}[{partition}] up to offset {committed}, but the tables hold "
        f"{restored}: the changelog topics were deleted or truncated, or the tables are new after an upgrade "
        f"(STATE_VERSION). Counting on would silently lose the events before offset {committed}. "
        "Stop every worker of this app and run `kpimon rebuild` to count again from the earliest offsets "
        "the source topics still hold (`kpimon rebuild --help`)."
    )


def must_be_rekeyed(event: AnyEvent, partition: int, key: str, partitions: int) -> bool:
    """Whether an event read from a source topic goes to the re-keyed topic before it is applied. Pure.

    An event on the wrong partition for its routing key must, so that its copies meet. So must
    every event of an entity (deal, lead, contact, account, spend chain), wherever it came: the
    events kpimon sends an entity itself come on the re-keyed topic, and an entity's change for an
    event depends on the events applied before it, so all of an entity's events are applied from
    that one topic, in its order. Read again after a crash, they come in the same order and change
    the same bucket groups, which then skip them by offset (two topics could interleave otherwise).
    """
    return entity_key(event) is not None or partition != partition_of(key, partitions)


def is_applied(offset: int, applied: int | None) -> bool:
    """Whether a message at ``offset`` is in a state whose last applied offset of its partition is ``applied``."""
    return applied is not None and offset <= applied


class IngestPipeline:
    def __init__(
        self,
        settings: Settings,
        config: KpimonConfig,
        tables: Tables,
        deadletter: TopicT,
        rekeyed: TopicT,
        producer: Callable[[], ProducerT],
        consumer: SourceConsumer,
        clock: Callable[[], float] = time.time,
        visitors: VisitorRecorder | None = None,
        observer: StateObserver | None = None,
    ) -> None:
        self._settings = settings
        self._observer = observer
        self._config = config
        self._tables = tables
        self._deadletter = deadletter
        self._rekeyed = rekeyed
        self._producer = producer
        self._consumer = consumer
        self._known_currencies = config.known_currencies()
        self._labels = LabelPolicy.from_config(config)
        self.continuity = ContinuityGuard()
        self._clock = clock
        self._visitors = visitors
        self._bucket_sweep_watermark = 0
        self._group_ends = GroupEnds(config)
        self._seen_sweep_watermark = 0
        self._expired_days: list[tuple[int, int]] = []  # (partition, day) of seen ids still to forget
        self.entity_sweep = EntitySweep(tables.entities, tables.entity_scan or scan_mapping(tables.local_entities))
        self._run_id = uuid.uuid4().hex[:12]
        self._batch_number = 0
        self._processing = False
        self.retries = EdgeRetries(self._still_ours)
        self._generation = consumer.generation()
        self._covered: set[tuple[str, int, int]] = set()  # (topic, partition, generation) whose state was checked

    async def check_tails(self) -> None:
        """Re-read idle source partitions whose last messages never reached the agent."""
        if self._processing:
            return
        tails = await self._consumer.tails()
        self.check_state_covers_commits(((tail.topic, tail.partition) for tail in tails), self._consumer.generation())
        for tail in tails:
            rewind = self.continuity.tail_rewind(
                tail,
                last_applied_offset(self._tables.local_progress, tail.topic, tail.partition),
                self._consumer.generation(),
                now=self._clock(),
                idle_seconds=TAIL_IDLE_SECONDS,
            )
            if rewind is not None:
                await self._consumer.rewind(rewind)

    async def ingest(self, records: Sequence[RawRecord]) -> CommitOffsets:
        """One fetched batch (a ``streams.worker.batch_consumer.BatchHandler``): process it, say what is durable.

        Per source partition of the batch: the offset after the last one the state
        has applied. ``process`` ends with every write acknowledged by Kafka, so
        the consumer may commit these offsets; records the continuity guard held
        back are above them.
        """
        await self.process_isolating_failures(records)
        local_progress = self._tables.local_progress
        commits = {}
        for topic, partition in {(record.topic, record.partition) for record in records}:
            applied = last_applied_offset(local_progress, topic, partition)
            if applied is not None:
                commits[(topic, partition)] = applied + 1
        return commits

    async def process_isolating_failures(self, records: Sequence[RawRecord]) -> None:
        """``process``; if computing its writes raises, each half of the batch again, down to one message.

        A message whose writes cannot be computed (``PoisonBatch``: the pure code raised on it)
        is dead-lettered with reason ``processing_error``, so the partition moves on instead of
        failing on it for ever. Errors while the writes are sent (Kafka, the local store, the OS)
        are no message's fault: ``EdgeRetries`` sends the same writes again until they succeed.
        State writes are idempotent by offset, so running the messages of a failed batch again is safe.
        """
        try:
            await self.process(records)
        except PoisonBatch as exc:
            if len(records) == 1:
                log.error("Dead-lettering a message whose processing raised", exc_info=exc.__cause__)
                await self._reject_unprocessable(records[0], exc.__cause__)
                return
            log.warning("Computing a batch of %d messages raised: processing it in halves", len(records))
            half = len(records) // 2  # a poison message is found in log2(batch) rounds, the rest counted in order
            await self.process_isolating_failures(records[:half])
            await self.process_isolating_failures(records[half:])

    async def _reject_unprocessable(self, message: RawRecord, cause: BaseException | None) -> None:
        position = Position(message.topic, message.partition, message.offset)
        if self._already_applied(position):
            return
        rejection = Rejection("processing_error", f"processing raised: {cause!r}")
        headers = deadletter_headers(position, rejection, self._clock())
        dead_letter = Outgoing(self._deadletter, message.key, message.value, headers)
        await self._fold(partial(self._plan, [Rejected(position, rejection)], [dead_letter]))

    def _already_applied(self, position: Position) -> bool:
        """Whether the state has this message already (read again after a crash or a re-read)."""
        applied = last_applied_offset(self._tables.local_progress, position.topic, position.partition)
        return is_applied(position.offset, applied)

    def _still_ours(self) -> bool:
        return self._consumer.generation() == self._generation

    async def process(self, messages: Sequence[RawRecord]) -> None:
        self._processing = True
        self._generation = self._consumer.generation()
        try:
            await self._process(messages)
        finally:
            self._processing = False

    def check_state_covers_commits(self, partitions: Iterable[tuple[str, int]], generation: int) -> None:
        """Raise ``StateBehindCommits`` for a source partition whose restored state is behind the group's commits.

        Checked once per partition and rebalance generation, after recovery (batches come only then;
        ``check_tails`` also asks, so a worker with no new messages refuses as well).
        """
        for topic, partition in sorted(set(partitions)):
            if (topic, partition, generation) in self._covered:
                continue
            applied = last_applied_offset(self._tables.local_progress, topic, partition)
            problem = state_behind_commits(topic, partition, applied, self._consumer.committed(topic, partition))
            if problem is not None:
                raise StateBehindCommits(problem)
            self._covered.add((topic, partition, generation))

    async def _process(self, messages: Sequence[RawRecord]) -> None:
        now = self._clock()
        local_progress = self._tables.local_progress
        positions = [Position(m.topic, m.partition, m.offset) for m in messages]
        self.check_state_covers_commits(((p.topic, p.partition) for p in positions), self._generation)
        admission = self.continuity.admit(
            positions,
            lambda topic, partition: last_applied_offset(local_progress, topic, partition),
            self._generation,
            now,
        )
        for rewind in admission.rewinds:
            await self.retries.run(
                f"Seeking {rewind.topic}[{rewind.partition}] back to {rewind.offset}",
                partial(self._consumer.rewind, rewind),
            )
        admitted = set(admission.admitted)
        await self._fold(lambda: self._plan(*self._classify(messages, positions, admitted, now)))

    def _classify(
        self, messages: Sequence[RawRecord], positions: Sequence[Position], admitted: set[Position], now: float
    ) -> tuple[list[Record], list[Outgoing]]:
        """Each admitted message validated, forwarded or accepted, and what it sends (a first reading only). Pure."""
        records: list[Record] = []
        outgoing: list[Outgoing] = []
        rekeyed_topic = self._settings.rekeyed_topic
        applied: dict[tuple[str, int], int | None] = {}  # the state's last offset per source partition
        for position, message in zip(positions, messages, strict=True):
            if position not in admitted:
                continue
            admitted.discard(position)  # a message delivered twice in one batch (after a seek) is one message
            source = (position.topic, position.partition)
            if source not in applied:
                applied[source] = last_applied_offset(self._tables.local_progress, *source)
            first_delivery = not is_applied(position.offset, applied[source])
            outcome = validate_message(
                message.value,
                max_bytes=self._settings.max_event_bytes,
                now=now,
                future_tolerance_seconds=self._settings.future_tolerance_seconds,
                past_horizon_seconds=self._settings.past_horizon_days * 86_400,
                known_currencies=self._known_currencies,
                internal_allowed=message.topic == rekeyed_topic,
            )
            if not isinstance(outcome, Rejection):
                outcome = self._labels.refusal(outcome) or outcome
            if isinstance(outcome, Rejection):
                records.append(Rejected(position, outcome))
                if first_delivery:
                    headers = deadletter_headers(position, outcome, now)
                    outgoing.append(Outgoing(self._deadletter, message.key, message.value, headers))
                continue
            key = routing_key(outcome)
            if message.topic != rekeyed_topic and must_be_rekeyed(
                outcome, message.partition, key, self._settings.partitions
            ):
                records.append(Forwarded(position))
                if first_delivery:
                    outgoing.append(Outgoing(self._rekeyed, key.encode(), message.value))
            else:
                records.append(Accepted(position, outcome))
        return records, outgoing

    def _plan(self, records: list[Record], outgoing: Sequence[Outgoing]) -> Planned:
        """A batch's plan from its records and what they send, and its web sessions' visitors; reads, never writes."""
        tables = self._tables
        stored = StoredState(tables.local_seen, tables.local_buckets, tables.local_progress, tables.local_entities)
        plan = plan_batch(records, stored, self._config, self._labels)
        additions = visitor_additions(self._settings.app_id, plan.web_sessions(), self._config, self._clock())
        return Planned(len(records), plan.stages, outgoing, additions)

    async def _fold(self, compute: Callable[[], Planned]) -> None:
        """Compute the batch's plan off the event loop, then send it stage by stage, each durable before the next.

        The computation is pure CPU work on the local stores, which nothing else writes while a batch
        is in flight (the consumer runs one batch at a time and a revocation waits for it), so it runs
        in a thread: the loop keeps serving scrapes and fetching the next batch meanwhile, held at
        most one switch interval of the interpreter (1 ms, ``streams.worker.run``) at a time.
        """
        try:
            planned = await asyncio.to_thread(compute)
        except Exception as exc:
            raise PoisonBatch from exc
        self._batch_number += 1
        await self.retries.run(
            f"Writing a batch of {planned.records} messages",
            lambda: self._write_plan(planned.stages, planned.outgoing),
        )
        if self._visitors is not None:  # in the background: Redis never holds up or fails the ingest
            self._visitors.record(planned.additions)

    async def _write_plan(self, stages: Sequence[Stage], outgoing: Sequence[Outgoing]) -> None:
        """Every write of a plan, in order; all of them again if it is retried (each is idempotent)."""
        for message in outgoing:  # durable with the first stage's flush, before any progress that skips them
            await message.topic.send(key=message.key, value=message.value, headers=message.headers)
        for number, stage in enumerate(stages):
            if number or outgoing:
                await self._durable()
            await self._write(stage)
        await self._evict()
        # The consumer may commit the batch's offsets when this returns: make its state durable first.
        await self._durable()
        self._tables.checkpoint()
        if self._observer is not None:
            self._observer.batch_written()

    async def _durable(self) -> None:
        """Return once Kafka has acknowledged every write so far: the tables' changelog records, then the rest."""
        await self._tables.send_changelogs()
        await flush_completely(self._producer())

    async def _write(self, stage: Stage) -> None:
        """The stage's writes, yielding to the loop every ``WRITE_SLICE_SECONDS`` (a backlog's batch writes thousands).

        Readers of the tables between two slices (the alert sums) see every group whole, some of the
        batch's new and some not yet, as they see the groups of partitions other workers write.
        """
        tables = self._tables
        turn = LoopTurns(WRITE_SLICE_SECONDS)
        for partition, chunk in stage.seen.items():
            # A key of its own per batch and process: a batch replayed after a
            # crash never overwrites ids that an earlier attempt stored.
            tables.seen[chunk_key(partition, chunk.day, f"{self._run_id}-{self._batch_number}")] = encode_chunk(
                chunk.entries
            )
        for key, group in stage.groups.items():
            tables.buckets[key] = group
            await turn()
        for key, progress in stage.progress.items():
            tables.progress[key] = progress
        for emitted in stage.emitted:
            await self._rekeyed.send(key=routing_key_of(emitted).encode(), value=orjson.dumps(emitted))
        for key, state in stage.entities.items():
            tables.entities[key] = state
            await turn()
        if self._observer is not None:
            self._observer.written(stage)

    async def _evict(self) -> None:
        """Delete what left the retention; the check of every stored group (once per minute) runs in a thread."""
        tables = self._tables
        watermarks = {int(key): value["watermark"] for key, value in tables.local_progress.items()}
        newest = max(watermarks.values(), default=0)
        if newest - self._bucket_sweep_watermark >= MINUTE.seconds:
            self._bucket_sweep_watermark = newest
            # Every key is decoded on its first check: 0.6 s for 68,000 groups after a start, 40 ms after that.
            expired = await asyncio.to_thread(self._group_ends.expired, list(tables.local_buckets), watermarks)
            turn = LoopTurns(WRITE_SLICE_SECONDS)
            for key in expired:
                del tables.buckets[key]
                await turn()
            if self._observer is not None and expired:
                self._observer.evicted(expired)
        if not self._expired_days and newest - self._seen_sweep_watermark >= SEEN_SWEEP_SECONDS:
            self._seen_sweep_watermark = newest
            self._expired_days = [
                (partition, day)
                for partition, watermark in watermarks.items()
                for day in expired_days(tables.local_seen.days(partition), watermark)
            ]
        self._forget_expired_ids()
        self.entity_sweep.run(watermarks)

    def _forget_expired_ids(self) -> None:
        """Delete the chunks of expired days, a few per batch (each takes its ids with it)."""
        budget = SEEN_SWEEP_CHUNKS
        while self._expired_days and budget:
            partition, day = self._expired_days[0]
            keys = self._tables.local_seen.chunk_keys(partition, day, budget)
            if not keys:
                self._expired_days.pop(0)
            for key in keys:
                del self._tables.seen[key]
            budget -= len(keys)
