"""``kpimon replay FILE``: backfill events from a JSONL file or a CRM/marketing CSV export.

A JSONL file holds one contract event per line. A CSV file needs a mapping
(``schemas.mapping``; ``deploy/mappings/`` has the ones for the public data sets
in ``../shared/datasets/``) that turns each row into zero or more events
(``schemas.row_mapping``); ``streams.tools.csv_source`` reads the CSV files.

Every row ends as events, a bad row (with its line number and what is wrong
with which column), or a row skipped on purpose (the mapping's ``skip_when``):
nothing is dropped without being counted. A row with any problem produces
nothing, so a deal is never won without having been opened. Events are checked
the way the worker checks them (the contract, the size limit, timestamps in the
future), so none of them ends in the dead-letter topic.

Events are produced in event-time order across the whole file (the worker's
retention follows the newest event time it has seen, so an unsorted backfill
would lose old events as late), keyed by their routing key (``schemas.events.routing_key``:
the deal or the lead, else the ``event_id``). Ids come from the file
(JSONL) or from the mapping's templates over the row's columns (CSV), so
replaying a file twice produces the same ids and the worker counts each event
once. Kafka's record timestamps are left to the broker: setting them to old
event times would let topic retention delete the records at once.

The pure part (``streams.tools.replay_source``: ``rows_to_events``, ``jsonl_to_events``, ``plan_replay``) reads
and checks; ``run_replay`` produces.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaProducer

from schemas.config import KpimonConfig
from streams.tools.csv_source import load_mapping_for
from streams.tools.replay_source import (
    BadRow,
    ReplayInputError,
    ReplayPlan,
    RowEvent,
    plan_replay,
)
from streams.tools.simulation.model import TopicKind, topic_kind
from streams.worker.acceptance import Acceptance
from streams.worker.kafka_access import kafka_client_options
from streams.worker.settings import Settings
from streams.worker.topics import ensure_topics

PROGRESS_EVERY_SECONDS = 2.0
BAD_ROWS_LISTED = 20
LARGEST_BATCH = 1000
PACED_BATCH_SECONDS = 0.1  # at a given rate, a batch holds this long's worth of events


# -- reporting -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplaySummary:
    """What a replay did: rows read, events produced by type, rows skipped and bad rows."""

    file: str
    rows: int
    events_by_type: dict[str, int]
    skipped_rows: int
    bad_rows: tuple[BadRow, ...]
    produced: bool
    seconds: float

    @property
    def events(self) -> int:
        return sum(self.events_by_type.values())

    def report(self, listed: int = BAD_ROWS_LISTED) -> list[str]:
        """The closing lines: totals, then at most ``listed`` bad rows and how many more there are."""
        types = ", ".join(f"{kind} {count:,}" for kind, count in self.events_by_type.items()) or "none"
        verb = f"produced in {self.seconds:.1f} s" if self.produced else "checked, none produced (dry run)"
        lines = [
            f"replay: {self.file}: {self.events:,} events {verb} ({types})",
            f"replay: {self.rows:,} rows, {self.skipped_rows:,} skipped by the mapping's skip_when, "
            f"{len(self.bad_rows):,} bad rows{' (not produced):' if self.bad_rows else ''}",
        ]
        lines += [f"  {bad_row}" for bad_row in self.bad_rows[:listed]]
        if len(self.bad_rows) > listed:
            lines.append(f"  and {len(self.bad_rows) - listed:,} more")
        return lines


def progress_line(produced: int, total: int, elapsed: float, bad_rows: int) -> str:
    """``replay: 4,000/17,600 events (23%), 1,950 events/s, 3 bad rows so far``."""
    percent = 100 * produced // total if total else 100
    per_second = produced / elapsed if elapsed > 0 else 0.0
    return (
        f"replay: {produced:,}/{total:,} events ({percent}%), {per_second:,.0f} events/s, {bad_rows:,} bad rows so far"
    )


# -- producing -----------------------------------------------------------------------------------------------------


def batch_size(rate: float | None) -> int:
    """Events sent at once: the largest batch unpaced, else about PACED_BATCH_SECONDS' worth."""
    return LARGEST_BATCH if rate is None else max(1, min(LARGEST_BATCH, int(rate * PACED_BATCH_SECONDS)))


def batches(events: Sequence[RowEvent], size: int) -> Iterable[Sequence[RowEvent]]:
    return (events[start : start + size] for start in range(0, len(events), size))


async def _send(producer: AIOKafkaProducer, topics: dict[TopicKind, str], batch: Sequence[RowEvent]) -> None:
    """Produce a batch keyed by the events' routing keys and wait until the broker has it."""
    deliveries = [await producer.send(topics[topic_kind(event.event)], event.value, key=event.key) for event in batch]
    if deliveries:
        await asyncio.gather(*deliveries)


async def _produce(settings: Settings, plan: ReplayPlan, rate: float | None, progress: Callable[[str], None]) -> None:
    """Produce the plan's events in order, at most ``rate`` per second, with a progress line every 2 s."""
    topics: dict[TopicKind, str] = {"crm": settings.crm_topic, "marketing": settings.marketing_topic}
    servers = settings.bootstrap_servers
    security = settings.kafka
    await ensure_topics(
        servers, list(topics.values()), settings.partitions, settings.replication_factor, security=security
    )
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all", linger_ms=5, **kafka_client_options(security))
    await producer.start()
    try:
        started = time.monotonic()
        next_report, produced, total = started + PROGRESS_EVERY_SECONDS, 0, len(plan.events)
        for batch in batches(plan.events, batch_size(rate)):
            if rate is not None:
                await asyncio.sleep(max(0.0, started + produced / rate - time.monotonic()))
            await _send(producer, topics, batch)
            produced += len(batch)
            now = time.monotonic()
            if now >= next_report or produced == total:
                progress(progress_line(produced, total, now - started, len(plan.bad_rows)))
                next_report = now + PROGRESS_EVERY_SECONDS
    finally:
        try:
            await producer.flush()
        finally:
            await producer.stop()


async def run_replay(
    settings: Settings,
    config: KpimonConfig,
    source: Path,
    mapping: Path | None,
    *,
    rate: float | None,
    progress: Callable[[str], None],
    dry_run: bool = False,
) -> ReplaySummary:
    """Replay ``source`` (JSONL, or CSV with the ``mapping`` file) to the CRM and marketing topics.

    Raises ConfigFileError for a bad mapping (``file:line:col``), ReplayInputError
    for a file that cannot be read, and ValueError for a rate that is not positive.
    """
    if rate is not None and not rate > 0:
        raise ValueError(f"rate must be a positive number of events per second, got {rate}")
    if not source.is_file():
        raise ReplayInputError(f"{source}: no such file")
    csv_mapping = load_mapping_for(mapping, source) if mapping is not None else None
    started = time.monotonic()
    plan = plan_replay(source, csv_mapping, acceptance=Acceptance.of(settings, config))
    progress(
        f"replay: {source.name}: {plan.rows:,} rows read: {len(plan.events):,} events, "
        f"{plan.skipped_rows:,} rows skipped, {len(plan.bad_rows):,} bad rows"
    )
    if plan.events and not dry_run:
        await _produce(settings, plan, rate, progress)
    summary = ReplaySummary(
        file=source.name,
        rows=plan.rows,
        events_by_type=plan.events_by_type(),
        skipped_rows=plan.skipped_rows,
        bad_rows=tuple(plan.bad_rows),
        produced=not dry_run,
        seconds=time.monotonic() - started,
    )
    for line in summary.report():
        progress(line)
    return summary
