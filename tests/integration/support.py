"""Helpers for integration tests: a real worker process, a producer, a /metrics reader."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

BOOTSTRAP = os.environ.get("KPIMON_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
REPO = Path(__file__).resolve().parents[2]

Labels = tuple[tuple[str, str], ...]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class WorkerProcess:
    """``kpimon worker`` in its own process, killable like a real deployment."""

    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    tls: ssl.SSLContext | None = None  # the client side of KPIMON_WEB_TLS_*: the worker is up once "/" answers

    def start(self, timeout: float = 90.0) -> None:
        env = {**os.environ, **self.env, "KPIMON_WEB_PORT": str(self.port)}
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streams.tools.cli", "worker", "--loglevel", "info"],
            env=env,
            cwd=self.log_path.parent,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited with {self.process.returncode}; see {self.log_path}")
            try:
                self._probe()
                return
            except OSError:
                time.sleep(0.5)
        raise TimeoutError(f"worker did not serve /metrics within {timeout} s; see {self.log_path}")

    def _probe(self) -> None:
        if self.tls is None:
            scrape(self.port)
        else:
            urllib.request.urlopen(f"https://127.0.0.1:{self.port}/", timeout=10, context=self.tls).close()

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers, no final commit, no flush."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def scrape(port: int) -> dict[str, dict[Labels, float]]:
    """Every sample on /metrics: name -> sorted labels -> value."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    samples: dict[str, dict[Labels, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def total(samples: Mapping[str, Mapping[Labels, float]], name: str) -> float:
    return sum(samples.get(name, {}).values())


def wait_until(
    condition: Callable[[], object], timeout: float, message: str | Callable[[], str], interval: float = 0.5
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s: {message() if callable(message) else message}")


@dataclass(frozen=True)
class Message:
    topic: str
    value: bytes
    key: bytes | None


def event_message(topic: str, event: Mapping[str, object], key: str | None = None) -> Message:
    return Message(topic, orjson.dumps(event), (key or str(event["event_id"])).encode())


async def produce(messages: Iterable[Message]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
    await producer.start()
    try:
        for message in messages:
            await producer.send(message.topic, message.value, key=message.key)
        await producer.flush()
    finally:
        await producer.stop()


async def consume_all(topic: str, expected: int, timeout: float = 30.0) -> list[object]:
    """Read ``topic`` from the start until ``expected`` records arrived (or the timeout)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=BOOTSTRAP, auto_offset_reset="earliest")
    await consumer.start()
    records: list[object] = []
    try:
        deadline = time.monotonic() + timeout
        while len(records) < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for partition_records in batch.values():
                records.extend(partition_records)
    finally:
        await consumer.stop()
    return records


async def consume_to_end(
    topics: Iterable[str], partitions: int, timeout: float = 60.0, bootstrap: str = BOOTSTRAP
) -> list[bytes]:
    """Every message value of ``topics`` (of ``partitions`` each), from the start up to their end offsets now."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    values: list[bytes] = []
    try:
        every = [TopicPartition(topic, partition) for topic in topics for partition in range(partitions)]
        ends = await consumer.end_offsets(every)
        remaining = {tp: end for tp, end in ends.items() if end > 0}
        consumer.assign(list(remaining))
        for tp in remaining:
            consumer.seek(tp, 0)
        deadline = time.monotonic() + timeout
        while remaining and time.monotonic() < deadline:
            for tp, records in (await consumer.getmany(*remaining, timeout_ms=500)).items():
                values.extend(record.value or b"" for record in records if record.offset < ends[tp])
            for tp in list(remaining):
                if await consumer.position(tp) >= remaining[tp]:
                    del remaining[tp]
        if remaining:
            raise TimeoutError(f"{sorted(map(str, remaining))} not read to the end within {timeout} s")
    finally:
        await consumer.stop()
    return values


def run(coroutine: object) -> object:
    return asyncio.run(coroutine)  # type: ignore[arg-type]


def kill_after_each(worker: WorkerProcess, counts: Iterable[int], timeout: float) -> None:
    """Start the worker and SIGKILL it once it has counted each number of events in turn."""
    for kill_after in counts:
        worker.start()
        wait_until(
            lambda: total(scrape(worker.port), "kpimon_events_total") >= kill_after,  # noqa: B023
            timeout=timeout,
            message=f"{kill_after} events processed before the kill",
            interval=0.05,
        )
        worker.kill()
