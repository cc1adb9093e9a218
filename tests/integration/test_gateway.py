"""``kpimon gateway`` against the real broker: signed HubSpot webhooks in, the expected contract events on Kafka."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from operator import itemgetter
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.gateway.testing import HubSpotApiStandIn
from tests.integration.gateway_support import (
    HUBSPOT_SECRET,
    HUBSPOT_TOKEN,
    GatewayProcess,
    load_samples,
    post_hubspot,
    request,
)
from tests.integration.support import (
    REPO,
    WorkerProcess,
    consume_all,
    consume_to_end,
    free_port,
    run,
    scrape,
    total,
    wait_until,
)

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
    with HubSpotApiStandIn(HUBSPOT_TOKEN) as api:
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


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}", "Content-Type": "application/json"}


@pytest.mark.integration
def test_segment_and_pipedrive_samples_reach_kafka_and_wrong_credentials_produce_nothing(
    make_gateway: Callable[..., GatewayProcess], worker_env: dict[str, str]
) -> None:
    gateway = make_gateway(
        KPIMON_GATEWAY_SEGMENT_WRITE_KEYS="wk-other, wk-test-1",
        KPIMON_GATEWAY_PIPEDRIVE_USER="kpimon",
        KPIMON_GATEWAY_PIPEDRIVE_PASSWORD="pd-test-pass",
    )
    gateway.start()
    segment, pipedrive = load_samples("segment"), load_samples("pipedrive")
    wrong = [
        ("segment", segment[0], _basic("wk-wrong", "")),
        ("segment", segment[0], {"Content-Type": "application/json"}),
        ("pipedrive", pipedrive[0], _basic("kpimon", "wrong-pass")),
        ("pipedrive", pipedrive[0], _basic("other", "pd-test-pass")),
    ]
    for _, sample, headers in wrong:
        status, _, answer = request("POST", gateway.url + sample["path"], json.dumps(sample["body"]).encode(), headers)
        assert status == 401 and json.loads(answer)["error"] == "bad_credentials"
    in_body = json.dumps({**segment[0]["body"], "writeKey": "wk-wrong"}).encode()
    status, _, _ = request("POST", gateway.url + segment[0]["path"], in_body, {"Content-Type": "application/json"})
    assert status == 401
    assert _events(worker_env["KPIMON_CRM_TOPIC"]) == _events(worker_env["KPIMON_MARKETING_TOPIC"]) == []
    signed_up = next(sample for sample in segment if sample["path"] == "/v1/track" and "lead" in sample["description"])
    in_body = json.dumps({**signed_up["body"], "writeKey": "wk-test-1"}).encode()
    status, _, _ = request("POST", gateway.url + "/v1/track", in_body, {"Content-Type": "application/json"})
    assert status == 200  # the write key in the body, as analytics.js sends it; sent again below: a duplicate
    for samples, headers in ((segment, _basic("wk-test-1", "")), (pipedrive, _basic("kpimon", "pd-test-pass"))):
        for sample in samples:
            body = json.dumps(sample["body"]).encode()
            status, _, answer = request("POST", gateway.url + sample["path"], body, headers)
            assert status == 200, answer
            if sample["path"].startswith("/v1/"):
                assert json.loads(answer) == {"success": True}
    huge = {"event": "Huge", "messageId": "m-huge", "properties": {"blob": "x" * 700_000}}
    status, _, _ = request("POST", f"{gateway.url}/v1/track", json.dumps(huge).encode(), _basic("wk-test-1", ""))
    assert status == 200  # unmappable: a dead letter, cut to what Kafka takes
    (letter,) = run(consume_all(worker_env["KPIMON_DEADLETTER_TOPIC"], 1))  # type: ignore[misc]
    raw = orjson.dumps({"type": "track", **huge})  # the record as the gateway keeps it
    assert dict(letter.headers)["kpimon-truncated-from-bytes"] == str(len(raw)).encode()
    assert letter.value == raw[: 512 * 1024]
    by_id = itemgetter("event_id")
    assert _events(worker_env["KPIMON_MARKETING_TOPIC"]) == sorted(
        [*signed_up["expect"], *(event for sample in segment for event in sample["expect"])], key=by_id
    )
    assert _events(worker_env["KPIMON_CRM_TOPIC"]) == sorted(
        (event for sample in pipedrive for event in sample["expect"]), key=by_id
    )


@pytest.mark.integration
def test_salesforce_outbound_messages_are_acknowledged_from_allowed_organizations_only(
    make_gateway: Callable[..., GatewayProcess], worker_env: dict[str, str]
) -> None:
    gateway = make_gateway(KPIMON_GATEWAY_SALESFORCE_ORGANIZATION_IDS="00D000000000099, 00D000000000062")
    gateway.start()
    samples = load_samples("salesforce")
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'}
    foreign = samples[0]["body"].replace("00D000000000062EAA", "00D000000000063EAA").encode()
    status, _, answer = request("POST", f"{gateway.url}/webhooks/salesforce", foreign, headers)
    assert status == 401 and json.loads(answer)["error"] == "unknown_organization"
    assert _events(worker_env["KPIMON_CRM_TOPIC"]) == []
    for sample in samples:
        for _ in range(2):  # Salesforce redelivers a message whose acknowledgement it missed: same notification ids
            status, headers_back, answer = request(
                "POST", f"{gateway.url}/webhooks/salesforce", sample["body"].encode(), headers
            )
            assert status == 200 and headers_back["Content-Type"].startswith("text/xml")
            assert b"<Ack>true</Ack>" in answer
    expected = sorted((event for sample in samples for event in sample["expect"]), key=itemgetter("event_id"))
    assert _events(worker_env["KPIMON_CRM_TOPIC"]) == sorted([*expected, *expected], key=itemgetter("event_id"))


@pytest.mark.integration
def test_stopping_finishes_the_requests_in_flight(
    make_gateway: Callable[..., GatewayProcess], worker_env: dict[str, str]
) -> None:
    won = next(
        sample for sample in load_samples("hubspot") if any(event["type"] == "deal.won" for event in sample["expect"])
    )
    with HubSpotApiStandIn(HUBSPOT_TOKEN) as api:
        gateway = make_gateway(KPIMON_GATEWAY_HUBSPOT_API_URL=api.url)
        gateway.start()
        api.serve(won)
        api.delay_seconds = 3.0  # the request waits on the CRM API while the gateway is told to stop
        with ThreadPoolExecutor(1) as pool:
            in_flight = pool.submit(post_hubspot, gateway, json.dumps(won["body"]).encode())
            wait_until(lambda: api.requests, 10, "the request reached the CRM API")
            assert gateway.process is not None
            gateway.process.terminate()
            status, _, answer = in_flight.result(timeout=30)
        assert status == 200, answer
        assert gateway.process.wait(timeout=30) == 0
    assert _events(worker_env["KPIMON_CRM_TOPIC"]) == won["expect"]
    assert "in-flight ones finish" in gateway.log_path.read_text()


@pytest.mark.integration
def test_a_salesforce_change_event_relay_with_basic_auth(
    make_gateway: Callable[..., GatewayProcess], worker_env: dict[str, str]
) -> None:
    gateway = make_gateway(
        KPIMON_GATEWAY_SALESFORCE_RELAY_USER="relay", KPIMON_GATEWAY_SALESFORCE_RELAY_PASSWORD="r-pass"
    )
    gateway.start()
    samples = load_samples("salesforce_relay")
    url = f"{gateway.url}/webhooks/salesforce-relay"
    status, _, _ = request("POST", url, json.dumps(samples[0]["body"]).encode(), _basic("relay", "wrong"))
    assert status == 401
    for sample in samples:
        status, _, answer = request("POST", url, json.dumps(sample["body"]).encode(), _basic("relay", "r-pass"))
        assert status == 200, answer
    expected = sorted((event for sample in samples for event in sample["expect"]), key=itemgetter("event_id"))
    assert _events(worker_env["KPIMON_CRM_TOPIC"]) == expected


@pytest.mark.integration
def test_kafka_down_answers_503_so_the_sender_retries(make_gateway: Callable[..., GatewayProcess]) -> None:
    gateway = make_gateway(KPIMON_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}")
    gateway.start(ready=False)
    assert request("GET", f"{gateway.url}/readyz")[0] == 503
    status, headers, answer = post_hubspot(gateway, b"[]")
    assert status == 503 and json.loads(answer)["error"] == "kafka_unavailable" and headers["Retry-After"] == "5"


def _at(sample: dict[str, Any], occurred_ms: int, attempt: int) -> bytes:
    """The sample's body with its events at ``occurred_ms`` and delivery attempt ``attempt`` (HubSpot's retries)."""
    return json.dumps(
        [{**event, "occurredAt": occurred_ms, "attemptNumber": attempt} for event in sample["body"]]
    ).encode()


@pytest.mark.integration
def test_a_hubspot_deal_won_moves_the_kpis_once_though_delivered_twice(
    make_gateway: Callable[..., GatewayProcess], make_worker: Callable[..., WorkerProcess]
) -> None:
    config = str(REPO / "deploy" / "examples" / "kpimon.yaml")
    worker = make_worker(KPIMON_CONFIG_FILE=config)
    worker.start()
    samples = load_samples("hubspot")
    created = next(sample for sample in samples if sample["body"][0]["subscriptionType"] == "deal.creation")
    won = next(sample for sample in samples if sample["expect"] and sample["expect"][0]["type"] == "deal.won")
    now_ms = int(time.time() * 1000)
    with HubSpotApiStandIn(HUBSPOT_TOKEN) as api:
        gateway = make_gateway(KPIMON_GATEWAY_HUBSPOT_API_URL=api.url)
        gateway.start()
        for sample, occurred_ms in ((created, now_ms - 120_000), (won, now_ms - 60_000)):
            api.serve(sample)
            for attempt in (0, 1):  # the second: HubSpot retrying a delivery whose answer it did not get
                status, _, answer = post_hubspot(gateway, _at(sample, occurred_ms, attempt))
                assert status == 200, answer

    def kpi(name: str, **labels: str) -> float:
        wanted = {"window": "24h", **labels}
        values = scrape(worker.port).get(name, {})
        return sum(value for key, value in values.items() if wanted.items() <= dict(key).items())

    wait_until(lambda: total(scrape(worker.port), "kpimon_events_duplicate_total") == 2, 90, "both retries seen")
    assert total(scrape(worker.port), "kpimon_events_total") == 2  # opportunity.created and deal.won, once each
    assert kpi("kpimon_deals_won", scope="all") == 1
    assert kpi("kpimon_deals_won", scope="rep", rep="emea-anna") == 1
    assert kpi("kpimon_revenue", scope="all") == 12500.5  # EUR, the reporting currency of the example config
    assert kpi("kpimon_opportunities_created", scope="all") == 1


@pytest.mark.integration
def test_metrics_want_the_workers_token_when_it_is_set(make_gateway: Callable[..., GatewayProcess]) -> None:
    gateway = make_gateway(KPIMON_WEB_AUTH_TOKEN="gateway-tok-5e1")
    gateway.start()
    status, headers, body = request("GET", f"{gateway.url}/metrics")
    assert (status, body, headers["WWW-Authenticate"]) == (401, b"401 Unauthorized\n", 'Bearer realm="kpimon"')
    status, _, body = request("GET", f"{gateway.url}/metrics", headers={"Authorization": "Bearer gateway-tok-5e1"})
    assert status == 200 and b"kpimon_gateway_requests" in body
    assert request("GET", f"{gateway.url}/healthz")[0] == request("GET", f"{gateway.url}/readyz")[0] == 200
    assert "gateway-tok-5e1" not in gateway.log_path.read_text()
