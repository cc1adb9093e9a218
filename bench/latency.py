#!/usr/bin/env python3
"""Latency from a producer's acknowledgement to the value on a worker's /metrics, at a steady rate.

1. Generate the simulator's events for the run at ``--rate`` events/s (before timing: the harness
   must not compete with the worker for the CPU while it paces them), plus one call of a probe
   rep (``latency-probe``, a rep of its own in the demo roster) every ``--probe-interval`` s.
2. Start a worker on fresh topics, produce the events at the rate (in slices of 50 ms), and note
   each probe call's acknowledgement time (``acks=all``).
3. Poll /metrics every ``--poll-interval`` s: once the probe rep's calls today reach n, every
   probe call up to the n-th has become visible; its latency is the poll's time minus its ack.
   The poll interval is the resolution of the figure (a value is seen up to one interval late).
4. Print p50, p90, p99 and the largest latency, the rate reached and the worker's CPU.

Run from the repository root: ``python bench/latency.py`` (or ``make bench-latency``).
See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from aiokafka import AIOKafkaProducer

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # `python bench/latency.py` puts only bench/ on the path

from bench.throughput import (  # noqa: E402
    CONFIG_FILE,
    cpu_jiffies,
    cpu_seconds,
    delete_topics,
    fetch_metrics,
    machine,
    machine_cpu,
    start_worker,
    stop_worker,
    worker_env,
    write_results,
)
from schemas.config import load_config  # noqa: E402
from streams.tools.simulation.live import Simulation  # noqa: E402
from streams.tools.simulation.model import message  # noqa: E402
from streams.worker.topics import ensure_topics  # noqa: E402
from tests.integration.support import BOOTSTRAP, free_port  # noqa: E402

PROBE_REP, PROBE_TEAM = "latency-probe", "emea"
SLICE_SECONDS = 0.05  # events produced at once
Slice = list[tuple[str, bytes, bytes]]  # (topic kind, key, value) of the events produced at once


@dataclass
class Probes:
    """The probe calls: when each was acknowledged, and when /metrics first showed it."""

    acked: list[float] = field(default_factory=list)  # monotonic time of the n-th probe call's ack
    seen: list[float] = field(default_factory=list)  # monotonic time of the poll that first showed it

    def latencies(self) -> list[float]:
        return [seen - acked for acked, seen in zip(self.acked, self.seen, strict=False)]


def probe_event(number: int, at: float, run_id: str) -> dict[str, Any]:
    moment = datetime.fromtimestamp(at, UTC)
    return {
        "event_id": f"latency-{run_id}-{number}",
        "occurred_at": moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z",
        "source": "bench",
        "type": "call.logged",
        "team": PROBE_TEAM,
        "rep_id": PROBE_REP,
        "outcome": "connected",
        "duration_seconds": 60,
    }


def roster_with_probe(path: Path) -> Path:
    """The demo roster and the probe rep, written next to the worker's data."""
    config = yaml.safe_load((REPO / CONFIG_FILE).read_text(encoding="utf-8"))
    config["reps"][PROBE_REP] = {"team": PROBE_TEAM, "name": "Latency probe"}
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def planned_slices(
    config: Path, rate: float, seconds: float, seed: int, start: float
) -> list[list[tuple[str, bytes, bytes]]]:
    """The simulator's events of each slice of the run, generated up front (their times are a little in the past
    once produced: late for no window)."""
    simulation = Simulation(load_config(config), seed, rate=rate)
    slices: list[Slice] = []
    for number in range(round(seconds / SLICE_SECONDS)):
        begin = start + number * SLICE_SECONDS
        events = simulation.events_between(begin, begin + SLICE_SECONDS)
        slices.append([(kind, *message(event)) for kind, event in events])
    return slices


def probe_count(text: str) -> int:
    """The probe rep's calls today on a /metrics page (0 before its first call)."""
    for line in text.splitlines():
        if line.startswith("kpimon_calls{") and f'rep="{PROBE_REP}"' in line and 'window="today"' in line:
            return int(float(line.rsplit(" ", 1)[1]))
    return 0


async def poll(port: int, interval: float, probes: Probes, stop: asyncio.Event) -> int:
    """Scrape /metrics every ``interval`` s and note when each probe call first shows; the scrapes made."""
    scrapes = 0
    while not stop.is_set() or len(probes.seen) < len(probes.acked):
        started = time.monotonic()
        text = await asyncio.to_thread(fetch_metrics, port)
        seen_at, scrapes = time.monotonic(), scrapes + 1
        shown = probe_count(text)
        while len(probes.seen) < min(shown, len(probes.acked)):
            probes.seen.append(seen_at)
        await asyncio.sleep(max(0.0, interval - (seen_at - started)))
    return scrapes


async def produce_paced(
    topics: dict[str, str], slices: list[Slice], probe_every: int, run_id: str, probes: Probes
) -> tuple[int, float]:
    """Produce each slice at its time and a probe call every ``probe_every`` slices; (events sent, seconds)."""
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=5)
    await producer.start()
    sent, started = 0, time.monotonic()
    probe_acks: list[asyncio.Task[None]] = []

    async def send_probe(number: int) -> None:
        key, value = message(probe_event(number, time.time(), run_id))
        await (await producer.send(topics["crm"], value, key=key))
        probes.acked.append(time.monotonic())

    try:
        for number, events in enumerate(slices):
            await asyncio.sleep(max(0.0, started + number * SLICE_SECONDS - time.monotonic()))
            if number % probe_every == 0:
                probe_acks.append(asyncio.create_task(send_probe(len(probe_acks) + 1)))
                await probe_acks[-1]  # one probe at a time: the n-th ack is the n-th probe's
            for kind, key, value in events:
                await producer.send(topics[kind], value, key=key)
            sent += len(events)
        await producer.flush()
    finally:
        await producer.stop()
    return sent, time.monotonic() - started


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def measure(args: argparse.Namespace, prefix: str, scratch: Path) -> dict[str, Any]:
    topics = {"crm": f"{prefix}.crm", "marketing": f"{prefix}.marketing"}
    await ensure_topics(BOOTSTRAP, list(topics.values()), args.partitions)
    config = roster_with_probe(scratch / "kpimon.yaml")
    print(
        f"generating {args.rate * args.seconds:,.0f} events ({args.rate:,.0f}/s for {args.seconds:.0f} s)", flush=True
    )
    slices = planned_slices(config, args.rate, args.seconds, args.seed, time.time())
    port = free_port()
    process = start_worker(
        worker_env(prefix, topics, args.partitions, scratch / "data", config), port, "info", scratch / "worker.log"
    )
    try:
        print(f"worker pid {process.pid} on port {port}; producing", flush=True)
        probes, stop = Probes(), asyncio.Event()
        cpu_before, machine_before = cpu_seconds(process.pid), cpu_jiffies()
        poller = asyncio.create_task(poll(port, args.poll_interval, probes, stop))
        sent, seconds = await produce_paced(topics, slices, round(args.probe_interval / SLICE_SECONDS), prefix, probes)
        stop.set()
        scrapes = await asyncio.wait_for(poller, timeout=120)
        worker_cpu = cpu_seconds(process.pid) - cpu_before
        machine_share = machine_cpu(machine_before, cpu_jiffies())
    finally:
        stop_worker(process)
    latencies = probes.latencies()
    warm = latencies[round(args.warmup_seconds / args.probe_interval) :]  # the worker's first batches are slower
    return {
        "events_sent": sent,
        "seconds": seconds,
        "rate_reached": sent / seconds,
        "probes": len(warm),
        "scrapes": scrapes,
        "worker_cpu_seconds": worker_cpu,
        "machine_cpu": machine_share,
        "latency_seconds": {
            "p50": statistics.median(warm),
            "p90": percentile(warm, 0.90),
            "p99": percentile(warm, 0.99),
            "max": max(warm),
        },
    }


def report(result: dict[str, Any]) -> str:
    lat = result["latency_seconds"]
    return "\n".join(
        [
            "",
            f"rate {result['rate_reached']:,.0f} events/s for {result['seconds']:.0f} s "
            f"(asked {result['asked_rate']:,.0f}), {result['probes']} probe calls after the warm-up",
            f"producer ack -> value on /metrics (polled every {result['poll_interval'] * 1000:.0f} ms):",
            f"  p50 {lat['p50'] * 1000:,.0f} ms   p90 {lat['p90'] * 1000:,.0f} ms   "
            f"p99 {lat['p99'] * 1000:,.0f} ms   max {lat['max'] * 1000:,.0f} ms   (target: p99 <= 1,000 ms)",
            f"worker CPU {result['worker_cpu_seconds'] / result['seconds']:.0%} of a core; "
            f"machine busy {result['machine_cpu']['busy_percent']:.0f}%",
        ]
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Needs the local Kafka broker and Redis (deploy/local/kpimon-local up). Details: docs/benchmarks.md.",
    )
    parser.add_argument("--rate", type=float, default=5000.0, help="events per second produced (default 5000)")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to produce (default 60)")
    parser.add_argument("--warmup-seconds", type=float, default=10.0, help="probe calls left out at the start (10)")
    parser.add_argument("--probe-interval", type=float, default=0.1, help="seconds between probe calls (0.1)")
    parser.add_argument("--poll-interval", type=float, default=0.05, help="seconds between scrapes (0.05)")
    parser.add_argument("--partitions", type=int, default=6, help="partitions of the bench topics (default 6)")
    parser.add_argument("--seed", type=int, default=1, help="simulator seed (default 1)")
    parser.add_argument("--output", type=Path, default=Path("bench/results"), help="directory of the JSON result")
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.seconds <= args.warmup_seconds or args.probe_interval < SLICE_SECONDS:
        parser.error("--rate must be > 0, --seconds longer than --warmup-seconds, --probe-interval >= 0.05")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run_id, started = uuid.uuid4().hex[:8], datetime.now(UTC)
    prefix = f"bench-latency-{run_id}"
    try:
        with tempfile.TemporaryDirectory(prefix="kpimon-latency-") as scratch:
            measured = asyncio.run(measure(args, prefix, Path(scratch)))
    finally:
        asyncio.run(delete_topics([prefix]))
    result = {
        "benchmark": "latency",
        "started": started.isoformat(),
        "machine": machine(),
        "asked_rate": args.rate,
        "poll_interval": args.poll_interval,
        "partitions": args.partitions,
        **measured,
    }
    print(report(result))
    path = write_results(args.output, started.strftime("%Y%m%dT%H%M%SZ"), result, name="latency")
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
