"""A table's changelog records sent in aiokafka's record batches: one future per batch, not per record.

Faust sends every changelog record as a message of its own: a ``FutureMessage`` in its producer
buffer, then aiokafka's per-message ``send``, with a future, a callback and a sensor call each. A
batch of a backlog writes tens of thousands of bucket groups, and with 1,000 reps that path took
about 45% of the worker's CPU, more than computing the groups did. ``ChangelogBatches`` appends
each encoded record to an aiokafka ``BatchBuilder`` of its changelog partition instead (a
``bytearray`` append, the record's CRC in C); ``send`` hands the builders to the producer
(``AIOKafkaProducer.send_batch``), waits until Kafka has acknowledged every one, and then tells
the store the last offset it holds per partition, as Faust's ``Collection._on_changelog_sent``
does for each record it sends (``RocksStore.set_persisted_offset``; ``checkpoint`` writes it to
disk with the values), and Faust's monitor how many records went out (``kpimon_faust_messages_sent``).

Records stay in their builders until ``send``: the pipeline calls it where a stage must become
durable (``streams.worker.pipeline``), so the order of a key's records in the changelog is the
order of its writes. A ``send`` that fails (Kafka unreachable) forgets the records: the pipeline
retries the batch's writes, every one again, and a record written twice changes nothing.

aiokafka's API used: ``create_batch``, ``send_batch``, ``BatchBuilder.append`` and ``close``
(aiokafka 0.14, pinned in pyproject.toml). The batch size is the producer's ``max_batch_size``
(Faust's ``producer_max_batch_size``); a record larger than that gets a batch of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from faust.types import TP

ProducerOf = Callable[[], Any]  # the app's aiokafka AIOKafkaProducer, asked for when records are added


class Acknowledged(Protocol):
    def __call__(self, tp: TP, offset: int, records: int) -> None:
        """Kafka has every record sent to ``tp`` up to ``offset``; ``records`` of them in this ``send``."""


class _Batch:
    """One open record batch of one partition, and how many records it holds."""

    __slots__ = ("builder", "records")

    def __init__(self, builder: Any) -> None:
        self.builder = builder
        self.records = 0

    def add(self, key: bytes, value: bytes | None) -> bool:
        if self.builder.append(timestamp=None, key=key, value=value) is None:
            return False  # full
        self.records += 1
        return True


class ChangelogBatches:
    """The changelog records of one table written since the last ``send``, by partition."""

    def __init__(self, topic: Callable[[], str], producer: ProducerOf, acknowledged: Acknowledged) -> None:
        self._topic = topic
        self._producer = producer
        self._acknowledged = acknowledged
        self._pending: dict[int, list[_Batch]] = {}

    def add(self, partition: int, key: bytes, value: bytes | None) -> None:
        """A record of ``partition`` (``value`` None: the key's deletion), sent at the next ``send``."""
        batches = self._pending.setdefault(partition, [])
        if batches and batches[-1].add(key, value):
            return
        batch = _Batch(self._producer().create_batch())
        if not batch.add(key, value):
            raise ValueError(f"aiokafka refused a changelog record of {len(value or b'')} bytes in an empty batch")
        batches.append(batch)

    def __bool__(self) -> bool:
        """Whether records wait to be sent."""
        return bool(self._pending)

    def pending_records(self) -> int:
        return sum(batch.records for batches in self._pending.values() for batch in batches)

    async def send(self) -> None:
        """Send every record added so far; return once Kafka has acknowledged them all."""
        pending, self._pending = self._pending, {}
        if pending:
            topic = self._topic()
            await asyncio.gather(*(self._send(topic, partition, batches) for partition, batches in pending.items()))

    async def _send(self, topic: str, partition: int, batches: list[_Batch]) -> None:
        producer = self._producer()
        sent = []
        for batch in batches:  # in order: each waits until aiokafka has taken the one before it
            batch.builder.close()
            sent.append(await producer.send_batch(batch.builder, topic, partition=partition))
        acknowledged = [await future for future in sent]  # each a batch's base offset, then one per record
        last = acknowledged[-1].offset + batches[-1].records - 1
        self._acknowledged(TP(topic, partition), last, sum(batch.records for batch in batches))
