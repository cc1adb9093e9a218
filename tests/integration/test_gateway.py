"""``kpimon gateway`` against the real broker: signed HubSpot webhooks in, the expected contract events on Kafka."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.integration.gateway_support import (
    HUBSPOT_SECRET,
    HUBSPOT_TOKEN,
    GatewayProcess,
    hubspot_crm_api,
    load_samples,
    post_hubspot,
    request,
)
from tests.integration.support import REPO, consume_to_end, free_port, run, scrape, total

PARTITIONS = 4


@pytest.fixture
def make_gateway(tmp_path: Path, worker_env: dict[str, str]) -> Iterator[Callable[..., GatewayProcess]]:
    gateways: list[GatewayProcess] = []

    def make(**extra_env: str) -> GatewayProcess:
        env = {
            **worker_env,
            "KPIMON_CONFIG_FILE": str(REPO / "deploy" / "examples" / "kpimon.yaml"),
            "KPIMON_GATEWAY_MAPPINGS_DIR": str(REPO / "deploy" / "gateway" / "mappings"),
            "KPIMON_GATEWAY_HUBSPOT_CLIENT_SECRET": HUBSPOT_SECRET,
            "KPIMON_GATEWAY_HUBSPOT_ACCESS_TOKEN": HUBSPOT_TOKEN,
            **extra_env,
        }
        gateway = GatewayProcess(env, tmp_path / f"gateway-{len(gateways)}.log")
        gateways.append(gateway)
        return gateway

    yield make
    for gateway in gateways:
        gateway.stop()


def _events(topic: str) -> list[dict[str, Any]]:
    values = run(consume_to_end([topic], PARTITIONS))
    return sorted((orjson.loads(value) for value in values), key=lambda event: event["event_id"])  # type: ignore[attr-defined]


@pytest.mark.integration
def test_every_hubspot_sample_reaches_kafka_as_its_expected_events(
    make_gateway: Callable[..., GatewayProcess], worker_env: dict[str, str], tmp_path: Path
) -> None:
    samples = load_samples("hubspot")
    with hubspot_crm_api() as api:
        gateway = make_gateway(KPIMON_GATEWAY_HUBSPOT_API_URL=api.url)
        gateway.start()
        for sample in samples:
            api.serve(sample)
            status, _, answer = post_hubspot(gateway, json.dumps(sample["body"]).encode())
            assert status == 200, (sample["description"], answer)
    expected = sorted((event for sample in samples for event in sample["expect"]), key=lambda event: event["event_id"])
    assert _events(worker_env["KPIMON_CRM_TOPIC"]) == expected
    letters = run(consume_to_end([worker_env["KPIMON_DEADLETTER_TOPIC"]], PARTITIONS))
    unmappable = next(sample for sample in samples if sample.get("expect_dead_letters"))
    assert sorted(orjson.loads(value)["eventId"] for value in letters) == sorted(  # type: ignore[attr-defined]
        event["eventId"] for event in unmappable["body"]
    )
    metrics = scrape(gateway.port)
    assert total(metrics, "kpimon_gateway_events_produced_total") == len(expected)
    assert metrics["kpimon_gateway_dead_letters_total"] == {
        (("reason", "missing_field"), ("source", "hubspot")): 1.0,
        (("reason", "unmappable"), ("source", "hubspot")): 1.0,
    }
    assert metrics["kpimon_gateway_requests_total"] == {(("code", "200"), ("source", "hubspot")): len(samples)}
    assert HUBSPOT_SECRET not in gateway.log_path.read_text() and HUBSPOT_TOKEN not in gateway.log_path.read_text()


@pytest.mark.integration
def test_refused_requests_produce_nothing(
    make_gateway: Callable[..., GatewayProcess], worker_env: dict[str, str]
) -> None:
    gateway = make_gateway(
        KPIMON_GATEWAY_MAX_BODY_BYTES="2048", KPIMON_GATEWAY_RATE_PER_SECOND="0.05", KPIMON_GATEWAY_RATE_BURST="5"
    )
    gateway.start()
    body = json.dumps(load_samples("hubspot")[0]["body"]).encode()
    url = f"{gateway.url}/webhooks/hubspot"
    stale_ms = int((time.time() - 301) * 1000)
    refusals = [
        (post_hubspot(gateway, body, secret="not-the-secret"), 401, "bad_signature"),
        (post_hubspot(gateway, body, at_ms=stale_ms), 401, "stale_timestamp"),
        (request("POST", url, body, {"Content-Type": "application/json"}), 401, "missing_signature"),
        (post_hubspot(gateway, b"[" + b" " * 4096 + b"]"), 413, "too_large"),
        (post_hubspot(gateway, b"[]"), 200, None),  # the fifth request of the burst: accepted, nothing in it
        (post_hubspot(gateway, body), 429, "rate_limited"),
    ]
    for (status, _, answer), expected_status, reason in refusals:
        assert status == expected_status, answer
        if reason is not None:
            assert json.loads(answer)["error"] == reason
    assert int(refusals[-1][0][1]["Retry-After"]) == 20  # one token at 0.05 a second
    assert _events(worker_env["KPIMON_CRM_TOPIC"]) == []
    assert run(consume_to_end([worker_env["KPIMON_DEADLETTER_TOPIC"]], PARTITIONS)) == []
    rejected = scrape(gateway.port)["kpimon_gateway_rejected_requests_total"]
    assert {dict(labels)["reason"]: value for labels, value in rejected.items()} == {
        "bad_signature": 1.0,
        "stale_timestamp": 1.0,
        "missing_signature": 1.0,
        "too_large": 1.0,
        "rate_limited": 1.0,
    }


@pytest.mark.integration
def test_kafka_down_answers_503_so_the_sender_retries(make_gateway: Callable[..., GatewayProcess]) -> None:
    gateway = make_gateway(KPIMON_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}")
    gateway.start(ready=False)
    assert request("GET", f"{gateway.url}/readyz")[0] == 503
    status, headers, answer = post_hubspot(gateway, b"[]")
    assert status == 503 and json.loads(answer)["error"] == "kafka_unavailable" and headers["Retry-After"] == "5"
