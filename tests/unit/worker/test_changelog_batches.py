"""streams.worker.changelog_batches: records in aiokafka's own record batches, acknowledged per partition."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.default_records import DefaultRecordBatch
from faust.types import TP

from streams.worker.changelog_batches import ChangelogBatches

TOPIC = "app-buckets-changelog"


class Producer:
    """AIOKafkaProducer's create_batch and send_batch: each batch gets the partition's next offsets."""

    def __init__(self, batch_bytes: int, failing: bool = False) -> None:
        self.batch_bytes = batch_bytes
        self.failing = failing
        self.next_offset: dict[int, int] = {0: 100, 1: 0}
        self.sent: list[tuple[str, int, list[tuple[bytes | None, bytes | None]]]] = []

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder(self.batch_bytes, 0)  # no compression

    async def send_batch(self, builder: BatchBuilder, topic: str, *, partition: int) -> asyncio.Future[Any]:
        if self.failing:
            raise ConnectionError("broker down")
        records = [(record.key, record.value) for record in DefaultRecordBatch(bytes(builder._builder.build()))]
        self.sent.append((topic, partition, records))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(type("RecordMetadata", (), {"offset": self.next_offset[partition]}))
        self.next_offset[partition] += len(records)
        return future


def batches(producer: Producer) -> tuple[ChangelogBatches, list[tuple[TP, int, int]]]:
    acknowledged: list[tuple[TP, int, int]] = []
    writer = ChangelogBatches(
        lambda: TOPIC, lambda: producer, lambda tp, offset, n: acknowledged.append((tp, offset, n))
    )
    return writer, acknowledged


async def test_records_go_out_in_order_per_partition_and_the_last_offset_is_acknowledged() -> None:
    producer = Producer(batch_bytes=200)  # a few records per batch
    writer, acknowledged = batches(producer)
    written = {0: [(f'"0|k{n}"'.encode(), b"v" * 30) for n in range(25)], 1: [(b'"1|gone"', None)]}
    for partition, records in written.items():
        for key, value in records:
            writer.add(partition, key, value)
    assert writer.pending_records() == 26 and producer.sent == []  # nothing goes out before send()
    await writer.send()
    assert len([sent for sent in producer.sent if sent[1] == 0]) > 1  # partition 0's records took several batches
    for partition, records in written.items():
        assert [record for _, p, batch in producer.sent if p == partition for record in batch] == records
    assert sorted(acknowledged) == [(TP(TOPIC, 0), 124, 25), (TP(TOPIC, 1), 0, 1)]  # 100..124; 0
    assert writer.pending_records() == 0
    await writer.send()  # nothing pending: nothing sent, nothing acknowledged
    assert len(acknowledged) == 2


async def test_a_record_larger_than_a_batch_gets_one_of_its_own() -> None:
    producer = Producer(batch_bytes=64)
    writer, acknowledged = batches(producer)
    writer.add(1, b'"1|small"', b"x")
    writer.add(1, b'"1|large"', b"y" * 1000)
    await writer.send()
    assert [records for _, _, records in producer.sent] == [[(b'"1|small"', b"x")], [(b'"1|large"', b"y" * 1000)]]
    assert acknowledged == [(TP(TOPIC, 1), 1, 2)]


async def test_a_failed_send_forgets_its_records_for_the_retry_to_write_again() -> None:
    producer = Producer(batch_bytes=1024, failing=True)
    writer, acknowledged = batches(producer)
    writer.add(0, b'"0|a"', b"1")
    with pytest.raises(ConnectionError):
        await writer.send()
    assert writer.pending_records() == 0 and acknowledged == []
    producer.failing = False
    writer.add(0, b'"0|a"', b"1")  # the pipeline's retry writes the batch again
    await writer.send()
    assert [records for _, _, records in producer.sent] == [[(b'"0|a"', b"1")]]
