"""Create the topics kpimon reads and writes, or check the existing ones fit."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import suppress

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from streams.worker.kafka_access import KafkaSecurity, kafka_client_options


class TopicLayoutError(RuntimeError):
    pass


async def ensure_topics(
    bootstrap_servers: str,
    names: Iterable[str],
    partitions: int,
    replication_factor: int = 1,
    *,
    outputs: Iterable[str] = (),
    security: KafkaSecurity | None = None,
) -> None:
    """Create missing topics with ``partitions``; refuse existing ``names`` with another count.

    The source topics, the re-keyed topic and the changelogs must be
    co-partitioned: partition p of each belongs to the same worker. ``outputs``
    (topics kpimon only writes, such as the alerts audit trail) are created when
    missing and taken as they are otherwise. ``security``: how to log in (None: PLAINTEXT).
    """
    names = list(dict.fromkeys(names))
    options = kafka_client_options(security) if security is not None else {}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, **options)
    await admin.start()
    try:
        await _create_or_check(
            admin, names, [name for name in outputs if name not in names], partitions, replication_factor
        )
    finally:
        await admin.close()


async def _create_or_check(
    admin: AIOKafkaAdminClient, names: list[str], outputs: list[str], partitions: int, replication_factor: int
) -> None:
    listed = set(await admin.list_topics())
    existing = {
        description["topic"]: description["partitions"]
        for description in await admin.describe_topics([name for name in [*names, *outputs] if name in listed])
    }
    checked = {name: parts for name, parts in existing.items() if name in names}
    wrong = {name: len(parts) for name, parts in checked.items() if parts and len(parts) != partitions}
    if wrong:
        lines = ", ".join(f"{name} has {count}" for name, count in wrong.items())
        raise TopicLayoutError(
            f"topics must all have {partitions} partitions (KPIMON_PARTITIONS), but {lines}: "
            f"set KPIMON_PARTITIONS to match, or recreate the topics"
        )
    missing = [name for name in [*names, *outputs] if name not in existing]
    if missing:
        with suppress(TopicAlreadyExistsError):  # another worker created it meanwhile
            await admin.create_topics([NewTopic(name, partitions, replication_factor) for name in missing])
