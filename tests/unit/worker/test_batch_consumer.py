"""The batch path's contract with Faust (streams.worker.batch_consumer), against the installed faust-streaming.

No broker: the consumer is built but not started; the fetch, the seek and the
partition metadata are replaced, so every check runs Faust's own code around them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord
from faust.types import TP

from streams.worker.batch_consumer import BatchApp, BatchConsumer, CommitOffsets, RawRecord

CRM = TP("crm", 0)
CRM_1 = TP("crm", 1)
MARKETING = TP("marketing", 0)
CHANGELOG = TP("app-buckets-changelog", 0)


def record(tp: TP, offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(tp.topic, tp.partition, offset, 0, 0, b"k", b"v%d" % offset, None, 1, 2, [])


def fetch(tp: TP, *offsets: int) -> list[ConsumerRecord[bytes, bytes]]:
    return [record(tp, offset) for offset in offsets]


class Handler:
    """A batch handler that records its batches, can be held mid-batch, and reports the next offset per partition."""

    def __init__(self, commits: Callable[[Sequence[RawRecord]], CommitOffsets] | None = None) -> None:
        self.batches: list[list[tuple[str, int, int]]] = []
        self.release = asyncio.Event()
        self.release.set()
        self.started = asyncio.Event()
        self.finished = 0
        self.fail = False
        self._commits = commits or _next_offsets

    async def __call__(self, records: Sequence[RawRecord]) -> CommitOffsets:
        self.batches.append([(r.topic, r.partition, r.offset) for r in records])
        self.started.set()
        await self.release.wait()
        if self.fail:
            raise RuntimeError("the batch failed")
        self.finished += 1
        return self._commits(records)


def _next_offsets(records: Sequence[RawRecord]) -> CommitOffsets:
    commits: dict[tuple[str, int], int] = {}
    for r in records:
        commits[(r.topic, r.partition)] = max(commits.get((r.topic, r.partition), 0), r.offset + 1)
    return commits


class Fixture:
    def __init__(self, app: BatchApp, consumer: BatchConsumer, handler: Handler) -> None:
        self.app, self.consumer, self.handler = app, consumer, handler
        self.fetched: Mapping[TP, list[Any]] = {}
        self.seeks: list[tuple[TP, int]] = []

    def committable(self) -> dict[TP, int]:
        """What Faust's commit (``force_commit``) would commit now."""
        consumer = self.consumer
        return dict(consumer._filter_committable_offsets(list(consumer._filter_tps_with_pending_acks())))

    async def deliver(self, fetched: Mapping[TP, list[Any]], *, generation: int | None = None) -> None:
        consumer = self.consumer
        generation = self.app.consumer_generation_id if generation is None else generation
        await consumer.deliver(self.handler, fetched, consumer._get_active_partitions(), generation)


@pytest.fixture
def batch(monkeypatch: pytest.MonkeyPatch) -> Iterator[Fixture]:
    app = BatchApp("test-batch", broker="kafka://127.0.0.1:1", store="memory://")
    handler = Handler()
    app.batches(app.topic("crm", "marketing"), handler)
    consumer = app.consumer
    assert isinstance(consumer, BatchConsumer)
    fixture = Fixture(app, consumer, handler)
    app.consumer_generation_id = 3
    consumer._set_active_tps({CRM, CRM_1, MARKETING, CHANGELOG})

    async def getmany(active_partitions: set[TP] | None, timeout: float) -> Mapping[TP, list[Any]]:
        return fixture.fetched

    async def seek(tp: TP, offset: int) -> None:
        fixture.seeks.append((tp, offset))

    monkeypatch.setattr(consumer, "_getmany", getmany)
    monkeypatch.setattr(consumer, "_seek", seek)
    monkeypatch.setattr(consumer, "highwater", lambda tp: 1000)
    monkeypatch.setattr(consumer, "assignment", lambda: {CRM, CRM_1, MARKETING, CHANGELOG})
    yield fixture


async def test_a_fetch_reaches_the_handler_as_one_batch_and_changelogs_keep_fausts_path(batch: Fixture) -> None:
    batch.fetched = {CRM: fetch(CRM, 10, 11), CHANGELOG: fetch(CHANGELOG, 5), MARKETING: fetch(MARKETING, 7)}

    yielded = [(tp, message) async for tp, message in batch.consumer.getmany(timeout=1.0)]

    assert batch.handler.batches == [[("crm", 0, 10), ("crm", 0, 11), ("marketing", 0, 7)]]
    assert [(tp, message.offset, message.value) for tp, message in yielded] == [(CHANGELOG, 5, b"v5")]
    assert batch.app.monitor.messages_received_total == 3  # the batch's records; the changelog's when Faust tracks it
    assert batch.app.monitor.tp_end_offsets[CRM] == 1000


async def test_offsets_become_committable_only_once_the_handler_reports_them_durable(batch: Fixture) -> None:
    batch.handler.release.clear()
    delivery = asyncio.ensure_future(batch.deliver({CRM: fetch(CRM, 10, 11, 14), CRM_1: fetch(CRM_1, 3)}))
    await batch.handler.started.wait()
    assert batch.committable() == {}  # in flight: nothing of it may be committed

    batch.handler.release.set()
    await delivery
    assert batch.committable() == {CRM: 15, CRM_1: 4}  # offsets 12 and 13 hold no record: no gap blocks the commit

    batch.consumer._committed_offset.update({CRM: 15, CRM_1: 4})  # what Faust notes after committing
    assert batch.committable() == {}


async def test_records_the_handler_held_back_are_not_committed(batch: Fixture) -> None:
    """The handler reports what its state applied; records it held back (a gap before them) stay uncommitted."""
    batch.handler._commits = lambda records: {("crm", 0): 11}  # applied through 10, held back 13 and 14
    await batch.deliver({CRM: fetch(CRM, 10, 13, 14)})
    assert batch.committable() == {CRM: 11}


async def test_a_batch_of_an_earlier_generation_is_not_processed(batch: Fixture) -> None:
    await batch.deliver({CRM: fetch(CRM, 10)}, generation=2)
    assert batch.handler.batches == []
    assert batch.committable() == {}


async def test_nothing_is_delivered_while_the_flow_is_stopped(batch: Fixture) -> None:
    batch.consumer.stop_flow()
    await batch.deliver({CRM: fetch(CRM, 10)})
    assert batch.handler.batches == []


async def test_records_of_a_paused_partition_are_read_again_not_skipped(batch: Fixture) -> None:
    batch.consumer.pause_partitions({CRM_1})
    await batch.deliver({CRM: fetch(CRM, 10), CRM_1: fetch(CRM_1, 3, 4)})
    assert batch.handler.batches == [[("crm", 0, 10)]]
    assert batch.seeks == [(CRM_1, 3)]
    assert batch.committable() == {CRM: 11}


async def test_a_revocation_waits_for_the_batch_in_flight_then_forgets_its_partitions(
    batch: Fixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    finished_when_faust_revoked: list[int] = []

    async def faust_revocation(revoked: set[TP]) -> None:  # the app's handler: commits and hands the partitions over
        finished_when_faust_revoked.append(batch.handler.finished)
        assert batch.committable() == {CRM: 11}

    monkeypatch.setattr(batch.consumer, "_on_partitions_revoked", faust_revocation)
    batch.handler.release.clear()
    delivery = asyncio.ensure_future(batch.deliver({CRM: fetch(CRM, 10)}))
    await batch.handler.started.wait()

    revocation = asyncio.ensure_future(batch.consumer.on_partitions_revoked({CRM, CRM_1, MARKETING}))
    await asyncio.sleep(0.05)
    assert not revocation.done() and not batch.consumer.flow_active  # stopped: no new batch, and waiting
    fetched_meanwhile = asyncio.ensure_future(batch.deliver({CRM_1: fetch(CRM_1, 3)}))

    batch.handler.release.set()
    await asyncio.gather(delivery, revocation, fetched_meanwhile)
    assert finished_when_faust_revoked == [1]
    assert len(batch.handler.batches) == 1  # what was fetched meanwhile is read again after the rebalance
    assert batch.committable() == {}  # the revoked partitions' offsets are gone with them


async def test_a_stop_waits_for_the_batch_in_flight_and_commits_it(
    batch: Fixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    commits: list[dict[TP, int]] = []

    async def commit(*args: Any, **kwargs: Any) -> bool:
        commits.append(batch.committable())
        return True

    monkeypatch.setattr(batch.consumer, "commit", commit)
    batch.handler.release.clear()
    delivery = asyncio.ensure_future(batch.deliver({CRM: fetch(CRM, 10)}))
    await batch.handler.started.wait()

    delivery.cancel()  # Faust stops its fetcher first: the batch goes on
    stopping = asyncio.ensure_future(batch.consumer.wait_empty())
    await asyncio.sleep(0.05)
    assert not stopping.done() and commits == []

    batch.handler.release.set()
    await stopping
    assert batch.handler.finished == 1 and commits == [{CRM: 11}]
    with pytest.raises(asyncio.CancelledError):
        await delivery


async def test_one_batch_at_a_time(batch: Fixture) -> None:
    batch.handler.release.clear()
    first = asyncio.ensure_future(batch.deliver({CRM: fetch(CRM, 10)}))
    await batch.handler.started.wait()
    second = asyncio.ensure_future(batch.deliver({CRM_1: fetch(CRM_1, 3)}))
    await asyncio.sleep(0.05)
    assert len(batch.handler.batches) == 1

    batch.handler.release.set()
    await asyncio.gather(first, second)
    assert batch.handler.batches == [[("crm", 0, 10)], [("crm", 1, 3)]]


async def test_a_failing_batch_is_raised_to_faust_and_commits_nothing(batch: Fixture) -> None:
    batch.handler.fail = True
    batch.fetched = {CRM: fetch(CRM, 10)}
    with pytest.raises(RuntimeError, match="the batch failed"):
        [item async for item in batch.consumer.getmany(timeout=1.0)]
    assert batch.committable() == {}
