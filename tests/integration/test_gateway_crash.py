"""No loss, no double count: the gateway SIGKILLed twice during a load of 10,000 webhook requests sent until 2xx."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.integration.gateway_support import (
    HUBSPOT_SECRET,
    SEGMENT_WRITE_KEY,
    GatewayProcess,
    hubspot_contact_batch,
    mappings_without_crm_reads,
    post_hubspot,
    post_segment,
    segment_email_batch,
)
from tests.integration.support import REPO, WorkerProcess, scrape, total, wait_until

REQUESTS = 10_000  # one event each: even numbers a signed HubSpot delivery, odd ones a Segment track
SENDERS = 16
KILLS_AT = (REQUESTS // 4, REQUESTS * 2 // 3)  # requests acknowledged before each SIGKILL
COUNTED = ("lead.created", "email.opened")  # what the requests become (the worker sends other types itself)


@pytest.mark.integration
def test_every_event_is_counted_once_though_the_gateway_is_killed_during_the_load(
    make_worker: Callable[..., WorkerProcess], worker_env: dict[str, str], tmp_path: Path
) -> None:
    worker = make_worker(KPIMON_CONFIG_FILE=str(REPO / "deploy" / "examples" / "kpimon.yaml"))
    worker.start()
    env = {
        **worker_env,
        "KPIMON_GATEWAY_MAPPINGS_DIR": str(mappings_without_crm_reads(tmp_path / "mappings")),
        "KPIMON_GATEWAY_HUBSPOT_CLIENT_SECRET": HUBSPOT_SECRET,
        "KPIMON_GATEWAY_SEGMENT_WRITE_KEYS": SEGMENT_WRITE_KEY,
        "KPIMON_GATEWAY_RATE_PER_SECOND": "100000",
        "KPIMON_GATEWAY_RATE_BURST": "100000",
    }
    gateway = GatewayProcess(env, tmp_path / "gateway.log")
    gateway.start()
    occurred = time.time() - 60
    occurred_at = datetime.fromtimestamp(occurred, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    accepted = 0
    attempts = 0
    lock = threading.Lock()

    def send(number: int) -> None:
        nonlocal accepted, attempts
        while True:  # as HubSpot and Segment's libraries do: again until a 2xx
            if number % 2 == 0:  # signed at each attempt, as HubSpot does
                status, _, _ = post_hubspot(gateway, hubspot_contact_batch(number, 1, int(occurred * 1000)))
            else:
                status, _, _ = post_segment(gateway, "/v1/batch", segment_email_batch("crash", number, 1, occurred_at))
            with lock:
                attempts += 1
                if status == 200:
                    accepted += 1
                    return
            time.sleep(0.2)

    started = time.monotonic()
    try:
        with ThreadPoolExecutor(SENDERS) as senders:
            futures = [senders.submit(send, number) for number in range(REQUESTS)]
            for kill_at in KILLS_AT:
                wait_until(lambda: accepted >= kill_at, 600, f"{kill_at} requests accepted")  # noqa: B023
                gateway.kill()
                gateway.start()
            for future in futures:
                future.result()
    finally:
        gateway.stop()
    sent_in = time.monotonic() - started

    def counted(kind: str) -> float:
        samples = scrape(worker.port).get("kpimon_events_total", {})
        return sum(value for labels, value in samples.items() if dict(labels).get("type") == kind)

    wait_until(
        lambda: sum(map(counted, COUNTED)) >= REQUESTS,
        300,
        lambda: f"{sum(map(counted, COUNTED))} of {REQUESTS} events counted",
    )
    time.sleep(3)  # anything late would show now
    by_type = {kind: counted(kind) for kind in COUNTED}
    print(f"{REQUESTS} requests acknowledged in {sent_in:.0f} s after {attempts} attempts; counted {by_type}")
    assert by_type == {"lead.created": REQUESTS / 2, "email.opened": REQUESTS / 2}
    samples = scrape(worker.port)
    assert attempts > REQUESTS  # the kills made senders retry
    assert total(samples, "kpimon_events_rejected_total") == 0
    overall = {labels: value for labels, value in samples["kpimon_leads"].items() if ("scope", "all") in labels}
    assert (
        overall[(("campaign", ""), ("channel", ""), ("rep", ""), ("scope", "all"), ("team", ""), ("window", "1h"))]
        == REQUESTS / 2
    )
