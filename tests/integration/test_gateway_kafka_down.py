"""Kafka down for real: a gateway on a broker of the test's own, stopped and started again during a load.

While the broker is down every request is answered 503 with Retry-After and /readyz is 503; once it
is back, every event of a request answered 2xx is on the topics, and no event id is there twice.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from tests.integration.gateway_support import (
    HUBSPOT_SECRET,
    SEGMENT_WRITE_KEY,
    GatewayProcess,
    hubspot_contact_batch,
    mappings_without_crm_reads,
    post_hubspot,
    post_segment,
    request,
    segment_email_batch,
)
from tests.integration.kafka_broker import KafkaBroker
from tests.integration.support import consume_to_end, run, wait_until

SENDERS = 4
PARTITIONS = 2


@dataclass(frozen=True)
class Answer:
    number: int
    status: int
    retry_after: str | None
    error: str | None


def _event_id(number: int) -> str:
    """The event id the request ``number`` becomes (the shipped mappings' templates)."""
    if number % 2 == 0:
        return f"hubspot-62515-{number}-{100_000 + number}-lead.created"
    return f"segment-down-{number}-email.opened"


class Senders:
    """``SENDERS`` threads posting requests one after the other, each request once (no retry): what was
    acknowledged is known exactly. Even numbers are signed HubSpot deliveries, odd ones Segment batches."""

    def __init__(self, gateway: GatewayProcess) -> None:
        self.gateway = gateway
        self.answers: list[Answer] = []
        self._stop = threading.Event()
        self._occurred = time.time() - 60
        self._pool = ThreadPoolExecutor(SENDERS)
        self._futures = [self._pool.submit(self._send, first) for first in range(SENDERS)]

    def answered(self, status: int) -> int:
        return sum(answer.status == status for answer in self.answers)

    def stop(self) -> None:
        self._stop.set()
        for future in self._futures:
            future.result()
        self._pool.shutdown()

    def _send(self, first: int) -> None:
        occurred_at = datetime.fromtimestamp(self._occurred, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        for number in range(first, 1_000_000, SENDERS):
            if self._stop.is_set():
                return
            if number % 2 == 0:
                body = hubspot_contact_batch(number, 1, int(self._occurred * 1000))
                status, headers, answer = post_hubspot(self.gateway, body)
            else:
                body = segment_email_batch("down", number, 1, occurred_at)
                status, headers, answer = post_segment(self.gateway, "/v1/batch", body)
            error = json.loads(answer).get("error") if status != 200 else None
            self.answers.append(Answer(number, status, headers.get("Retry-After"), error))
            time.sleep(0.05)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[KafkaBroker]:
    broker = KafkaBroker(tmp_path / "kafka")
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def gateway(broker: KafkaBroker, worker_env: dict[str, str], tmp_path: Path) -> Iterator[GatewayProcess]:
    env = {
        **worker_env,
        "KPIMON_BOOTSTRAP_SERVERS": broker.bootstrap,
        "KPIMON_PARTITIONS": str(PARTITIONS),
        "KPIMON_GATEWAY_MAPPINGS_DIR": str(mappings_without_crm_reads(tmp_path / "mappings")),
        "KPIMON_GATEWAY_HUBSPOT_CLIENT_SECRET": HUBSPOT_SECRET,
        "KPIMON_GATEWAY_SEGMENT_WRITE_KEYS": SEGMENT_WRITE_KEY,
        "KPIMON_GATEWAY_KAFKA_TIMEOUT_SECONDS": "3",
    }
    gateway = GatewayProcess(env, tmp_path / "gateway.log")
    gateway.start()
    yield gateway
    gateway.stop()


@pytest.mark.integration
def test_while_kafka_is_down_requests_get_503_and_every_acknowledged_event_is_on_the_topic_once(
    broker: KafkaBroker, gateway: GatewayProcess, worker_env: dict[str, str]
) -> None:
    def readyz() -> int:
        return request("GET", f"{gateway.url}/readyz")[0]

    senders = Senders(gateway)
    try:
        wait_until(lambda: senders.answered(200) >= 40, 60, "40 requests acknowledged with Kafka up")
        broker.stop()
        wait_until(lambda: readyz() == 503, 30, "/readyz 503 with Kafka down")
        down_from = len(senders.answers)
        wait_until(lambda: senders.answered(503) >= 40, 60, "40 requests refused with Kafka down")
        down_to = len(senders.answers)
        assert readyz() == 503
        broker.start()
        wait_until(lambda: readyz() == 200, 60, "/readyz 200 with Kafka back")
        back = senders.answered(200)
        wait_until(lambda: senders.answered(200) >= back + 40, 60, "40 more requests acknowledged with Kafka back")
    finally:
        senders.stop()
    answers = senders.answers

    while_down = answers[down_from:down_to]
    assert {(answer.status, answer.retry_after, answer.error) for answer in while_down} == {
        (503, "5", "kafka_unavailable")
    }
    assert {answer.status for answer in answers} == {200, 503}
    assert all(answer.retry_after == "5" for answer in answers if answer.status == 503)
    topics = [worker_env["KPIMON_CRM_TOPIC"], worker_env["KPIMON_MARKETING_TOPIC"]]
    values = run(consume_to_end(topics, PARTITIONS, bootstrap=broker.bootstrap))
    on_topics = Counter(orjson.loads(value)["event_id"] for value in values)  # type: ignore[attr-defined]
    acknowledged = {_event_id(answer.number) for answer in answers if answer.status == 200}
    refused = {_event_id(answer.number) for answer in answers if answer.status == 503}
    assert acknowledged - set(on_topics) == set()  # every acknowledged event is there
    assert max(on_topics.values()) == 1  # and once; so are the refused ones that reached Kafka after all
    assert set(on_topics) <= acknowledged | refused
    print(
        f"{len(acknowledged)} acknowledged, {len(refused)} refused with 503 ({len(refused & set(on_topics))} of "
        f"which reached Kafka later, once), {len(values)} events on the topics"
    )
