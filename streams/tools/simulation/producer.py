"""``kpimon simulate``: the demo worlds produced to Kafka, the history as fast as the broker takes it, then live.

The worlds are pure (``live.py``, ``history.py``); this module reads the clock, finds where an
earlier run's history ended on the topics (``last_produced``), sends, and reports progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from schemas.config import KpimonConfig
from streams.tools.simulation.history import DAY, DEFAULT_HISTORY_CALLS, History, history_start, simulated_time
from streams.tools.simulation.live import Simulation
from streams.tools.simulation.model import SimulatedEvent, TopicKind, message
from streams.worker.kafka_access import KafkaSecurity, kafka_client_options
from streams.worker.settings import Settings
from streams.worker.topics import ensure_topics

TICK_SECONDS = 0.1
PROGRESS_EVERY_SECONDS = 5.0
HISTORY_PROGRESS_EVERY_SECONDS = 2.0
TAIL_MESSAGES = 200  # read per partition to find the newest simulated event (other producers may write too)
TAIL_TIMEOUT_SECONDS = 30.0

Progress = Callable[[str], None]


@dataclass
class Counts:
    """Events produced, per topic kind; ``limit``: ``--total``, if any."""

    limit: int | None = None
    by_kind: dict[TopicKind, int] = field(default_factory=lambda: {"crm": 0, "marketing": 0})

    @property
    def produced(self) -> int:
        return sum(self.by_kind.values())

    @property
    def reached(self) -> bool:
        return self.limit is not None and self.produced >= self.limit

    def allowed(self, batch: list[SimulatedEvent]) -> list[SimulatedEvent]:
        return batch if self.limit is None else batch[: max(0, self.limit - self.produced)]

    def add(self, batch: Iterable[SimulatedEvent]) -> None:
        for kind, _ in batch:
            self.by_kind[kind] += 1


def utc(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds))


def progress_line(counts: dict[TopicKind, int], elapsed: float) -> str:
    produced, per_second = sum(counts.values()), sum(counts.values()) / elapsed if elapsed > 0 else 0.0
    topics = f"crm {counts['crm']:,}, marketing {counts['marketing']:,}"
    return f"simulate: {produced:,} events ({topics}) in {elapsed:.1f} s, {per_second:.1f} events/s"


def history_progress_line(produced: int, reached: float, start: float, end: float, elapsed: float) -> str:
    """``simulate: history 12,345 events, simulated day 2026-11-14 (13 of 35), 9,812 events/s``."""
    days = max(1, math.ceil((end - start) / DAY))
    day = min(days, int((reached - start) // DAY) + 1)
    rate = produced / elapsed if elapsed > 0 else 0.0
    when = time.strftime("%Y-%m-%d", time.gmtime(reached))
    return f"simulate: history {produced:,} events, simulated day {when} ({day} of {days}), {rate:,.0f} events/s"


def history_plan_line(seed: int, now: float, seconds: float, produced_until: float | None, start: float) -> str:
    """What the history part will do, and why (a resumed history names the point it resumes from)."""
    days = f"{seconds / DAY:g} days"
    if produced_until is None:
        return f"simulate: history of {days}, {utc(start)} to {utc(now)} (no events of seed {seed} on the topics yet)"
    if start >= now:
        return f"simulate: history already produced up to {utc(produced_until)}; nothing to add"
    if produced_until >= now - seconds:
        return (
            f"simulate: history already produced up to {utc(produced_until)} (the newest event of seed {seed} "
            f"on the topics); producing from there to {utc(now)}"
        )
    return (
        f"simulate: the topics hold events of seed {seed} up to {utc(produced_until)}, before the {days} asked "
        f"for; producing {utc(start)} to {utc(now)}"
    )


def _stop_on_signals(stop: asyncio.Event) -> list[signal.Signals]:
    """SIGINT and SIGTERM set ``stop`` (where the loop can handle signals); the installed ones."""
    loop, installed = asyncio.get_running_loop(), []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    return installed


async def _send(producer: AIOKafkaProducer, topics: dict[TopicKind, str], batch: list[SimulatedEvent]) -> None:
    """Produce a batch, keyed by routing key, and wait until the broker has it."""
    deliveries = []
    for kind, event in batch:
        key, value = message(event)
        deliveries.append(await producer.send(topics[kind], value, key=key))
    if deliveries:
        await asyncio.gather(*deliveries)


def _now_ms() -> float:
    return math.floor(time.time() * 1000) / 1000


async def last_produced(
    servers: str, topics: Iterable[str], partitions: int, seed: int, security: KafkaSecurity
) -> float | None:
    """The newest event time of ``seed``'s simulated events among the last messages of every partition, if any.

    The simulator produces in event-time order per partition, so the newest of its events on a partition
    is among the last ones; ``TAIL_MESSAGES`` per partition leave room for other producers' messages.
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=servers, enable_auto_commit=False, **kafka_client_options(security))
    await consumer.start()
    try:
        every = [TopicPartition(topic, partition) for topic in topics for partition in range(partitions)]
        ends = await consumer.end_offsets(every)  # before assigning: new topics' leaders may not be elected yet
        begins = await consumer.beginning_offsets(every)
        remaining = {tp: ends[tp] for tp in every if ends[tp] > begins[tp]}
        if not remaining:
            return None
        consumer.assign(list(remaining))
        for tp, end in remaining.items():  # positions set at once: the consumer does not look them up itself
            consumer.seek(tp, max(begins[tp], end - TAIL_MESSAGES))
        newest: float | None = None
        deadline = time.monotonic() + TAIL_TIMEOUT_SECONDS
        while remaining:
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read the last messages of {sorted(map(str, remaining))} in time")
            batches = await consumer.getmany(*remaining, timeout_ms=500)
            for records in batches.values():
                for record in records:
                    moment = simulated_time(record.value or b"", seed)
                    if moment is not None and (newest is None or moment > newest):
                        newest = moment
            for tp in list(remaining):
                if await consumer.position(tp) >= remaining[tp]:
                    del remaining[tp]
        return newest
    finally:
        await consumer.stop()


async def _produce_history(
    producer: AIOKafkaProducer,
    topics: dict[TopicKind, str],
    history: History,
    span: tuple[float, float],
    counts: Counts,
    stop: asyncio.Event,
    progress: Progress | None,
) -> None:
    """The history's events in [start, end), one UTC day at a time, in event-time order, as fast as possible."""
    start, end = span
    began = time.monotonic()
    next_report = began + HISTORY_PROGRESS_EVERY_SECONDS
    produced, moment = 0, start
    while moment < end and not stop.is_set() and not counts.reached:
        chunk_end = min(end, (math.floor(moment / DAY) + 1) * DAY)
        batch = counts.allowed(history.events_between(moment, chunk_end))
        await _send(producer, topics, batch)
        counts.add(batch)
        produced += len(batch)
        moment = chunk_end
        if progress and time.monotonic() >= next_report:
            progress(history_progress_line(produced, moment, start, end, time.monotonic() - began))
            next_report = time.monotonic() + HISTORY_PROGRESS_EVERY_SECONDS
    if progress:
        elapsed = time.monotonic() - began
        rate = f"{produced / elapsed:,.0f} events/s" if elapsed > 0 else "at once"
        what = "done" if moment >= end else f"stopped at {utc(moment)}"
        events = "1 event" if produced == 1 else f"{produced:,} events"
        progress(f"simulate: history {what}: {events} in {elapsed:.1f} s ({rate})")


async def run_simulation(
    settings: Settings,
    config: KpimonConfig,
    *,
    rate: float,
    seed: int,
    duration: float | None,
    total: int | None,
    progress: Progress | None,
    duplicate_rate: float = 0.0,
    history_seconds: float = 0.0,
    history_calls: float = DEFAULT_HISTORY_CALLS,
) -> int:
    """Produce ``history_seconds`` of the past first (if any), then events in real time at ``rate`` events/s.

    Live, the history's world goes on too (its follow-ups come when due). Stops after ``duration``
    seconds of the live part, ``total`` events in all, or a signal; returns the events produced.
    """
    simulation = Simulation(config, seed, rate=rate, duplicate_rate=duplicate_rate)
    history = History(config, seed, calls_per_day=history_calls) if history_seconds > 0 else None
    topics: dict[TopicKind, str] = {"crm": settings.crm_topic, "marketing": settings.marketing_topic}
    servers = settings.bootstrap_servers
    security = settings.kafka
    await ensure_topics(
        servers, list(topics.values()), settings.partitions, settings.replication_factor, security=security
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=servers, acks="all", linger_ms=5, compression_type=None, **kafka_client_options(security)
    )
    await producer.start()
    stop, counts, live = asyncio.Event(), Counts(total), Counts()
    handled = _stop_on_signals(stop)
    try:
        now = _now_ms()
        if history is not None:
            produced_until = await last_produced(servers, topics.values(), settings.partitions, seed, security)
            start = history_start(now, history_seconds, produced_until)
            if progress:
                progress(history_plan_line(seed, now, history_seconds, produced_until, start))
            await _produce_history(producer, topics, history, (start, now), counts, stop, progress)
        started, window_start = _now_ms(), now
        deadline = started + duration if duration is not None else math.inf
        next_report = started + PROGRESS_EVERY_SECONDS
        while not stop.is_set() and not counts.reached:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=TICK_SECONDS)
            moment = min(_now_ms(), deadline)
            batch = simulation.events_between(window_start, moment)
            if history is not None:
                batch = sorted([*batch, *history.events_between(window_start, moment)], key=_occurred_at)
            window_start = moment
            batch = counts.allowed(batch)
            await _send(producer, topics, batch)
            counts.add(batch)
            live.add(batch)
            done = stop.is_set() or moment >= deadline or counts.reached
            if progress and (done or moment >= next_report):
                progress(progress_line(live.by_kind, moment - now))  # event time since the live world began
                next_report = moment + PROGRESS_EVERY_SECONDS
            if done:
                break
        return counts.produced
    finally:
        for sig in handled:
            asyncio.get_running_loop().remove_signal_handler(sig)
        try:
            await producer.flush()
        finally:
            await producer.stop()


def _occurred_at(event: SimulatedEvent) -> str:
    return str(event[1]["occurred_at"])
