"""Raw record batches for chosen topics, past Faust's per-message path; Faust keeps everything else.

Faust's consumer wraps every fetched record in a ``ConsumerMessage``, awaits a
callback per message (the conductor decodes it into an ``Event`` and queues it
for a stream), records it in the monitor, and acknowledges it when the stream
is done; its commit timer then commits the longest run of consecutive acked
offsets. For kpimon's source topics that path costs more than the ingest.
``BatchApp`` swaps in ``BatchConsumer``, which keeps Faust's app, tables,
changelogs, recovery, rebalancing and commit timer and changes only this:

- **Fetch** (``_wait_next_records``): each fetch (aiokafka's ``getmany``
  result) is split. Records of the batch topics go to one handler as one batch of
  aiokafka's own records; the rest (table changelogs, read during recovery) is
  returned to Faust's unchanged ``getmany`` and per-message path.
- **Deliver** only while Faust's flow is active, the consumer is not stopping, and
  the rebalance generation is still the one of the fetch; otherwise the batch is
  dropped unread, and the seek to the committed offsets that Faust performs
  before its flow resumes reads it again. Records of a partition that is paused at
  that instant (the end of a recovery pauses and resumes partitions) are sought
  back to, so they are read again once it resumes, instead of being skipped.
- **One batch at a time**, as its own task behind ``asyncio.shield``: a stopping
  fetcher does not cut a batch in half. A revocation stops the flow and waits for
  the batch in flight before Faust's own revocation steps; ``wait_empty`` (a
  graceful stop) waits for it too.
- **Commit**: the handler returns, per partition, the offset below which every
  record's state is durable. ``_new_offset`` hands it to Faust's commit timer
  instead of consecutive acked offsets, so offsets that hold no record (transaction
  markers, compaction) never hold a commit back, and records the handler held back
  are never passed.

Faust internals overridden or read (faust-streaming 0.15.3 with aiokafka 0.14,
pinned in pyproject.toml; ``tests/unit/worker/test_batch_consumer.py`` checks
the contract against the installed Faust): ``App._new_transport``,
``Consumer._wait_next_records``, ``Consumer.on_partitions_revoked``,
``Consumer.wait_empty``, ``Consumer._new_offset`` and
``Consumer._filter_tps_with_pending_acks``; ``App.consumer_generation_id``,
``Consumer.flow_active`` and the monitor's received-message counters.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from time import monotonic
from typing import Any, Protocol

import faust
from aiokafka.errors import IllegalStateError
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, TopicT
from faust.types.transports import TPorTopicSet, TransportT

log = logging.getLogger(__name__)

CommitOffsets = Mapping[tuple[str, int], int]  # (topic, partition) -> the next offset to read; all below is durable
RecordMap = Mapping[TP, list[Any]]


class RawRecord(Protocol):
    """One Kafka record as aiokafka returns it (``ConsumerRecord``): the fields kpimon reads."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...


BatchHandler = Callable[[Sequence[RawRecord]], Awaitable[CommitOffsets]]


@dataclass(frozen=True)
class BatchRoute:
    topic: TopicT
    topics: frozenset[str]  # the topic's names
    handler: BatchHandler


class BatchConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer, handing the batch topics' records to ``BatchApp.batch_route`` in batches."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self._durable: dict[TP, int] = {}
        self._in_flight: asyncio.Future[None] | None = None

    @property
    def route(self) -> BatchRoute | None:
        return self.app.batch_route if isinstance(self.app, BatchApp) else None

    async def _wait_next_records(self, timeout: float) -> tuple[RecordMap | None, set[TP] | None]:
        records, active = await super()._wait_next_records(timeout)
        route = self.route
        if not records or route is None:
            return records, active
        topics = route.topics
        batch = {tp: tp_records for tp, tp_records in records.items() if tp.topic in topics}
        if not batch:
            return records, active
        await self.deliver(route.handler, batch, active, self.app.consumer_generation_id)
        return {tp: tp_records for tp, tp_records in records.items() if tp.topic not in topics}, active

    async def deliver(self, handler: BatchHandler, fetched: RecordMap, active: set[TP] | None, generation: int) -> None:
        """Run ``handler`` on the records fetched in ``generation``, then note the offsets it made durable."""
        await self.wait_in_flight()  # one batch at a time, also across a restart of Faust's fetcher
        if not self.flow_active or self.should_stop or self.app.consumer_generation_id != generation:
            return  # a rebalance or a stop: Faust seeks to the committed offsets before its flow resumes
        records: list[Any] = []
        for tp, tp_records in fetched.items():
            if active is None or tp in active:
                records.extend(tp_records)
                self._on_fetched(tp, len(tp_records))
            else:
                await self._read_again(tp, tp_records[0].offset)
        if not records:
            return
        task = self._in_flight = asyncio.ensure_future(self._run(handler, records))
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(_log_failure)  # the fetcher stopped waiting; the batch goes on
            raise

    async def _run(self, handler: BatchHandler, records: Sequence[RawRecord]) -> None:
        commits = await handler(records)
        durable = self._durable
        for (topic, partition), offset in commits.items():
            tp = TP(topic, partition)
            if offset > durable.get(tp, -1):
                durable[tp] = offset

    def committed_offset(self, tp: TP) -> int | None:
        """The group's committed offset of ``tp`` as Faust last read or wrote it; None before any (or at 0)."""
        offset: int | None = self._committed_offset.get(tp)
        return offset if offset is not None and offset > 0 else None

    async def _read_again(self, tp: TP, offset: int) -> None:
        """Seek a partition back to records that were fetched while it was paused: Faust would skip them."""
        if tp in self.assignment():
            log.info("Fetched %s[%d] from %d while it was paused: reading it again", tp.topic, tp.partition, offset)
            with contextlib.suppress(IllegalStateError):  # revoked meanwhile: the next assignment seeks it
                await self.seek(tp, offset)

    def _on_fetched(self, tp: TP, count: int) -> None:
        """What Faust's per-message path tells the monitor, once per partition and batch."""
        monitor = self.app.monitor
        monitor.messages_received_total += count
        monitor.messages_received_by_topic[tp.topic] += count
        monitor.stream_inbound_time[tp] = monotonic()  # Faust's livelock check: the stream is processing
        monitor.track_tp_end_offset(tp, self.highwater(tp))

    async def wait_in_flight(self) -> None:
        """Wait until the batch being processed, if any, is done (whether it succeeded or not)."""
        task = self._in_flight
        if task is not None and not task.done():
            await asyncio.wait({task})

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        # Faust stops the flow and waits for unacked messages only when stream_wait_empty is on,
        # and drops its bookkeeping of the revoked partitions before it does: stop and wait first,
        # whatever the settings, so the batch in flight finishes while its partitions are still ours.
        if self.assignment():
            self.stop_flow()  # as Faust does next: no batch starts from here on
            if self._in_flight is not None and not self._in_flight.done():
                log.info("Partitions revoked: waiting for the batch in flight before handing them over")
                await self.wait_in_flight()
        await super().on_partitions_revoked(revoked)  # commits what is durable (wait_empty), unless stopping
        for tp in revoked:
            self._durable.pop(tp, None)

    async def wait_empty(self) -> None:
        if self._in_flight is not None and not self._in_flight.done():
            log.info("Waiting for the batch in flight")
            await self.wait_in_flight()
        await super().wait_empty()

    def _filter_tps_with_pending_acks(self, topics: TPorTopicSet | None = None) -> Iterator[TP]:
        yield from super()._filter_tps_with_pending_acks(topics)
        for tp in list(self._durable):
            if topics is None or tp in topics or tp.topic in topics:
                yield tp

    def _new_offset(self, tp: TP) -> int | None:
        route = self.route
        if route is not None and tp.topic in route.topics:
            return self._durable.get(tp)
        return super()._new_offset(tp)


class BatchTransport(faust_aiokafka.Transport):
    Consumer = BatchConsumer


class BatchApp(faust.App):
    """A Faust app whose consumer hands the records of one set of topics to one coroutine, in batches.

    The batch size is Faust's ``broker_max_poll_records``. Only ``kafka://``
    brokers (aiokafka) are supported.
    """

    batch_route: BatchRoute | None = None

    def batches(self, topic: TopicT, handler: BatchHandler) -> None:
        """Subscribe to ``topic``'s topics and hand their records to ``handler``, with no agent or stream."""
        if self.batch_route is not None:
            raise RuntimeError("a BatchApp has one batch handler")
        self.batch_route = BatchRoute(topic, frozenset(topic.topics), handler)

    async def on_start(self) -> None:
        # What iterating over a topic does for an agent: the conductor subscribes to it. Not before the
        # app starts: the conductor (and the transport) would take the event loop of that moment.
        if self.batch_route is not None:
            self.topics.add(self.batch_route.topic)
        await super().on_start()

    def _new_transport(self) -> TransportT:
        return BatchTransport(self.conf.broker_consumer, self)


def _log_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("A batch failed after its fetcher stopped", exc_info=task.exception())
