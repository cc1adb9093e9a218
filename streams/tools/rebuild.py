"""``kpimon rebuild``: count every event the source topics still hold again, after the state was lost.

A worker refuses to run when its consumer group committed offsets past what its tables hold
(``streams.worker.pipeline.state_behind_commits``): the changelog topics were deleted or truncated,
or a new ``STATE_VERSION`` started empty tables. The state can only be computed again from the
source topics. With every worker of the app stopped, ``rebuild``:

1. checks that no worker runs: the consumer group has no member, and the local data dir is free;
2. reports, per source partition, the offsets Kafka still holds and those already deleted by the
   topic's retention (their events cannot be counted again);
3. with ``--yes``: deletes the consumer group (its committed offsets), then the tables' changelog
   topics and the re-keyed topic (both are derived from the source topics), then the local tables
   under ``KPIMON_DATA_DIR``.

The workers, started again, read every source partition from its earliest offset and rebuild the
state exactly, as a first run over the same messages would. Every other worker's machine must
delete its own data dir's tables too (``kpimon rebuild --yes --local-only`` there).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.admin import DeleteGroupsRequest

from streams.worker.app import changelog_topics
from streams.worker.kafka_access import kafka_client_options
from streams.worker.run import lock_data_dir
from streams.worker.settings import Settings

GROUP_NOT_FOUND = 69  # Kafka error codes of DeleteGroups
NON_EMPTY_GROUP = 68


class RebuildRefused(RuntimeError):
    pass


@dataclass(frozen=True)
class Retained:
    """What a source partition still holds: offsets ``earliest`` up to (not including) ``end``."""

    topic: str
    partition: int
    earliest: int
    end: int

    def describe(self) -> str:
        name = f"{self.topic}[{self.partition}]"
        held = f"{name}: offsets {self.earliest}..{self.end - 1}" if self.end > self.earliest else f"{name}: empty"
        if self.earliest:
            held += f"; offsets below {self.earliest} were deleted by the topic's retention and cannot be counted again"
        return held


async def retained_offsets(settings: Settings, partitions: list[TopicPartition]) -> list[Retained]:
    """Per partition, the offsets Kafka still holds."""
    if not partitions:
        return []
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False, **kafka_client_options(settings.kafka)
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        earliest = await consumer.beginning_offsets(partitions)
        end = await consumer.end_offsets(partitions)
        return [Retained(tp.topic, tp.partition, earliest[tp], end[tp]) for tp in partitions]
    finally:
        await consumer.stop()


async def _partitions(admin: AIOKafkaAdminClient, topics: list[str]) -> list[TopicPartition]:
    existing = set(await admin.list_topics())
    described = await admin.describe_topics([topic for topic in topics if topic in existing])
    return sorted(
        TopicPartition(description["topic"], partition["partition"])
        for description in described
        for partition in description["partitions"]
    )


async def _group_members(admin: AIOKafkaAdminClient, group: str) -> int:
    described = await admin.describe_consumer_groups([group])
    return sum(len(entry[5]) for response in described for entry in response.groups)


async def _delete_group(admin: AIOKafkaAdminClient, group: str) -> None:
    coordinator = await admin.find_coordinator(group)
    response = await admin._send_request(DeleteGroupsRequest([group]), coordinator)
    for _, error_code in response.results:
        if error_code == NON_EMPTY_GROUP:
            raise RebuildRefused(f"consumer group {group!r} has members again: stop every worker of the app first")
        if error_code not in (0, GROUP_NOT_FOUND):
            raise RebuildRefused(f"deleting consumer group {group!r} failed with Kafka error code {error_code}")


def _local_tables(data_dir: Path) -> list[Path]:
    """Faust's table databases under the data dir, of every app version (``v<n>/tables``)."""
    return sorted(path for path in data_dir.glob("v*/tables") if path.is_dir())


async def rebuild(settings: Settings, *, confirmed: bool, local_only: bool, say: Callable[[str], None]) -> None:
    """Check, report and (``confirmed``) delete what keeps the workers from counting every retained event again."""
    lock = lock_data_dir(settings.data_dir)  # refuses while a worker of this machine holds it
    try:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=settings.bootstrap_servers, **kafka_client_options(settings.kafka)
        )
        await admin.start()
        try:
            if not local_only:
                await _prepare_cluster(admin, settings, confirmed=confirmed, say=say)
        finally:
            await admin.close()
        tables = _local_tables(settings.data_dir)
        for path in tables:
            say(f"{'deleting' if confirmed else 'would delete'} the local tables {path}")
            if confirmed:
                shutil.rmtree(path)
        if not tables:
            say(f"no local tables under {settings.data_dir} (KPIMON_DATA_DIR)")
    finally:
        lock.close()
    if confirmed:
        say("done: start the worker(s); they count every retained event again from the earliest offsets.")
        say("Follow kpimon_faust_consumer_lag_messages on /metrics: the rebuild is over when it is back near 0.")
    else:
        say("nothing was changed: run again with --yes to do it (every worker of the app stopped).")


async def _prepare_cluster(
    admin: AIOKafkaAdminClient, settings: Settings, *, confirmed: bool, say: Callable[[str], None]
) -> None:
    group = settings.app_id
    members = await _group_members(admin, group)
    if members:  # a worker stopped a moment ago (or killed) stays a member until its session times out
        say(f"consumer group {group!r} has {members} member(s): waiting up to the session timeout for them to leave")
        deadline = asyncio.get_running_loop().time() + settings.session_timeout_seconds + 5
        while members and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(1)
            members = await _group_members(admin, group)
    if members:
        raise RebuildRefused(
            f"consumer group {group!r} has {members} member(s): stop every worker of the app (KPIMON_APP_ID) first"
        )
    say(f"consumer group {group!r}: no worker running")
    sources = await _partitions(admin, [settings.crm_topic, settings.marketing_topic])
    retained = await retained_offsets(settings, sources)
    for partition in retained:
        say(partition.describe())
    say(f"{sum(p.end - p.earliest for p in retained)} messages will be read again")
    existing = set(await admin.list_topics())
    derived = [name for name in [*changelog_topics(group), settings.rekeyed_topic] if name in existing]
    say(f"{'deleting' if confirmed else 'would delete'} the committed offsets of consumer group {group!r}")
    for name in derived:
        say(f"{'deleting' if confirmed else 'would delete'} topic {name} (derived from the source topics)")
    if not confirmed:
        return
    await _delete_group(admin, group)
    if derived:
        await admin.delete_topics(derived)
        await _wait_deleted(admin, derived)


async def _wait_deleted(admin: AIOKafkaAdminClient, topics: list[str], timeout: float = 60.0) -> None:
    """Wait until the deleted topics are gone from the metadata: a worker started sooner could still see them."""
    deadline = asyncio.get_running_loop().time() + timeout
    while set(topics) & set(await admin.list_topics()):
        if asyncio.get_running_loop().time() > deadline:
            raise RebuildRefused(f"topics {topics} were not deleted within {timeout:.0f} s: check the broker's log")
        await asyncio.sleep(0.5)
