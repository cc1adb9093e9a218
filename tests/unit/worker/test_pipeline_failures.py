"""A message whose processing raises is dead-lettered, the rest of its batch counted; a broker error is retried."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError

import streams.ingest.batch
from schemas.config import KpimonConfig
from streams.core.dedup import MemorySeen
from streams.core.records import Record
from streams.worker.pipeline import (
    IngestPipeline,
    SourceConsumer,
    StateBehindCommits,
    Tables,
    partition_of,
    state_behind_commits,
)
from streams.worker.retries import BatchAbandoned
from streams.worker.settings import Settings
from tests.unit.worker.pipeline_fakes import MemoryState, Producer, Topic, memory_pipeline, nothing

NOW = 1_700_000_000.0
SETTINGS = Settings()


def _record(event_id: str, offset: int) -> Any:
    value = orjson.dumps(
        {
            "event_id": event_id,
            "type": "email.sent",
            "occurred_at": datetime.fromtimestamp(NOW - 60, UTC).isoformat(),
            "source": "test",
            "rep_id": "ann",
            "contact_id": "c1",
        }
    )
    return SimpleNamespace(
        topic="crm", partition=partition_of(event_id, SETTINGS.partitions), offset=offset, value=value, key=None
    )


@pytest.mark.parametrize(("before", "after"), [(1, 1), (40, 23)])
async def test_a_failing_message_is_dead_lettered_and_the_rest_counted(
    before: int, after: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The failing batch is split in halves until the message is alone: a few rounds, not one per message."""
    fold_batch = streams.ingest.batch.fold_batch
    attempts: list[int] = []

    def failing_fold(records: Sequence[Record], *args: Any, **kwargs: Any) -> Any:
        attempts.append(len(records))
        if any(getattr(record, "event", None) and record.event.event_id == "boom" for record in records):  # type: ignore[union-attr]
            raise RuntimeError("a bug")
        return fold_batch(records, *args, **kwargs)

    monkeypatch.setattr(streams.ingest.batch, "fold_batch", failing_fold)
    seen = MemorySeen()
    buckets: dict[str, Any] = {}
    progress: dict[str, Any] = {}
    entities: dict[str, Any] = {}
    deadletter, rekeyed = Topic(), Topic()
    pipeline = IngestPipeline(
        SETTINGS,
        KpimonConfig(),
        Tables(seen, buckets, progress, seen, buckets, progress, entities, entities),
        deadletter=deadletter,  # type: ignore[arg-type]
        rekeyed=rekeyed,  # type: ignore[arg-type]
        producer=Producer,  # type: ignore[arg-type]
        consumer=SourceConsumer(generation=lambda: 1, rewind=nothing, tails=nothing),
        clock=lambda: NOW,
    )
    boom = "boom"
    partition = partition_of(boom, SETTINGS.partitions)
    ok = [f"ok{n}" for n in range(2000) if partition_of(f"ok{n}", SETTINGS.partitions) == partition]
    ids = [*ok[:before], boom, *ok[before : before + after]]
    records = [_record(event_id, 10 + number) for number, event_id in enumerate(ids)]  # one partition, in a row
    last = 10 + before + after
    commits = await pipeline.ingest(records)

    assert [dict(message["headers"])["kpimon-reason"] for message in deadletter.sent] == [b"processing_error"]
    assert b"a bug" in dict(deadletter.sent[0]["headers"])["kpimon-detail"]
    assert dict(deadletter.sent[0]["headers"])["kpimon-source-offset"] == str(10 + before).encode()
    counted = {name: value for p in progress.values() for name, value in p["events"].items()}
    rejected = {name: value for p in progress.values() for name, value in p["rejected"].items()}
    assert counted == {"email.sent": before + after} and rejected == {"processing_error": 1}
    assert progress[str(partition)]["offsets"] == {"crm": last}
    assert commits == {("crm", partition): last + 1}  # the whole batch is durable
    assert len(attempts) <= 2 * len(records).bit_length() + 2  # halves: about two plans per round

    assert await pipeline.ingest(records) == commits  # read again after a crash: nothing changes
    assert len(deadletter.sent) == 1
    assert {name: value for p in progress.values() for name, value in p["events"].items()} == {
        "email.sent": before + after
    }


async def test_a_message_delivered_twice_in_one_batch_counts_once() -> None:
    """After a seek, Faust can deliver a message again in the same batch: a deal's event must not become a copy.

    A deal's events are applied from the re-keyed topic (a source topic forwards them there).
    """
    progress: dict[str, Any] = {}
    entities: dict[str, Any] = {}
    buckets: dict[str, Any] = {}
    seen = MemorySeen()
    pipeline = IngestPipeline(
        SETTINGS,
        KpimonConfig(currency_rates={"USD": Decimal(1)}),
        Tables(seen, buckets, progress, seen, buckets, progress, entities, entities),
        deadletter=Topic(),  # type: ignore[arg-type]
        rekeyed=Topic(),  # type: ignore[arg-type]
        producer=Producer,  # type: ignore[arg-type]
        consumer=SourceConsumer(generation=lambda: 1, rewind=nothing, tails=nothing),
        clock=lambda: NOW,
    )
    value = orjson.dumps(
        {
            "event_id": "w",
            "type": "deal.won",
            "occurred_at": datetime.fromtimestamp(NOW - 60, UTC).isoformat(),
            "source": "test",
            "deal_id": "d",
            "amount": "5",
            "currency": "USD",
        }
    )
    partition = partition_of("deal:d", SETTINGS.partitions)
    message = SimpleNamespace(topic=SETTINGS.rekeyed_topic, partition=partition, offset=7, value=value, key=None)
    await pipeline.process_isolating_failures([message, message])
    value_of = progress[str(partition)]
    assert value_of["events"] == {"deal.won": 1} and value_of["duplicates"] == {}


class FlakyProducer:
    """A producer whose flush fails ``failures`` times (a broker away for a while), then succeeds."""

    buffer = SimpleNamespace(size=0)

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures = failures
        self.error = error

    async def flush(self) -> None:
        if self.failures:
            self.failures -= 1
            raise self.error


def _pipeline(producer: Any, generation: list[int]) -> tuple[IngestPipeline, MemoryState]:
    consumer = SourceConsumer(generation=lambda: generation[0], rewind=nothing, tails=nothing)
    return memory_pipeline(SETTINGS, KpimonConfig(), NOW, producer=producer, consumer=consumer)


@pytest.mark.parametrize(
    "error", [KafkaConnectionError("broker away"), KafkaTimeoutError(), ConnectionResetError(), TimeoutError()]
)
async def test_a_transient_error_is_retried_with_a_capped_backoff_andnothing_is_dead_lettered(
    error: Exception,
) -> None:
    pipeline, state = _pipeline(FlakyProducer(9, error), [1])
    progress, deadletter = state.progress, state.deadletter
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    pipeline.retries.sleep = sleep
    boom_free = [f"ok{n}" for n in range(200) if partition_of(f"ok{n}", SETTINGS.partitions) == 0][:3]
    records = [_record(event_id, offset) for offset, event_id in enumerate(boom_free)]
    commits = await pipeline.ingest(records)

    assert deadletter.sent == []
    assert progress["0"]["events"] == {"email.sent": 3} and progress["0"]["rejected"] == {}
    assert commits == {("crm", 0): 3}
    assert delays == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]  # doubling, capped at 30 s
    assert pipeline.retries.counts == {type(error).__name__: 9}


async def test_a_batch_whose_partitions_are_taken_away_while_retrying_is_abandoned_uncommitted() -> None:
    generation = [1]
    pipeline, _ = _pipeline(FlakyProducer(100, KafkaConnectionError("broker away")), generation)

    async def rebalance(seconds: float) -> None:
        generation[0] = 2

    pipeline.retries.sleep = rebalance
    with pytest.raises(BatchAbandoned):
        await pipeline.ingest([_record("ok0", 0)])


@pytest.mark.parametrize(
    ("applied", "committed", "behind"),
    [
        (None, None, False),  # a new group: nothing committed
        (41, 42, False),  # the state has everything below the commit
        (99, 42, False),  # and more (applied, not committed yet)
        (None, 42, True),  # an empty state under committed offsets: a deleted changelog, a new STATE_VERSION
        (10, 42, True),  # a truncated changelog
    ],
)
def test_a_state_behind_the_groups_commits_is_refused(applied: int | None, committed: int | None, behind: bool) -> None:
    problem = state_behind_commits("crm", 3, applied, committed)
    assert (problem is not None) is behind
    if problem is not None:
        assert "crm[3]" in problem and "kpimon rebuild" in problem


async def test_the_pipeline_refuses_a_batch_when_its_state_is_behind_the_commits_and_writes_nothing() -> None:
    consumer = SourceConsumer(generation=lambda: 1, rewind=nothing, tails=nothing, committed=lambda t, p: 500)
    pipeline, state = memory_pipeline(SETTINGS, KpimonConfig(), NOW, consumer=consumer)
    with pytest.raises(StateBehindCommits, match="committed crm"):
        await pipeline.ingest([_record("ok0", 500)])
    assert state.progress == {} and state.buckets == {} and state.deadletter.sent == []
