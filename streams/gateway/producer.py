"""Kafka at the gateway's edge: an idempotent producer (acks=all) that returns once every message is acknowledged."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from streams.worker.kafka_access import KafkaSecurity, kafka_client_options

log = logging.getLogger(__name__)
START_RETRY_SECONDS = 2.0


class KafkaUnavailable(RuntimeError):
    """Kafka did not acknowledge every message in time: the request is answered 503 and the sender retries."""


@dataclass(frozen=True)
class Message:
    topic: str
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


class EventProducer:
    """Starts in the background (retrying while Kafka is down); ``ready`` once connected."""

    def __init__(self, bootstrap_servers: str, timeout_seconds: float, security: KafkaSecurity) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers,
            acks="all",
            enable_idempotence=True,
            linger_ms=2,
            request_timeout_ms=int(timeout_seconds * 1000),
            **kafka_client_options(security),  # SASL and TLS (KPIMON_KAFKA_*), as every kpimon client
        )
        self._timeout = timeout_seconds
        self._started = asyncio.Event()
        self._starter: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        return self._started.is_set()

    def start(self) -> None:
        self._starter = asyncio.create_task(self._start())

    async def _start(self) -> None:
        while True:
            try:
                await self._producer.start()
            except KafkaError as exc:
                log.warning("gateway: Kafka not reachable yet (%s); retrying in %.0f s", exc, START_RETRY_SECONDS)
                await asyncio.sleep(START_RETRY_SECONDS)
                continue
            self._started.set()
            log.info("gateway: connected to Kafka")
            return

    async def send_all(self, messages: Sequence[Message]) -> float:
        """Produce ``messages`` and wait for every acknowledgement; the seconds it took. Raises KafkaUnavailable."""
        if not self.ready:
            raise KafkaUnavailable("not connected to Kafka yet")
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
        except (KafkaError, TimeoutError) as exc:
            raise KafkaUnavailable(f"Kafka did not acknowledge: {exc!r}") from exc
        return time.monotonic() - started

    async def stop(self) -> None:
        if self._starter is not None and not self._starter.done():
            self._starter.cancel()
        if self.ready:
            await self._producer.stop()
