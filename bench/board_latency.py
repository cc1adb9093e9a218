#!/usr/bin/env python3
"""Board latency: from an event's production to its number changing on the board in a real browser.

One real ``kpimon worker`` on fresh topics, a real Prometheus scraping it every second
(deploy/prometheus/prometheus.demo.yml, as ``make demo`` runs it), ``kpimon board`` reading
that Prometheus, and a headless Chromium showing a team's activity screen. In the page, a
MutationObserver notes the time (``Date.now()``, the machine's clock) at which a rep's call
count changes. Each trial:

1. note the time, produce one ``call.logged`` for the rep and wait for the broker's ack;
2. wait until the page noted the count one higher: latency = page time - time before the send;
3. wait a random pause of up to a second, so that trials fall at every point of the scrape
   (1 s) and poll (0.25 s) cycles.

The path: the worker's batch and /metrics, the next scrape (every 1 s), the board's next
poll of the targets (every 0.25 s), its queries, the server-sent event, the page's render.
Prints p50/p90/p99/max and writes every figure to bench/results/board-latency-<UTC stamp>.json.

Run from the repository root: ``python bench/board_latency.py`` (or ``make bench-board``).
See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # `python bench/board_latency.py` puts only bench/ on the path

from bench.throughput import add_output_option, delete_topics, machine, write_results  # noqa: E402
from tests.integration.board_browser import CONFIG_FILE, BoardProcess, chromium, open_screen  # noqa: E402
from tests.integration.prometheus_server import Prometheus  # noqa: E402
from tests.integration.support import BOOTSTRAP, WorkerProcess, wait_until  # noqa: E402
from tests.integration.test_board import board_prometheus_config, call  # noqa: E402

TEAM, REP = "emea", "emea-anna"
# Notes (time, count) each time the rep's call count on the page changes.
OBSERVE_JS = """
window.kpimonBench = [];
const read = () => {
  const cell = document.querySelector('[data-key="REP:calls"]');
  const value = cell ? Number(cell.dataset.value) : null;
  const log = window.kpimonBench;
  if (value !== null && (log.length === 0 || log[log.length - 1][1] !== value)) log.push([Date.now() / 1000, value]);
};
new MutationObserver(read).observe(document.getElementById('screen'), {childList: true, subtree: true});
read();
""".replace("REP", REP)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def trials(driver: Any, topic: str, count: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
    await producer.start()
    latencies = []
    try:
        for n in range(count):
            seen = driver.execute_script("return window.kpimonBench.length ? window.kpimonBench.at(-1)[1] : 0")
            sent_at = time.time()
            event = call(sent_at, f"bench-board-{uuid.uuid4().hex}", REP)
            await producer.send_and_wait(topic, orjson.dumps(event), key=str(event["event_id"]).encode())
            deadline = time.monotonic() + 30
            while True:
                log = driver.execute_script("return window.kpimonBench")
                shown = [at for at, value in log if value == seen + 1]
                if shown:
                    latencies.append(shown[0] - sent_at)
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"trial {n}: the call did not show within 30 s")
                await asyncio.sleep(0.01)
            await asyncio.sleep(rng.uniform(0, 1))
    finally:
        await producer.stop()
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100, help="trials, one event each (default 100)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the pauses between trials")
    add_output_option(parser)
    args = parser.parse_args()

    run_id = uuid.uuid4().hex[:8]
    prefix = f"bench-board-{run_id}"
    env = {
        "KPIMON_APP_ID": prefix,
        "KPIMON_CRM_TOPIC": f"{prefix}.crm",
        "KPIMON_MARKETING_TOPIC": f"{prefix}.marketing",
        "KPIMON_DEADLETTER_TOPIC": f"{prefix}.deadletter",
        "KPIMON_PARTITIONS": "4",
        "KPIMON_CONFIG_FILE": str(CONFIG_FILE),
    }
    with tempfile.TemporaryDirectory(prefix="kpimon-board-bench-") as scratch:
        directory = Path(scratch)
        worker = WorkerProcess(env={**env, "KPIMON_DATA_DIR": str(directory / "data")}, log_path=directory / "w.log")
        worker.start()
        prometheus = Prometheus(directory, board_prometheus_config([worker.port]))
        board = BoardProcess(f"http://127.0.0.1:{prometheus.port}", directory / "board.log")
        driver = None
        try:
            wait_until(prometheus.ready, timeout=30, message="prometheus ready")
            board.start()
            driver = chromium()
            open_screen(driver, board.url(f"/board/{TEAM}", screen="activity"), "activity")
            driver.execute_script(OBSERVE_JS)
            latencies = asyncio.run(trials(driver, env["KPIMON_CRM_TOPIC"], args.events, args.seed))
        finally:
            if driver is not None:
                driver.quit()
            board.stop()
            prometheus.stop()
            worker.stop()
            asyncio.run(delete_topics([prefix]))
    figures = {
        "p50": statistics.median(latencies),
        "p90": percentile(latencies, 0.90),
        "p99": percentile(latencies, 0.99),
        "max": max(latencies),
        "min": min(latencies),
    }
    print(f"board latency over {len(latencies)} events (production -> shown in Chromium):")
    print("  " + "  ".join(f"{name} {seconds * 1000:.0f} ms" for name, seconds in figures.items()))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    result = {"machine": machine(), "events": len(latencies), "seconds": figures, "latencies": latencies}
    print(f"results: {write_results(args.output, stamp, result, name='board-latency')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
