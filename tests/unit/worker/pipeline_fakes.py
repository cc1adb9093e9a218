"""Stand-ins for the Kafka edges of ``IngestPipeline`` in unit tests: topics that record, a producer that flushes."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from schemas.config import KpimonConfig
from streams.core.dedup import MemorySeen
from streams.worker.pipeline import IngestPipeline, SourceConsumer, Tables
from streams.worker.settings import Settings


class Topic:
    """A topic that keeps what is sent to it."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send(self, **message: Any) -> None:
        self.sent.append(message)


class Producer:
    """A producer with nothing buffered, whose flush succeeds at once."""

    buffer = SimpleNamespace(size=0)

    async def flush(self) -> None:
        return None


async def nothing(*_: Any) -> Any:
    """A consumer callback with nothing to do (no rewind, no tails)."""
    return []


@dataclass
class MemoryState:
    """The tables and topics of a pipeline built by ``memory_pipeline``."""

    seen: MemorySeen = field(default_factory=MemorySeen)
    buckets: dict[str, Any] = field(default_factory=dict)
    progress: dict[str, Any] = field(default_factory=dict)
    entities: dict[str, Any] = field(default_factory=dict)
    deadletter: Topic = field(default_factory=Topic)
    rekeyed: Topic = field(default_factory=Topic)

    def reasons(self) -> list[bytes]:
        """The reason of every dead letter sent, in order."""
        return [dict(message["headers"])["kpimon-reason"] for message in self.deadletter.sent]


def memory_pipeline(
    settings: Settings,
    config: KpimonConfig,
    now: float,
    *,
    producer: Any = None,
    consumer: SourceConsumer | None = None,
) -> tuple[IngestPipeline, MemoryState]:
    """An ``IngestPipeline`` over tables in memory, its clock stopped at ``now``."""
    state = MemoryState()
    tables = Tables(
        state.seen,
        state.buckets,
        state.progress,
        state.seen,
        state.buckets,
        state.progress,
        state.entities,
        state.entities,
    )
    pipeline = IngestPipeline(
        settings,
        config,
        tables,
        deadletter=state.deadletter,  # type: ignore[arg-type]
        rekeyed=state.rekeyed,  # type: ignore[arg-type]
        producer=lambda: producer or Producer(),
        consumer=consumer or SourceConsumer(generation=lambda: 1, rewind=nothing, tails=nothing),
        clock=lambda: now,
    )
    return pipeline, state
