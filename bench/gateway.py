#!/usr/bin/env python3
"""Webhook requests and events per second through ``kpimon gateway``, against a bare aiohttp handler, in one run.

1. Start a bare aiohttp server whose handler reads the body and answers 200 (bench/gateway_bare.py),
   and a real ``kpimon gateway`` producing to fresh topics of the local Kafka (``bench-gateway-<run id>.*``)
   with HubSpot (signature v3) and Segment (write key) served.
2. Two phases, the bare handler first, then the gateway: ``--senders`` concurrent senders post for
   ``--seconds`` (the first ``--warmup-seconds`` not counted), half of them HubSpot deliveries of
   ``--batch`` contact creations signed v3 at the time of sending, half Segment ``/v1/batch`` calls of
   ``--batch`` ``Email Opened`` tracks; every event has an id of its own. Same client, same bodies.
3. Figures: requests and events per second answered 2xx, the latency of a request (sent to answer read)
   p50, p99 and max, the server process's CPU, the machine's load average; the gateway's ratio to the
   bare handler of the same run is the figure that counts on a shared machine.
4. Check: every event of a 2xx answer is on the topics, read back to the end, each id once.

Run from the repository root: ``python bench/gateway.py`` (or ``make bench-gateway``). See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # `python bench/gateway.py` puts only bench/ on the path

from bench.latency import percentile  # noqa: E402
from bench.throughput import (  # noqa: E402
    CONFIG_FILE,
    add_output_option,
    cpu_seconds,
    delete_topics,
    fetch_metrics,
    machine,
    metric_sum,
    write_results,
)
from streams.gateway.signatures import hubspot_v3_signature  # noqa: E402
from streams.gateway.testing import wait_until_ready  # noqa: E402
from tests.integration.gateway_support import (  # noqa: E402
    GatewayProcess,
    hubspot_contact_batch,
    mappings_without_crm_reads,
    segment_email_batch,
)
from tests.integration.support import BOOTSTRAP, consume_to_end, free_port  # noqa: E402

SECRET = "bench-hubspot-secret"
WRITE_KEY = "bench-write-key"
KINDS = ("hubspot", "segment")  # sender i sends KINDS[i % 2]
PATHS = {"hubspot": "/webhooks/hubspot", "segment": "/v1/batch"}


@dataclass
class Phase:
    """What one phase's senders saw: every counted request's latency, the answers' statuses."""

    name: str
    latencies: list[float] = field(default_factory=list)  # seconds, requests after the warm-up only
    statuses: Counter[int] = field(default_factory=Counter)  # after the warm-up; 0: no answer
    events_ok: int = 0  # in 2xx answers after the warm-up
    events_acknowledged: int = 0  # in every 2xx answer, warm-up included (what must be on Kafka)
    seconds: float = 0.0  # the counted span
    server_cpu_seconds: float = 0.0

    def figures(self) -> dict[str, Any]:
        ok = sum(count for status, count in self.statuses.items() if 200 <= status < 300)
        return {
            "requests_ok": ok,
            "statuses": {str(status): count for status, count in sorted(self.statuses.items())},
            "events_ok": self.events_ok,
            "events_acknowledged": self.events_acknowledged,
            "seconds": self.seconds,
            "requests_per_second": ok / self.seconds,
            "events_per_second": self.events_ok / self.seconds,
            "latency_ms": {
                "p50": 1000 * percentile(self.latencies, 0.50),
                "p99": 1000 * percentile(self.latencies, 0.99),
                "max": 1000 * max(self.latencies),
            },
            "server_cpu_seconds": self.server_cpu_seconds,
            "server_cpu_share": self.server_cpu_seconds / self.seconds,
        }


@dataclass(frozen=True)
class Load:
    senders: int
    batch: int
    seconds: float
    warmup_seconds: float
    run_id: str


def request_for(kind: str, url: str, number: int, load: Load) -> tuple[bytes, dict[str, str]]:
    """The ``number``-th request's body and headers: ``load.batch`` events with ids of their own."""
    first = number * load.batch
    if kind == "hubspot":
        body = hubspot_contact_batch(first, load.batch, int(time.time() * 1000) - 60_000)
        timestamp = str(int(time.time() * 1000))
        return body, {
            "Content-Type": "application/json",
            "X-HubSpot-Signature-v3": hubspot_v3_signature(SECRET, "POST", url, body, timestamp),
            "X-HubSpot-Request-Timestamp": timestamp,
        }
    sent_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    authorization = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    body = segment_email_batch(f"bench-{load.run_id}", first, load.batch, sent_at)
    return body, {"Content-Type": "application/json", "Authorization": authorization}


async def send_for(
    session: aiohttp.ClientSession, base_url: str, kind: str, load: Load, numbers: itertools.count[int], phase: Phase
) -> None:
    """Post one request after the other until the phase ends; note each answer."""
    started = time.monotonic()
    counted_from, end = started + load.warmup_seconds, started + load.warmup_seconds + load.seconds
    url = base_url + PATHS[kind]
    while (sent := time.monotonic()) < end:
        body, headers = request_for(kind, url, next(numbers), load)
        try:
            async with session.post(url, data=body, headers=headers) as answer:
                await answer.read()
                status = answer.status
        except aiohttp.ClientError:
            status = 0
        answered = time.monotonic()
        if 200 <= status < 300:
            phase.events_acknowledged += load.batch
        if sent >= counted_from and answered <= end:
            phase.latencies.append(answered - sent)
            phase.statuses[status] += 1
            phase.events_ok += load.batch if 200 <= status < 300 else 0


async def run_phase(name: str, base_url: str, server_pid: int, load: Load) -> Phase:
    phase = Phase(name)
    numbers = itertools.count()
    connector = aiohttp.TCPConnector(limit=load.senders)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        senders = [
            asyncio.create_task(send_for(session, base_url, KINDS[index % 2], load, numbers, phase))
            for index in range(load.senders)
        ]
        await asyncio.sleep(load.warmup_seconds)
        cpu_before = cpu_seconds(server_pid)
        await asyncio.sleep(load.seconds)
        phase.server_cpu_seconds = cpu_seconds(server_pid) - cpu_before
        await asyncio.gather(*senders)
    phase.seconds = load.seconds
    return phase


def start_bare(port: int, log_path: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, str(REPO / "bench" / "gateway_bare.py"), "--port", str(port)],
        stdout=log_path.open("ab"),
        stderr=subprocess.STDOUT,
    )
    if not wait_until_ready(f"http://127.0.0.1:{port}", 30):
        process.kill()
        raise RuntimeError(f"the bare aiohttp server did not start; see {log_path}")
    return process


def gateway_env(prefix: str, partitions: int, scratch: Path) -> dict[str, str]:
    """A gateway on the run's topics; no rate limit in the way; HubSpot without CRM API reads."""
    return {
        "KPIMON_BOOTSTRAP_SERVERS": BOOTSTRAP,
        "KPIMON_CONFIG_FILE": str(REPO / CONFIG_FILE),
        "KPIMON_CRM_TOPIC": f"{prefix}.crm",
        "KPIMON_MARKETING_TOPIC": f"{prefix}.marketing",
        "KPIMON_DEADLETTER_TOPIC": f"{prefix}.deadletter",
        "KPIMON_PARTITIONS": str(partitions),
        "KPIMON_GATEWAY_MAPPINGS_DIR": str(mappings_without_crm_reads(scratch / "mappings")),
        "KPIMON_GATEWAY_HUBSPOT_CLIENT_SECRET": SECRET,
        "KPIMON_GATEWAY_SEGMENT_WRITE_KEYS": WRITE_KEY,
        "KPIMON_GATEWAY_RATE_PER_SECOND": "1000000",
        "KPIMON_GATEWAY_RATE_BURST": "1000000",
    }


async def on_the_topics(prefix: str, partitions: int) -> dict[str, int]:
    """Events and distinct event ids on the run's crm and marketing topics, and the dead letters."""
    values = await consume_to_end([f"{prefix}.crm", f"{prefix}.marketing"], partitions, timeout=300)
    dead = await consume_to_end([f"{prefix}.deadletter"], 1, timeout=60)
    ids = {orjson.loads(value)["event_id"] for value in values}
    return {"events": len(values), "distinct_ids": len(ids), "dead_letters": len(dead)}


async def measure(args: argparse.Namespace, load: Load, prefix: str, scratch: Path) -> dict[str, Any]:
    bare_port = free_port()
    bare = start_bare(bare_port, scratch / "bare.log")
    try:
        print(f"phase 1: the bare aiohttp handler (pid {bare.pid}), {load.senders} senders", flush=True)
        bare_phase = await run_phase("bare", f"http://127.0.0.1:{bare_port}", bare.pid, load)
    finally:
        bare.terminate()
        bare.wait()
    gateway = GatewayProcess(gateway_env(prefix, args.partitions, scratch), scratch / "gateway.log")
    gateway.start()
    try:
        assert gateway.process is not None
        print(f"phase 2: kpimon gateway (pid {gateway.process.pid}), {load.senders} senders", flush=True)
        gateway_phase = await run_phase("gateway", gateway.url, gateway.process.pid, load)
        metrics = fetch_metrics(gateway.port)
    finally:
        gateway.stop()
    print("reading the topics back", flush=True)
    topics = await on_the_topics(prefix, args.partitions)
    kafka_requests = metric_sum(metrics, "kpimon_gateway_kafka_seconds_count")
    return {
        "bare": bare_phase.figures(),
        "gateway": gateway_phase.figures(),
        "gateway_events_produced": metric_sum(metrics, "kpimon_gateway_events_produced_total"),
        "gateway_kafka_mean_ms": 1000 * metric_sum(metrics, "kpimon_gateway_kafka_seconds_sum") / kafka_requests,
        "on_the_topics": topics,
    }


ROWS = {"bare": "bare aiohttp handler (answers 200)", "gateway": "kpimon gateway (acks=all)"}


def report(result: dict[str, Any]) -> str:
    m, bare, gateway, topics = result["machine"], result["bare"], result["gateway"], result["on_the_topics"]
    load = {when: " ".join(f"{v:.2f}" for v in result[f"load_average_{when}"]) for when in ("start", "end")}
    lines = [
        f"kpimon gateway: {result['senders']} senders (half HubSpot v3-signed, half Segment /v1/batch), "
        f"{result['batch']} events a request, {result['seconds']:.0f} s a phase, run {result['run_id']}",
        f"machine: {m['nproc']} CPUs ({m['cpu_model']}), Python {m['python']}, Kafka {m['kafka']}; "
        f"load average {load['start']} at start, {load['end']} at end",
        "",
        f"| {'phase':<36} | requests/s | events/s | p50 ms | p99 ms | max ms | non-2xx | server CPU |",
        f"|{'-' * 38}|{'-' * 11}:|{'-' * 9}:|{'-' * 7}:|{'-' * 7}:|{'-' * 7}:|{'-' * 8}:|{'-' * 11}:|",
    ]
    for key, name in ROWS.items():
        p = result[key]
        lat = p["latency_ms"]
        failed = sum(count for status, count in p["statuses"].items() if not status.startswith("2"))
        lines.append(
            f"| {name:<36} | {p['requests_per_second']:>10,.0f} | {p['events_per_second']:>8,.0f} | "
            f"{lat['p50']:>6,.1f} | {lat['p99']:>6,.1f} | {lat['max']:>6,.0f} | {failed:>7,} | "
            f"{p['server_cpu_share']:>10.0%} |"
        )
    share = gateway["requests_per_second"] / bare["requests_per_second"]
    lines += [
        "",
        f"gateway = {share:.1%} of the bare handler's requests per second (1 : {1 / share:.1f}); "
        f"p99 {gateway['latency_ms']['p99'] / bare['latency_ms']['p99']:.1f} x the bare handler's",
        f"Kafka acknowledgement of a request's events (the gateway's histogram): mean "
        f"{result['gateway_kafka_mean_ms']:.1f} ms",
        f"on the topics: {topics['events']:,} events, {topics['distinct_ids']:,} distinct ids, "
        f"{topics['dead_letters']} dead letters; acknowledged 2xx: {gateway['events_acknowledged']:,} events",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Needs the local Kafka broker (deploy/local/kpimon-local up). Details: docs/benchmarks.md.",
    )
    parser.add_argument("--senders", type=int, default=16, help="concurrent senders (default 16)")
    parser.add_argument("--batch", type=int, default=10, help="events a request, 1 to 100 (default 10)")
    parser.add_argument("--seconds", type=float, default=25.0, help="counted seconds a phase (default 25)")
    parser.add_argument("--warmup-seconds", type=float, default=3.0, help="seconds not counted first (3)")
    parser.add_argument("--partitions", type=int, default=6, help="partitions of the bench topics (default 6)")
    add_output_option(parser)
    args = parser.parse_args(argv)
    if args.senders < 2 or not 1 <= args.batch <= 100 or args.seconds <= 0 or args.warmup_seconds < 0:
        parser.error("--senders must be >= 2, --batch 1 to 100, --seconds > 0, --warmup-seconds >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run_id, started = uuid.uuid4().hex[:8], datetime.now(UTC)
    prefix = f"bench-gateway-{run_id}"
    load = Load(args.senders, args.batch, args.seconds, args.warmup_seconds, run_id)
    load_at_start = os.getloadavg()
    try:
        with tempfile.TemporaryDirectory(prefix="kpimon-bench-gateway-") as scratch:
            measured = asyncio.run(measure(args, load, prefix, Path(scratch)))
    finally:
        asyncio.run(delete_topics([prefix]))
    result = {
        "benchmark": "gateway",
        "run_id": run_id,
        "started": started.isoformat(),
        "machine": machine(),
        "load_average_start": load_at_start,
        "load_average_end": os.getloadavg(),
        "senders": args.senders,
        "batch": args.batch,
        "seconds": args.seconds,
        "warmup_seconds": args.warmup_seconds,
        "partitions": args.partitions,
        **measured,
    }
    print(report(result))
    path = write_results(args.output, started.strftime("%Y%m%dT%H%M%SZ"), result, name="gateway")
    print(f"\nwrote {path}")
    topics, acknowledged = measured["on_the_topics"], measured["gateway"]["events_acknowledged"]
    return 0 if topics["events"] == topics["distinct_ids"] == acknowledged else 1


if __name__ == "__main__":
    raise SystemExit(main())
