"""Topic creation against the real broker: co-partitioned topics are checked, written-only ones are not."""

from __future__ import annotations

import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from streams.worker.topics import TopicLayoutError, ensure_topics
from tests.integration.support import BOOTSTRAP


async def partitions_of(name: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        (description,) = await admin.describe_topics([name])
        return len(description["partitions"])
    finally:
        await admin.close()


async def test_an_output_topic_of_another_partition_count_is_used_as_it_is() -> None:
    run_id = uuid.uuid4().hex[:8]
    source, alerts, fresh = f"it-{run_id}.crm", f"it-{run_id}.alerts", f"it-{run_id}.alerts-new"
    await ensure_topics(BOOTSTRAP, [alerts], partitions=4)  # left by a worker with 4 partitions
    await ensure_topics(BOOTSTRAP, [source], partitions=6, outputs=[alerts, fresh])
    assert (await partitions_of(alerts), await partitions_of(fresh), await partitions_of(source)) == (4, 6, 6)
    with pytest.raises(TopicLayoutError, match=f"{alerts} has 4"):
        await ensure_topics(BOOTSTRAP, [source, alerts], partitions=6)
