#!/usr/bin/env python3
"""/metrics at scale: scrape time, size and event-loop stalls of one worker while ingest goes on.

1. write a config with R reps in T teams (five time zones) to a temporary file;
2. produce a warm-up set of events over C channels and K campaigns to fresh topics, keyed by
   routing key (schemas.events.routing_key), with event times over the last D days (most in the
   last two hours and two days, so every resolution holds buckets);
3. start a worker (this checkout, or the tree of a git ref with --ref) under a loop-lag probe
   injected into its process: a 1 ms timer on its event loop that logs how late it fires, and
   the duration of every callback that holds the loop for more than 2 ms, with its task;
4. once the warm-up is counted, produce live events at a steady --rate in the background and
   - a quiet phase: no scrapes, to see the loop's stalls from ingest alone;
   - a scrape phase: scrape /metrics every --scrape-interval seconds (back to back when a
     scrape takes longer), timing each one;
   then stop the live events and, once the worker is idle, scrape --idle-scrapes times more
   (the scrape's own cost, with nothing else wanting the event loop);
5. print the figures (series, bytes, scrape time p50/p99/max, the longest loop stall during
   scrapes and without them, the longest step of a /metrics request) and write them to
   bench/results/scrape-<UTC timestamp>.json.

Run from the repository root: ``python bench/scrape.py`` (or ``make bench-scrape``); the same
for the code before a change: ``python bench/scrape.py --ref main``. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # `python bench/scrape.py` puts only bench/ on the path


from bench.scrape_events import EventMaker, Roster, config_yaml  # noqa: E402
from bench.scrape_probe import probe_figures, start_probed_worker  # noqa: E402
from bench.throughput import (  # noqa: E402
    OTHER_TOTALS,
    Progress,
    cpu_seconds,
    delete_topics,
    machine,
    metric_sum,
    rss_bytes,
    stop_worker,
    write_results,
)
from streams.tools.simulation.model import message  # noqa: E402
from streams.worker.topics import ensure_topics  # noqa: E402
from tests.integration.support import BOOTSTRAP, free_port  # noqa: E402

WORKER_START_SECONDS = 180.0
WARMUP_TIMEOUT_SECONDS = 1800.0
CHUNK_EVENTS = 2_000
STEADY_TICK_SECONDS = 0.1
SCRAPE_TIMEOUT_SECONDS = 120.0
TARGET_SCRAPE_SECONDS = 0.1
TARGET_STALL_SECONDS = 0.01  # ingest never held longer by a scrape (issue 12)
IDLE_AFTER_SECONDS = 10.0  # after the live events stop, for the worker to fold what is left
WORKER_GAUGES = ("kpimon_event_loop_lag_seconds", "kpimon_metrics_render_step_seconds")


# -- the workload ------------------------------------------------------------------------------------------------------


async def produce(topics: dict[str, str], events: list[tuple[str, dict[str, Any]]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=20)
    await producer.start()
    try:
        progress = Progress("warm-up produce", len(events))
        for first in range(0, len(events), CHUNK_EVENTS):
            deliveries = []
            for kind, event in events[first : first + CHUNK_EVENTS]:
                key, value = message(event)
                deliveries.append(await producer.send(topics[kind], value, key=key))
            await asyncio.gather(*deliveries)
            progress.update(first + len(deliveries))
        progress.update(len(events), force=True)
    finally:
        await producer.stop()


@dataclass
class Steady:
    """Live events at ``rate`` per second from a thread, until ``stop`` is set."""

    topics: dict[str, str]
    maker: EventMaker
    rate: float
    stop: threading.Event = field(default_factory=threading.Event)
    sent: int = 0

    def run(self) -> None:
        asyncio.run(self._produce())

    async def _produce(self) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=5)
        await producer.start()
        started = time.monotonic()
        try:
            while not self.stop.is_set():
                due = int(self.rate * (time.monotonic() - started)) - self.sent
                for _ in range(due):
                    kind, event = self.maker.event(time.time())
                    key, value = message(event)
                    await producer.send(self.topics[kind], value, key=key)
                self.sent += max(due, 0)
                await asyncio.sleep(STEADY_TICK_SECONDS - (time.monotonic() - started) % STEADY_TICK_SECONDS)
            await producer.flush()
        finally:
            await producer.stop()


# -- the worker --------------------------------------------------------------------------------------------------------


def fetch(port: int) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=SCRAPE_TIMEOUT_SECONDS) as response:
        return bytes(response.read())


def counted(body: bytes) -> int:
    """Messages the worker has taken in: counted, duplicates, late and rejected (none expected but counted)."""
    text = body.decode()
    return int(sum(metric_sum(text, name) for name in ("kpimon_events_total", *OTHER_TOTALS)))


def wait_for_warmup(port: int, events: int) -> float:
    progress, started = Progress("warm-up counted", events), time.monotonic()
    while time.monotonic() - started < WARMUP_TIMEOUT_SECONDS:
        done = counted(fetch(port))
        progress.update(done)
        if done >= events:
            progress.update(done, force=True)
            return time.monotonic() - started
        time.sleep(5.0)
    raise TimeoutError(f"the warm-up was not counted within {WARMUP_TIMEOUT_SECONDS} s")


@dataclass
class Scrape:
    started: float  # wall clock
    seconds: float
    size: int
    series: int
    events: int  # kpimon_events_total


def scrape_phase(port: int, seconds: float, interval: float, count: int = 0) -> tuple[list[Scrape], bytes]:
    """Scrapes every ``interval`` seconds for ``seconds``, or ``count`` of them."""
    scrapes: list[Scrape] = []
    last, end = b"", time.monotonic() + seconds
    progress = Progress("scrapes", count or (int(seconds / interval) if interval else 0))
    while time.monotonic() < end or len(scrapes) < count:
        wall, started = time.time(), time.perf_counter()
        last = fetch(port)
        spent = time.perf_counter() - started
        series = sum(1 for line in last.split(b"\n") if line and not line.startswith(b"#"))
        scrapes.append(Scrape(wall, spent, len(last), series, counted(last)))
        progress.update(len(scrapes))
        time.sleep(max(0.0, interval - spent))
    return scrapes, last


# -- figures -----------------------------------------------------------------------------------------------------------


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def gauges(body: bytes) -> dict[str, float]:
    found = {}
    for line in body.decode().splitlines():
        name, _, value = line.partition(" ")
        if name in WORKER_GAUGES:
            found[name] = float(value)
    return found


def report(result: dict[str, Any]) -> str:
    s, p, m = result["scrapes"], result["probe"], result["machine"]
    h, sc, q, g, i = p["http"], p["scrapes"], p["quiet"], p["gc"], result["idle_scrapes"]
    ms, mib = 1000, 2**20
    rate = result["ingest_during_scrapes_events_per_second"]
    lines = [
        f"kpimon /metrics at scale ({result['label']}): {result['reps']:,} reps in {result['teams']} teams, "
        f"{result['channels']} channels, {result['campaigns']} campaigns, run {result['run_id']}",
        f"machine: {m['nproc']} CPUs ({m['cpu_model']}), Python {m['python']}, Kafka {m['kafka']}",
        f"warm-up: {result['warmup_events']:,} events over {result['warmup_days']} days, counted in "
        f"{result['warmup_seconds']:.0f} s; then {result['rate']:,.0f} events/s live",
        "",
        "| figure | measured | target |",
        "|---|---:|---:|",
        f"| series on /metrics | {s['series']:,} | |",
        f"| bytes | {s['bytes'] / mib:,.1f} MiB | |",
        f"| scrape time p50 / p99 / max ({s['count']} scrapes) | {s['p50_s'] * ms:,.0f} / {s['p99_s'] * ms:,.0f} / "
        f"{s['max_s'] * ms:,.0f} ms | max <= {TARGET_SCRAPE_SECONDS * ms:.0f} ms |",
        f"| longest step of a /metrics request: wall / CPU / CPU without GC | {h['step_max_s'] * ms:,.1f} / "
        f"{h['step_max_cpu_s'] * ms:,.1f} / {h['step_max_cpu_without_gc_s'] * ms:,.1f} ms | "
        f"<= {TARGET_STALL_SECONDS * ms:.0f} ms |",
        f"| longest loop stall overlapping a scrape (lag probe; without GC) | {sc['lag_max_s'] * ms:,.1f} "
        f"({sc['lag_max_without_gc_s'] * ms:,.1f}) ms | |",
        f"| longest loop stall without scrapes (ingest alone; without GC) | {q['lag_max_s'] * ms:,.1f} "
        f"({q['lag_max_without_gc_s'] * ms:,.1f}) ms | |",
        f"| loop stalls > 10 ms: without scrapes / overlapping scrapes | {q['stalls_over_10ms']} / "
        f"{sc['stalls_over_10ms']} | |",
        f"| longest other step, wall / CPU: without scrapes; during scrapes | {q['step_max_s'] * ms:,.0f} / "
        f"{q['step_max_cpu_s'] * ms:,.0f} ms; {sc['step_max_s'] * ms:,.0f} / {sc['step_max_cpu_s'] * ms:,.0f} ms | |",
        f"| GC pauses > 2 ms (full collections); longest | {g['pauses_over_2ms']} ({g['full_collections']}); "
        f"{g['max_s'] * ms:,.0f} ms | |",
        f"| scrape time with ingest idle p50 / max ({i['count']} scrapes) | {i['p50_s'] * ms:,.0f} / "
        f"{i['max_s'] * ms:,.0f} ms | |",
        f"| ingest during the scrape phase | {rate:,.0f} events/s | {result['rate']:,.0f} produced |",
        "",
        "longest /metrics steps (wall, CPU, CPU without GC in ms): "
        + "; ".join(f"{w * ms:.1f}, {c * ms:.1f}, {n * ms:.1f}" for w, c, n, _ in h["longest_steps"]),
        "longest other steps during scrapes (wall, CPU, CPU without GC in ms, task): "
        + "; ".join(f"{w * ms:.0f}, {c * ms:.0f}, {n * ms:.0f} {task}" for w, c, n, task in sc["longest_steps"][:3]),
        f"worker gauges at the end: {result['worker_gauges'] or 'none (this version has no loop-lag gauge)'}",
        f"worker: RSS {result['rss_bytes'] / mib:,.0f} MiB at the end, {result['worker_cpu_seconds']:,.0f} CPU s",
    ]
    return "\n".join(lines)


# -- main --------------------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Needs the local Kafka broker (deploy/local/kpimon-local up). Details: docs/benchmarks.md.",
    )
    parser.add_argument("--reps", type=int, default=1_000, help="reps in the config (default 1000)")
    parser.add_argument("--teams", type=int, default=5, help="teams, in five time zones (default 5)")
    parser.add_argument("--channels", type=int, default=50, help="channels of the events (default 50)")
    parser.add_argument("--campaigns", type=int, default=200, help="campaigns of the events (default 200)")
    parser.add_argument("--warmup-events", type=int, default=60_000, help="events before measuring (default 60000)")
    parser.add_argument("--warmup-days", type=int, default=35, help="their event times span this many days (35)")
    parser.add_argument("--rate", type=float, default=200.0, help="live events per second meanwhile (default 200)")
    parser.add_argument("--quiet-seconds", type=float, default=30.0, help="ingest without scrapes (default 30)")
    parser.add_argument("--scrape-seconds", type=float, default=60.0, help="scraping while ingesting (default 60)")
    parser.add_argument("--scrape-interval", type=float, default=1.0, help="seconds between scrape starts (1)")
    parser.add_argument("--idle-scrapes", type=int, default=10, help="scrapes once ingest is idle, at the end (10)")
    parser.add_argument("--partitions", type=int, default=6, help="partitions of the bench topics (default 6)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated events (default 1)")
    parser.add_argument(
        "--ref", help="run the worker of this git ref (e.g. main: the code before a change), exported to a temp dir"
    )
    parser.add_argument("--output", type=Path, default=Path("bench/results"), help="directory of the JSON result")
    parser.add_argument("--keep", action="store_true", help="keep the bench topics")
    parser.add_argument("--probe-log", type=Path, help="keep the probe's log (lags, long steps, GC pauses) here")
    parser.add_argument(
        "--stacks", type=float, metavar="SECONDS", help="log where the loop is when a callback holds it this long"
    )
    args = parser.parse_args(argv)
    if min(args.reps, args.teams, args.channels, args.campaigns, args.warmup_events, args.partitions) < 1:
        parser.error("--reps, --teams, --channels, --campaigns, --warmup-events and --partitions must be positive")
    return args


def export_ref(ref: str, into: Path) -> Path:
    """The tree of ``ref`` (read from the repository's objects; no checkout is touched)."""
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def measure(args: argparse.Namespace, run_id: str, scratch: Path) -> dict[str, Any]:
    code = export_ref(args.ref, scratch / "code") if args.ref else REPO
    roster = Roster.generated(args.reps, args.teams, args.channels, args.campaigns)
    config = scratch / "kpimon.yaml"
    config.write_text(config_yaml(roster))
    app_id = f"bench-scrape-{run_id}"
    topics = {"crm": f"{app_id}.crm", "marketing": f"{app_id}.marketing"}
    asyncio.run(ensure_topics(BOOTSTRAP, list(topics.values()), args.partitions))
    maker = EventMaker(roster, args.seed)
    warmup = maker.warmup(args.warmup_events, time.time(), args.warmup_days)
    print(f"1. producing {len(warmup):,} warm-up events to {', '.join(topics.values())}", flush=True)
    asyncio.run(produce(topics, warmup))
    env = {
        "KPIMON_APP_ID": app_id,
        "KPIMON_CRM_TOPIC": topics["crm"],
        "KPIMON_MARKETING_TOPIC": topics["marketing"],
        "KPIMON_DEADLETTER_TOPIC": f"{app_id}.deadletter",
        "KPIMON_PARTITIONS": str(args.partitions),
        "KPIMON_DATA_DIR": str(scratch / "data"),
        "KPIMON_CONFIG_FILE": str(config),
    }
    port = free_port()
    print(f"2. worker ({args.ref or 'this checkout'}) with the loop-lag probe", flush=True)
    process, steady = None, Steady(topics, maker, args.rate)
    try:
        process = start_probed_worker(code, env, port, scratch, args.stacks)
        warmup_seconds = wait_for_warmup(port, len(warmup))
        threading.Thread(target=steady.run, daemon=True).start()
        print(f"3. live events at {args.rate:,.0f}/s; {args.quiet_seconds:.0f} s without scrapes", flush=True)
        quiet = (time.time(), time.time() + args.quiet_seconds)
        time.sleep(args.quiet_seconds)
        print(f"4. scraping every {args.scrape_interval:g} s for {args.scrape_seconds:.0f} s", flush=True)
        scrapes, last = scrape_phase(port, args.scrape_seconds, args.scrape_interval)
        worker_cpu, rss = cpu_seconds(process.pid), rss_bytes(process.pid)
        steady.stop.set()
        print(f"5. live events stopped; {args.idle_scrapes} scrapes once ingest is idle", flush=True)
        time.sleep(IDLE_AFTER_SECONDS)
        idle, _ = scrape_phase(port, 0, args.scrape_interval, args.idle_scrapes)
    except BaseException:
        log = (scratch / "worker.log").read_text(errors="replace")
        print("--- worker log (last lines) ---\n" + "\n".join(log.splitlines()[-40:]), file=sys.stderr)
        raise
    finally:
        steady.stop.set()
        if process is not None:
            stop_worker(process)
        if not args.keep:
            deleted = asyncio.run(delete_topics([app_id]))
            print(f"deleted {len(deleted)} topics", flush=True)
    if args.probe_log:
        shutil.copyfile(scratch / "probe.log", args.probe_log)
    times, idle_times = [s.seconds for s in scrapes], [s.seconds for s in idle]
    phase_seconds = scrapes[-1].started - scrapes[0].started if len(scrapes) > 1 else 0.0
    return {
        "label": args.ref or "this checkout",
        "warmup_seconds": warmup_seconds,
        "scrapes": {
            "count": len(scrapes),
            "series": scrapes[-1].series,
            "bytes": scrapes[-1].size,
            "p50_s": quantile(times, 0.5),
            "p99_s": quantile(times, 0.99),
            "max_s": max(times),
            "each": [(round(s.started, 3), round(s.seconds, 4), s.size) for s in scrapes],
        },
        "idle_scrapes": {"count": len(idle), "p50_s": quantile(idle_times, 0.5), "max_s": max(idle_times)},
        "ingest_during_scrapes_events_per_second": (scrapes[-1].events - scrapes[0].events) / phase_seconds
        if phase_seconds
        else 0.0,
        "live_events_sent": steady.sent,
        "probe": probe_figures(scratch / "probe.log", quiet, [(s.started, s.started + s.seconds) for s in scrapes]),
        "phases": {"quiet": quiet, "scrapes": (scrapes[0].started, scrapes[-1].started + scrapes[-1].seconds)},
        "worker_gauges": gauges(last),
        "rss_bytes": rss,
        "worker_cpu_seconds": worker_cpu,
    }


def save(directory: Path, stamp: str, result: dict[str, Any]) -> Path:
    """``directory/scrape-<stamp>.json`` (written by throughput.py's writer, in a directory of its own first)."""
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory) as private:
        return write_results(Path(private), stamp, result).replace(directory / f"scrape-{stamp}.json")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the worker and delete the topics on the way out
    run_id, started = uuid.uuid4().hex[:8], datetime.now(UTC)
    result: dict[str, Any] = {
        "run_id": run_id,
        "started_at": started.isoformat(timespec="seconds"),
        "machine": machine(),
        **{name: getattr(args, name) for name in ("reps", "teams", "channels", "campaigns", "partitions", "seed")},
        **{name: getattr(args, name) for name in ("warmup_events", "warmup_days", "rate", "ref")},
        **{
            name: getattr(args, name) for name in ("quiet_seconds", "scrape_seconds", "scrape_interval", "idle_scrapes")
        },
        "load_average_start": list(os.getloadavg()),
    }
    with tempfile.TemporaryDirectory(prefix="kpimon-bench-scrape-") as scratch:
        result |= measure(args, run_id, Path(scratch))
    result["load_average_end"] = list(os.getloadavg())
    print("\n" + report(result) + "\n", flush=True)
    path = save(args.output, started.strftime("%Y%m%dT%H%M%SZ"), result)
    print(f"results: {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
