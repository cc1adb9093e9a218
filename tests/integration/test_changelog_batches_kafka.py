"""streams.worker.changelog_batches on the real broker: every record lands, in order, at the acknowledged offsets."""

from __future__ import annotations

import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faust.types import TP

from streams.worker.app import PRODUCER_BATCH_BYTES
from streams.worker.changelog_batches import ChangelogBatches
from tests.integration.support import BOOTSTRAP

RECORDS = 3_000  # per partition, about 1.5 MiB each: several batches of PRODUCER_BATCH_BYTES


async def read(topic: str, partition: int, end: int) -> list[tuple[bytes | None, bytes | None]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, 0)
        records: list[tuple[bytes | None, bytes | None]] = []
        while len(records) < end:
            for batch in (await consumer.getmany(tp, timeout_ms=1000)).values():
                records += [(record.key, record.value) for record in batch]
        return records
    finally:
        await consumer.stop()


async def test_changelog_batches_reach_the_broker_whole_and_in_order() -> None:
    topic = f"it-{uuid.uuid4().hex[:8]}-buckets-changelog"
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    await admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", max_batch_size=PRODUCER_BATCH_BYTES)
    await producer.start()
    acknowledged: dict[TP, tuple[int, int]] = {}
    writer = ChangelogBatches(lambda: topic, lambda: producer, lambda tp, o, n: acknowledged.update({tp: (o, n)}))
    try:
        written = {
            p: [(f'"{p}|k{n}"'.encode(), None if n % 100 == 7 else f"{n:0500}".encode()) for n in range(RECORDS)]
            for p in (0, 1)
        }
        for n in range(RECORDS):
            for partition in (0, 1):
                writer.add(partition, *written[partition][n])
        await writer.send()
        assert acknowledged == {TP(topic, 0): (RECORDS - 1, RECORDS), TP(topic, 1): (RECORDS - 1, RECORDS)}
        for partition in (0, 1):
            assert await read(topic, partition, RECORDS) == written[partition]
        writer.add(1, b'"1|again"', b"2")  # a second send continues at the next offset
        await writer.send()
        assert acknowledged[TP(topic, 1)] == (RECORDS, 1)
    finally:
        await producer.stop()
        await admin.delete_topics([topic])
        await admin.close()
