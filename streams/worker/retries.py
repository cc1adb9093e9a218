"""Failures at the ingest's edges (Kafka, the local store, the OS): retried with a capped backoff.

A batch's writes are computed first, by pure code (``streams.ingest.batch``); only an error
there can come from a message, and the pipeline isolates and dead-letters that message. An
error while the writes are sent, flushed or checkpointed says nothing about any message: the
same writes are sent again after 0.5 s, 1 s, 2 s ... at most ``MAX_DELAY_SECONDS`` apart, for as
long as the batch's partitions are still the worker's. Sending a write twice is harmless: a
changelog record is the key's whole value, a re-keyed or internal event sent twice is a duplicate
by its event id, and a dead letter sent twice is one more copy of the same dead letter.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiokafka.errors import KafkaError

log = logging.getLogger(__name__)

TRANSIENT_ERRORS: tuple[type[Exception], ...] = (KafkaError, OSError, TimeoutError)  # ConnectionError is an OSError
FIRST_DELAY_SECONDS = 0.5
MAX_DELAY_SECONDS = 30.0


class BatchAbandoned(RuntimeError):
    """The batch's partitions were taken away (a rebalance, a stop) while its writes were being retried."""


@dataclass
class EdgeRetries:
    """Runs a batch's writes until they succeed; counts each failed attempt by error (kpimon_ingest_retries_total)."""

    still_ours: Callable[[], bool]  # False once a rebalance or a stop took the batch's partitions away
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    counts: Counter[str] = field(default_factory=Counter)

    async def run(self, what: str, attempt: Callable[[], Awaitable[None]]) -> None:
        delay = FIRST_DELAY_SECONDS
        while True:
            try:
                await attempt()
                return
            except Exception as exc:
                self.counts[type(exc).__name__] += 1
                if not self.still_ours():
                    raise BatchAbandoned(f"{what}: the partitions were reassigned while retrying") from exc
                if isinstance(exc, TRANSIENT_ERRORS):
                    log.warning(
                        "%s failed (%s: %s); retrying in %.1f s. No message is dead-lettered for it: "
                        "check that Kafka is reachable and the data dir's disk has room",
                        what,
                        type(exc).__name__,
                        exc,
                        delay,
                    )
                else:
                    log.error(
                        "%s failed with an unexpected %s; retrying in %.1f s. If this repeats, it is a kpimon bug: "
                        "please report it with this traceback",
                        what,
                        type(exc).__name__,
                        delay,
                        exc_info=exc,
                    )
                await self.sleep(delay)
                delay = min(delay * 2, MAX_DELAY_SECONDS)
