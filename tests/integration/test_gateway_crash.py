"""No loss, no double count: the gateway SIGKILLed twice during a load of signed HubSpot batches sent until 2xx."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from tests.integration.gateway_support import HUBSPOT_SECRET, GatewayProcess, post_hubspot
from tests.integration.support import REPO, WorkerProcess, scrape, total, wait_until

REQUESTS = 1000
EVENTS_PER_REQUEST = 10  # 10,000 events: HubSpot batches up to 100
SENDERS = 8


def _batch(number: int, now_ms: int) -> bytes:
    return json.dumps(
        [
            {
                "eventId": number * EVENTS_PER_REQUEST + index,
                "subscriptionId": 2101,
                "portalId": 62515,
                "appId": 1160452,
                "occurredAt": now_ms - 60_000,
                "subscriptionType": "contact.creation",
                "attemptNumber": 0,
                "objectId": 100_000 + number * EVENTS_PER_REQUEST + index,
                "changeFlag": "CREATED",
                "changeSource": "CRM",
            }
            for index in range(EVENTS_PER_REQUEST)
        ]
    ).encode()


@pytest.mark.integration
def test_every_event_is_counted_once_though_the_gateway_is_killed_during_the_load(
    make_worker: Callable[..., WorkerProcess], worker_env: dict[str, str], tmp_path: Path
) -> None:
    worker = make_worker(KPIMON_CONFIG_FILE=str(REPO / "deploy" / "examples" / "kpimon.yaml"))
    worker.start()
    env = {
        **worker_env,
        "KPIMON_GATEWAY_MAPPINGS_DIR": str(tmp_path / "mappings"),
        "KPIMON_GATEWAY_HUBSPOT_CLIENT_SECRET": HUBSPOT_SECRET,
        "KPIMON_GATEWAY_RATE_PER_SECOND": "100000",
        "KPIMON_GATEWAY_RATE_BURST": "100000",
    }
    # the shipped mapping without its CRM API reads: contact creations need none
    mapping = yaml.safe_load((REPO / "deploy" / "gateway" / "mappings" / "hubspot.yaml").read_text())
    del mapping["fetch"]
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "hubspot.yaml").write_text(yaml.safe_dump(mapping))
    gateway = GatewayProcess(env, tmp_path / "gateway.log")
    gateway.start()
    now_ms = int(time.time() * 1000)
    accepted = 0
    attempts = 0
    lock = threading.Lock()

    def send(number: int) -> None:
        nonlocal accepted, attempts
        body = _batch(number, now_ms)
        while True:  # as HubSpot does: again until a 2xx
            status, _, _ = post_hubspot(gateway, body)
            with lock:
                attempts += 1
                if status == 200:
                    accepted += 1
                    return
            time.sleep(0.2)

    try:
        with ThreadPoolExecutor(SENDERS) as senders:
            futures = [senders.submit(send, number) for number in range(REQUESTS)]
            for kill_at in (REQUESTS // 4, REQUESTS * 2 // 3):
                wait_until(lambda: accepted >= kill_at, 300, f"{kill_at} requests accepted")  # noqa: B023
                gateway.kill()
                gateway.start()
            for future in futures:
                future.result()
    finally:
        gateway.stop()
    events = REQUESTS * EVENTS_PER_REQUEST

    def leads() -> float:  # the worker also counts the events it sends itself (contact.lead_updated)
        counted = scrape(worker.port).get("kpimon_events_total", {})
        return sum(value for labels, value in counted.items() if dict(labels).get("type") == "lead.created")

    wait_until(lambda: leads() >= events, 240, lambda: f"{leads()} of {events} leads counted")
    time.sleep(3)  # anything late would show now
    samples = scrape(worker.port)
    assert leads() == events
    assert attempts > REQUESTS  # the kills made senders retry
    assert total(samples, "kpimon_events_rejected_total") == 0
    overall = {labels: value for labels, value in samples["kpimon_leads"].items() if ("scope", "all") in labels}
    assert (
        overall[(("campaign", ""), ("channel", ""), ("rep", ""), ("scope", "all"), ("team", ""), ("window", "1h"))]
        == events
    )
