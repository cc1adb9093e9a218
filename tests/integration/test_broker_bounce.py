"""The broker goes away mid-stream and comes back: nothing is lost, counted twice or dead-lettered.

The test starts a Kafka broker (and a Redis) of its own with ``deploy/local/kpimon-local`` in a
state dir and on ports of its own, never the shared one. A worker counts calls while the broker
is stopped twice, once with SIGTERM and once with SIGKILL, each time for ``OUTAGE_SECONDS``; more
calls are produced after each restart. Afterwards every per-rep, per-team and overall count equals
the calls produced, no message is dead-lettered, and the worker process is the one started first.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from tests.integration.support import REPO, Labels, WorkerProcess, free_port, run, scrape, total, wait_until

OUTAGE_SECONDS = 30
CALLS_PER_ROUND = 2_000
ROUNDS = 3  # before the first outage, between them, after the second
REPS = {"ann": "emea", "bob": "emea", "cy": "amer"}
CONFIG = """\
teams:
  emea: {timezone: Europe/Berlin}
  amer: {timezone: America/New_York}
reps:
  ann: {team: emea}
  bob: {team: emea}
  cy: {team: amer}
"""


@dataclass
class OwnStack:
    """A broker and Redis started by ``kpimon-local`` in a state dir of this test only."""

    state_dir: Path
    kafka_port: int
    redis_port: int

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "KPIMON_STATE_DIR": str(self.state_dir),
            "KPIMON_KAFKA_PORT": str(self.kafka_port),
            "KPIMON_KAFKA_CONTROLLER_PORT": str(self.controller_port),
            "KPIMON_REDIS_PORT": str(self.redis_port),
        }

    controller_port: int = 0

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    def local(self, command: str) -> None:
        result = subprocess.run(
            [str(REPO / "deploy/local/kpimon-local"), command],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        assert result.returncode == 0, result.stdout + result.stderr

    def broker_pid(self) -> int:
        return int((self.state_dir / "kafka.pid").read_text().strip())

    def bounce(self, how: signal.Signals) -> None:
        """Stop the broker with ``how``, keep it down for ``OUTAGE_SECONDS``, start it again."""
        pid = self.broker_pid()
        os.kill(pid, how)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
        time.sleep(OUTAGE_SECONDS)
        self.local("up")


@pytest.fixture
def own_stack(tmp_path: Path) -> Iterator[OwnStack]:
    stack = OwnStack(tmp_path / "stack", free_port(), free_port(), controller_port=free_port())
    stack.local("up")
    try:
        yield stack
    finally:
        stack.local("down")


async def _produce(bootstrap: str, topic: str, first: int, count: int) -> Counter[str]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    per_rep: Counter[str] = Counter()
    now = time.time()
    try:
        for n in range(first, first + count):
            rep = list(REPS)[n % len(REPS)]
            per_rep[rep] += 1
            event = (
                f'{{"event_id":"call-{n}","type":"call.logged","source":"test","rep_id":"{rep}",'
                f'"occurred_at":"{datetime.fromtimestamp(now - 1800 + n * 0.1, UTC).isoformat()}",'
                '"duration_seconds":30,"outcome":"connected"}'
            )
            await producer.send(topic, event.encode(), key=f"call-{n}".encode())
        await producer.flush()
    finally:
        await producer.stop()
    return per_rep


def _calls(samples: Mapping[str, Mapping[Labels, float]], scope: str, label: str) -> dict[str, float]:
    return {
        dict(labels)[label]: value
        for labels, value in samples.get("kpimon_calls", {}).items()
        if dict(labels)["scope"] == scope and dict(labels)["window"] == "24h"
    }


def test_a_broker_stopped_and_restarted_mid_stream_loses_nothing_and_counts_nothing_twice(
    own_stack: OwnStack, worker_env: dict[str, str], tmp_path: Path
) -> None:
    config = tmp_path / "kpimon.yaml"
    config.write_text(CONFIG)
    env = {
        **worker_env,
        "KPIMON_BOOTSTRAP_SERVERS": own_stack.bootstrap,
        "KPIMON_REDIS_URL": f"redis://127.0.0.1:{own_stack.redis_port}/0",
        "KPIMON_CONFIG_FILE": str(config),
    }
    worker = WorkerProcess(env=env, log_path=tmp_path / "worker.log")
    worker.start()
    assert worker.process is not None
    produced: Counter[str] = Counter()
    try:
        for number, how in enumerate([signal.SIGTERM, signal.SIGKILL, None]):
            round_calls = _produce(
                own_stack.bootstrap, env["KPIMON_CRM_TOPIC"], number * CALLS_PER_ROUND, CALLS_PER_ROUND
            )
            produced += run(round_calls)  # type: ignore[operator]
            expected = sum(produced.values())
            if how is not None:  # mid-stream: the worker has counted part of this round
                wait_until(
                    lambda: total(scrape(worker.port), "kpimon_events_total") >= expected - CALLS_PER_ROUND // 2,  # noqa: B023
                    120,
                    "part of the round counted before the outage",
                    interval=0.05,
                )
                own_stack.bounce(how)
            wait_until(
                lambda: total(scrape(worker.port), "kpimon_events_total") >= expected,  # noqa: B023
                240,
                lambda: f"{expected} counted after the outage: {total(scrape(worker.port), 'kpimon_events_total')}",  # noqa: B023
            )
        time.sleep(3)  # anything counted twice would show by now
        samples = scrape(worker.port)
        assert worker.process.poll() is None, "the worker survived both outages"
    finally:
        worker.stop()

    assert total(samples, "kpimon_events_total") == ROUNDS * CALLS_PER_ROUND
    assert total(samples, "kpimon_events_rejected_total") == 0  # nothing dead-lettered for the outage
    assert _calls(samples, "all", "scope") == {"all": ROUNDS * CALLS_PER_ROUND}
    assert _calls(samples, "rep", "rep") == {rep: float(count) for rep, count in produced.items()}
    assert _calls(samples, "team", "team") == {"emea": produced["ann"] + produced["bob"], "amer": produced["cy"]}
    retries = samples.get("kpimon_ingest_retries_total", {})
    print(f"retried writes during the outages: {dict(retries)}")
