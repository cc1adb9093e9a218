"""Kafka at the gateway's edge: an idempotent producer (acks=all) that returns once every message is acknowledged."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, OutOfOrderSequenceNumber, ProducerFenced

from streams.worker.kafka_access import KafkaSecurity, kafka_client_options

log = logging.getLogger(__name__)
START_RETRY_SECONDS = 2.0
WATCH_SECONDS = 2.0  # how often a connected producer checks that Kafka still answers
# Errors after which aiokafka's idempotent producer sends nothing more (its sender task ends): it must be replaced.
# OutOfOrderSequenceNumber follows an outage in which batches that had their sequence numbers expired unsent.
FATAL_ERRORS = (OutOfOrderSequenceNumber, ProducerFenced)


class KafkaUnavailable(RuntimeError):
    """Kafka did not acknowledge every message in time: the request is answered 503 and the sender retries."""


@dataclass(frozen=True)
class Message:
    topic: str
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


class EventProducer:
    """Starts in the background (retrying while Kafka is down); ``ready`` while Kafka answers.

    Once connected, a watch asks Kafka for its metadata every ``WATCH_SECONDS``: while it does not
    answer (or a send was not acknowledged in time), the producer is not ready and ``send_all``
    refuses at once, so senders get their 503 without waiting for the timeout; it is ready again as
    soon as Kafka answers. Messages of a request that timed out stay with the producer, which
    delivers them (once: it is idempotent) when Kafka is back; unless the producer broke meanwhile
    (``FATAL_ERRORS``): then the watch replaces it with a new one (a new producer id), and what the
    old one still held is dropped; those requests were answered 503, and their senders retry.
    """

    def __init__(self, bootstrap_servers: str, timeout_seconds: float, security: KafkaSecurity) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._timeout = timeout_seconds
        self._security = security
        self._producer = self._new_producer()
        self._started = asyncio.Event()
        self._reachable = False
        self._broken = False
        self._watcher: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        return self._started.is_set() and self._reachable and not self._broken

    def start(self) -> None:
        self._watcher = asyncio.create_task(self._connect_and_watch())

    def _new_producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=self._bootstrap_servers,
            acks="all",
            enable_idempotence=True,
            linger_ms=2,
            request_timeout_ms=int(self._timeout * 1000),
            **kafka_client_options(self._security),  # SASL and TLS (KPIMON_KAFKA_*), as every kpimon client
        )

    async def _connect(self) -> None:
        while True:
            try:
                await self._producer.start()
            except KafkaError as exc:
                log.warning("gateway: Kafka not reachable yet (%s); retrying in %.0f s", exc, START_RETRY_SECONDS)
                await asyncio.sleep(START_RETRY_SECONDS)
                continue
            self._reachable = True
            return

    async def _connect_and_watch(self) -> None:
        await self._connect()
        self._started.set()
        log.info("gateway: connected to Kafka")
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            if self._broken:
                await self._replace()
                continue
            try:
                async with asyncio.timeout(self._timeout):
                    await self._producer.client.fetch_all_metadata()
            except (KafkaError, TimeoutError) as exc:
                self._mark(reachable=False, why=repr(exc))
            else:
                self._mark(reachable=True)

    async def _replace(self) -> None:
        broken, self._producer = self._producer, self._new_producer()
        with contextlib.suppress(Exception):  # it is broken: whatever it says on the way out changes nothing
            async with asyncio.timeout(self._timeout):
                await broken.stop()
        await self._connect()
        self._broken = False
        log.info("gateway: a new Kafka producer replaced the broken one; accepting requests")

    def _mark(self, reachable: bool, why: str = "") -> None:
        if reachable and not self._reachable:
            log.info("gateway: Kafka answers again; accepting requests")
        elif not reachable and self._reachable:
            log.warning("gateway: Kafka does not answer (%s); requests get 503 until it does", why)
        self._reachable = reachable

    async def send_all(self, messages: Sequence[Message]) -> float:
        """Produce ``messages`` and wait for every acknowledgement; the seconds it took. Raises KafkaUnavailable."""
        if not self._started.is_set():
            raise KafkaUnavailable("not connected to Kafka yet")
        if not self.ready:
            raise KafkaUnavailable("Kafka does not answer" if not self._reachable else "the producer is being replaced")
        started = time.monotonic()
        try:
            async with asyncio.timeout(self._timeout):
                deliveries = [
                    await self._producer.send(
                        message.topic, message.value, key=message.key, headers=list(message.headers)
                    )
                    for message in messages
                ]
                await asyncio.gather(*deliveries)
        except FATAL_ERRORS as exc:
            if not self._broken:
                log.warning("gateway: the Kafka producer broke (%r); replacing it", exc)
            self._broken = True
            raise KafkaUnavailable(f"Kafka did not acknowledge: {exc!r}") from exc
        except (KafkaError, TimeoutError) as exc:
            self._mark(reachable=False, why=repr(exc))
            raise KafkaUnavailable(f"Kafka did not acknowledge: {exc!r}") from exc
        return time.monotonic() - started

    async def stop(self) -> None:
        if self._watcher is not None and not self._watcher.done():
            self._watcher.cancel()
        if self._started.is_set():
            await self._producer.stop()
