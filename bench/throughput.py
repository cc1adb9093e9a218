#!/usr/bin/env python3
"""Throughput of a kpimon worker against a bare aiokafka consume loop on the same topics.

1. produce N simulated events (event times in the last two hours) to fresh topics;
2. baselines: read them back with a bare aiokafka loop that only decodes (orjson),
   then with the same loop plus the contract's validation (``parse_event``);
   each loop runs three times, the median counts;
3. run a real ``kpimon worker`` on the topics until ``kpimon_events_total`` reaches N,
   sampling its memory every second;
4. print a table, the ratios to the baselines, and write a JSON file of every figure.

Run from the repository root: ``python bench/throughput.py`` (or ``make bench``).
See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # `python bench/throughput.py` puts only bench/ on the path

from schemas.config import load_config  # noqa: E402
from schemas.events import parse_event  # noqa: E402
from streams.tools.simulation.live import Simulation  # noqa: E402
from streams.tools.simulation.model import SimulatedEvent, message  # noqa: E402
from streams.worker.topics import ensure_topics  # noqa: E402
from tests.integration.support import BOOTSTRAP, free_port  # noqa: E402

KAFKA_VERSION = "3.9.1"  # the broker of deploy/local/kpimon-local
CONFIG_FILE = Path("deploy/examples/kpimon.yaml")  # the demo roster, for the simulator and the worker
EVENT_SPAN_SECONDS = 2 * 3600  # event times fall into the last two hours: the live windows
RATE_HEADROOM = 1.03  # the simulator's rate is a mean: aim a little high, stop at exactly N
CHUNK_SECONDS = 60.0  # event time generated and produced at once (bounded memory)
MAX_RECORDS = 10_000
PROGRESS_SECONDS = 5.0
SAMPLE_SECONDS = 1.0  # RSS samples; scrapes of /metrics at most this often
COUNT_POLL_SECONDS = 0.05  # a count that costs the worker nothing (its commits) is read this often
SCRAPE_MAX_SECONDS = 5.0  # and at least this often
RSS_TIMELINE_EVERY = 30  # RSS samples: every 30th goes into the JSON's timeline
WORKER_START_SECONDS = 180.0
WORKER_TIMEOUT_SECONDS = 3 * 3600.0
WORKER_STOP_GRACE_SECONDS = 30.0
EVENTS_TOTAL = "kpimon_events_total"
WORKER_SENT = ("lead.converted", "lead.deal_closed", "contact.lead_updated")
OTHER_TOTALS = ("kpimon_events_duplicate_total", "kpimon_events_rejected_total", "kpimon_events_late_dropped_total")


# -- results -----------------------------------------------------------------------------------------------------------


@dataclass
class Phase:
    """Events through one phase: ``sustained`` from the first event seen, ``overall`` from the start."""

    events: int
    seconds: float  # start of the phase to its last event
    sustained_seconds: float  # first event (or first count) to the last
    extra: dict[str, Any] = field(default_factory=dict)
    # the events counted after the first count, where a count comes in steps (a commit per batch); None: all
    sustained_events: int | None = None

    @property
    def overall_rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    @property
    def sustained_rate(self) -> float:
        """Events per second from the first event seen (or the first count) to the last.

        A count that comes in steps (committed offsets, a batch at a time) first moves when a whole
        batch is done: only the events counted after that are in the rate, not the first batch's.
        """
        events = self.events if self.sustained_events is None else self.sustained_events
        return events / self.sustained_seconds if self.sustained_seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        rates = {"overall_events_per_second": self.overall_rate, "sustained_events_per_second": self.sustained_rate}
        return {**asdict(self), **rates}


@dataclass
class Progress:
    """A line every few seconds: how far, how fast, how long still."""

    label: str
    total: int
    started: float = field(default_factory=time.monotonic)
    next_line: float = 0.0

    def update(self, done: int, *, force: bool = False) -> None:
        now = time.monotonic()
        if now < self.next_line and not force:
            return
        self.next_line = now + PROGRESS_SECONDS
        elapsed = now - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = f"ETA {(self.total - done) / rate:,.0f} s" if rate > 0 else "ETA ?"
        share = 100 * done / self.total if self.total else 100.0
        print(f"  {self.label}: {done:,}/{self.total:,} ({share:.0f}%), {rate:,.0f} events/s, {eta}", flush=True)


# -- machine and process figures from /proc ----------------------------------------------------------------------------


def rss_bytes(pid: int, field_name: str = "VmRSS") -> int:
    """Resident memory of a process (VmRSS, or another line of its status such as VmHWM, the peak), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field_name}:"):
            return int(line.split()[1]) * 1024
    return 0


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_jiffies() -> list[int]:
    """The machine's CPU time so far, from /proc/stat: user nice system idle iowait irq softirq steal."""
    return [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]


def machine_cpu(before: list[int], after: list[int]) -> dict[str, float]:
    """How busy all CPUs were between two snapshots (the worker, the broker, and anything else running)."""
    spent = [b - a for a, b in zip(before, after, strict=True)]
    total = sum(spent) or 1
    return {"busy_percent": 100 * (total - spent[3] - spent[4]) / total, "steal_percent": 100 * spent[7] / total}


# -- 1. produce --------------------------------------------------------------------------------------------------------


def simulated_chunks(events: int, seed: int, end: float) -> Iterator[list[SimulatedEvent]]:
    """Exactly ``events`` valid, distinct events with event times in the two hours before ``end``, in chunks."""
    start = end - EVENT_SPAN_SECONDS
    simulation = Simulation(load_config(REPO / CONFIG_FILE), seed, rate=events / EVENT_SPAN_SECONDS * RATE_HEADROOM)
    emitted, moment = 0, start
    while emitted < events:
        if moment >= end:
            raise RuntimeError(f"the simulator gave only {emitted:,} events in {EVENT_SPAN_SECONDS} s of event time")
        chunk = simulation.events_between(moment, moment + CHUNK_SECONDS)[: events - emitted]
        emitted, moment = emitted + len(chunk), moment + CHUNK_SECONDS
        yield chunk


async def produce_events(
    topics: dict[str, str], events: int, seed: int, chunks: Iterator[list[SimulatedEvent]] | None = None
) -> Phase:
    """Generate and produce ``events`` (the simulator's, or ``chunks``) as fast as the producer takes them."""
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=20)
    await producer.start()
    progress, sent, generating = Progress("produce", events), 0, 0.0
    started, cpu_at_start = time.monotonic(), time.process_time()
    try:
        chunks = chunks or simulated_chunks(events, seed, time.time())
        while True:
            generated_at = time.monotonic()
            chunk = next(chunks, None)
            generating += time.monotonic() - generated_at
            if chunk is None:
                break
            deliveries = []
            for kind, event in chunk:
                key, value = message(event)
                deliveries.append(await producer.send(topics[kind], value, key=key))
            await asyncio.gather(*deliveries)
            sent += len(chunk)
            progress.update(sent)
        await producer.flush()
    finally:
        await producer.stop()
    progress.update(sent, force=True)
    seconds = time.monotonic() - started
    cpu = time.process_time() - cpu_at_start
    return Phase(sent, seconds, seconds, {"generation_seconds": generating, "cpu_seconds": cpu})


async def count_messages(topics: list[str]) -> int:
    """Messages in ``topics`` (end minus beginning offsets), for --skip-produce."""
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    partitions = [TopicPartition(d["topic"], p["partition"]) for d in described for p in d["partitions"]]
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions)
        beginnings = await consumer.beginning_offsets(partitions)
    finally:
        await consumer.stop()
    return sum(ends[tp] - beginnings[tp] for tp in partitions)


# -- 2. baselines ------------------------------------------------------------------------------------------------------


def decode(value: bytes) -> None:
    orjson.loads(value)


def decode_and_validate(value: bytes) -> None:
    orjson.loads(value)
    parse_event(value)


async def consume_baseline(topics: list[str], events: int, label: str, handle: Callable[[bytes], None]) -> Phase:
    """A bare loop: read ``topics`` from the start with a fresh group and ``handle`` every value until ``events``."""
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=BOOTSTRAP,
        group_id=f"bench-baseline-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    progress, count, first = Progress(label, events), 0, 0.0
    started, cpu_at_start = time.monotonic(), time.process_time()
    await consumer.start()
    try:
        while count < events:
            batches = await consumer.getmany(timeout_ms=1000, max_records=MAX_RECORDS)
            for records in batches.values():
                if not first and records:
                    first = time.monotonic()
                for record in records:
                    handle(record.value)
                count += len(records)
            progress.update(count)
        done, cpu = time.monotonic(), time.process_time() - cpu_at_start
    finally:
        await consumer.stop()
    progress.update(count, force=True)
    return Phase(
        count, done - started, done - first, {"time_to_first_event_seconds": first - started, "cpu_seconds": cpu}
    )


def baseline(topics: list[str], events: int, label: str, handle: Callable[[bytes], None], runs: int) -> Phase:
    """The median of ``runs`` passes of a bare loop: a pass takes seconds, so one busy moment skews it."""
    passes = []
    for number in range(1, runs + 1):
        before = cpu_jiffies()
        phase = asyncio.run(consume_baseline(topics, events, f"{label} ({number}/{runs})", handle))
        phase.extra["machine_cpu"] = machine_cpu(before, cpu_jiffies())
        passes.append(phase)
    return median_pass(passes)


def median_pass(passes: list[Phase]) -> Phase:
    """The pass with the median rate, with every pass's rate under ``extra``."""
    median = sorted(passes, key=lambda phase: phase.sustained_rate)[len(passes) // 2]
    median.extra["passes_sustained_events_per_second"] = [phase.sustained_rate for phase in passes]
    return median


# -- 3. the kpimon worker ----------------------------------------------------------------------------------------------


def fetch_metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60) as response:
        return str(response.read().decode())


def metric_sum(text: str, name: str) -> float:
    """The sum of a metric's samples over all labels (a light parser: the harness shares the CPUs).

    Events of the types the worker sends itself (a lead's conversion, a deal's outcome, a lead's view)
    are left out: only the N produced events count.
    """
    prefixes = (f"{name}{{", f"{name} ")
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(prefixes) and not any(f'type="{kind}"' in line for kind in WORKER_SENT)
    )


def series_count(text: str) -> int:
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


def worker_env(
    app_id: str, topics: dict[str, str], partitions: int, data_dir: Path, config_file: Path = REPO / CONFIG_FILE
) -> dict[str, str]:
    return {
        "KPIMON_APP_ID": app_id,
        "KPIMON_CRM_TOPIC": topics["crm"],
        "KPIMON_MARKETING_TOPIC": topics["marketing"],
        "KPIMON_DEADLETTER_TOPIC": f"{app_id}.deadletter",
        "KPIMON_PARTITIONS": str(partitions),
        "KPIMON_DATA_DIR": str(data_dir),
        "KPIMON_CONFIG_FILE": str(config_file),
    }


@dataclass
class Watch:
    """What ``watch_worker`` saw: monotonic times, RSS samples, the worker's CPU time and the cost of scraping."""

    first_count: float = 0.0
    first_counted: int = 0  # the events of the first count
    done: float = 0.0
    rss: list[int] = field(default_factory=list)
    rss_timeline: list[tuple[float, int]] = field(default_factory=list)  # (seconds since start, bytes), sparse
    cpu_seconds: float = 0.0
    scrapes: int = 0
    scrape_seconds: float = 0.0
    machine_cpu: dict[str, float] = field(default_factory=dict)


def scrape_delay(counted: int, events: int, rate: float) -> float:
    """Scrape seldom while far from done (a scrape costs the worker CPU), every second near the end."""
    if rate <= 0:
        return SAMPLE_SECONDS
    return min(SCRAPE_MAX_SECONDS, max(SAMPLE_SECONDS, (events - counted) / rate / 4))


def scrape_count(port: int, watch: Watch) -> int:
    """``kpimon_events_total`` from /metrics; the scrape and its cost noted in ``watch``."""
    started = time.monotonic()
    counted = int(metric_sum(fetch_metrics(port), EVENTS_TOTAL))
    watch.scrapes, watch.scrape_seconds = watch.scrapes + 1, watch.scrape_seconds + time.monotonic() - started
    return counted


def watch_worker(
    process: subprocess.Popen[bytes], port: int, events: int, count_events: Callable[[], int] | None = None
) -> Watch:
    """Sample RSS every second and the event count now and then, until ``events`` are counted.

    The count comes from scrapes of /metrics, or from ``count_events`` every ``COUNT_POLL_SECONDS`` when
    given (a count that costs the worker nothing, such as its consumer group's committed offsets): a
    rate by commits is then exact to the batch, not to the second.
    """
    pid, progress, watch, next_scrape, next_sample = process.pid, Progress("kpimon", events), Watch(), 0.0, 0.0
    started, cpu_at_start, machine_at_start = time.monotonic(), cpu_seconds(process.pid), cpu_jiffies()
    deadline = started + WORKER_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the worker exited with {process.returncode}")
        now = time.monotonic()
        if now >= next_sample:
            next_sample = now + SAMPLE_SECONDS
            watch.rss.append(rss_bytes(pid))
            if len(watch.rss) % RSS_TIMELINE_EVERY == 1:
                watch.rss_timeline.append((round(now - started, 1), watch.rss[-1]))
        if now >= next_scrape:
            counted = count_events() if count_events else scrape_count(port, watch)
            if counted and not watch.first_count:
                watch.first_count = progress.started = now
                watch.first_counted = counted
            if counted >= events:
                watch.done, watch.cpu_seconds = now, cpu_seconds(pid) - cpu_at_start
                watch.machine_cpu = machine_cpu(machine_at_start, cpu_jiffies())
                progress.update(counted, force=True)
                return watch
            progress.update(counted)
            rate = counted / (now - watch.first_count) if watch.first_count and now > watch.first_count else 0.0
            next_scrape = now + (COUNT_POLL_SECONDS if count_events else scrape_delay(counted, events, rate))
        time.sleep(max(0.0, min(next_sample, next_scrape) - time.monotonic()))
    raise TimeoutError(f"kpimon did not count {events:,} events within {WORKER_TIMEOUT_SECONDS} s")


def final_metrics(port: int) -> dict[str, Any]:
    """Scrape /metrics once more, timed: its cost, its size and the ingest counters."""
    started = time.monotonic()
    text = fetch_metrics(port)
    scrape_ms = 1000 * (time.monotonic() - started)
    totals = {name: metric_sum(text, name) for name in (EVENTS_TOTAL, *OTHER_TOTALS)}
    return {"scrape_ms": scrape_ms, "series": series_count(text), "bytes": len(text.encode()), "totals": totals}


def start_worker(env: dict[str, str], port: int, loglevel: str, log_path: Path) -> subprocess.Popen[bytes]:
    """``kpimon worker`` in its own process; returns once it serves /metrics (before it consumes)."""
    command = [sys.executable, "-m", "streams.tools.cli", "worker", "--web-port", str(port), "--loglevel", loglevel]
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command, env={**os.environ, **env}, cwd=log_path.parent, stdout=log, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + WORKER_START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the worker exited with {process.returncode}")
        with contextlib.suppress(OSError):
            fetch_metrics(port)
            return process
        time.sleep(0.1)
    process.kill()
    raise TimeoutError(f"the worker did not serve /metrics within {WORKER_START_SECONDS} s")


def stop_worker(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM, and SIGKILL if the worker has not exited after the grace period; its exit code."""
    process.terminate()
    try:
        return process.wait(timeout=WORKER_STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def run_worker(
    app_id: str,
    topics: dict[str, str],
    partitions: int,
    events: int,
    loglevel: str,
    config_file: Path = REPO / CONFIG_FILE,
    count_events: Callable[[], int] | None = None,
) -> Phase:
    """Start a worker (with the roster of ``config_file``), measure it until it has counted ``events``, and stop it.

    ``count_events``: see ``watch_worker``; the default counts on /metrics.
    """
    with tempfile.TemporaryDirectory(prefix="kpimon-bench-") as scratch:
        env, port = worker_env(app_id, topics, partitions, Path(scratch) / "data", config_file), free_port()
        launched, process = time.monotonic(), None
        try:
            process = start_worker(env, port, loglevel, Path(scratch) / "worker.log")
            serving = time.monotonic()
            print(f"  kpimon: worker pid {process.pid} serves /metrics after {serving - launched:.1f} s", flush=True)
            watch = watch_worker(process, port, events, count_events)
            metrics = final_metrics(port)
        except BaseException:
            log = (Path(scratch) / "worker.log").read_text(errors="replace")
            print("--- worker log (last lines) ---\n" + "\n".join(log.splitlines()[-40:]), file=sys.stderr)
            raise
        finally:
            stopping = time.monotonic()
            exit_code = stop_worker(process) if process else None
    extra = {
        "pid": process.pid,
        "loglevel": loglevel,
        "startup_seconds": serving - launched,
        "time_to_first_count_seconds": watch.first_count - serving,
        "cpu_seconds": watch.cpu_seconds,
        "peak_rss_bytes": max(watch.rss),
        "end_rss_bytes": watch.rss[-1],
        "rss_samples": len(watch.rss),
        "rss_timeline": watch.rss_timeline,
        "scrapes_while_running": watch.scrapes,
        "scrape_seconds_while_running": watch.scrape_seconds,
        "metrics": metrics,
        "stop_seconds": time.monotonic() - stopping,
        "exit_code": exit_code,
        "stopped_by_sigterm": exit_code != -signal.SIGKILL,
        "machine_cpu": watch.machine_cpu,  # from /metrics served to the last event counted
    }
    return Phase(events, watch.done - serving, watch.done - watch.first_count, extra, events - watch.first_counted)


# -- topics, machine, report -------------------------------------------------------------------------------------------


async def delete_topics(prefixes: list[str]) -> list[str]:
    """Delete every topic whose name starts with one of ``prefixes``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        names = [name for name in await admin.list_topics() if name.startswith(tuple(prefixes))]
        if names:
            await admin.delete_topics(names)
    finally:
        await admin.close()
    return sorted(names)


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    models = [line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")]
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": models[0] if models else platform.processor(),
        "python": platform.python_version(),
        "kafka": KAFKA_VERSION,
        "kernel": platform.release(),
    }


def ratio(part: Phase, whole: Phase) -> float:
    return part.sustained_rate / whole.sustained_rate if whole.sustained_rate else 0.0


ROW_NAMES = {
    "produce": "produce (generate + send, acks=all)",
    "raw": "aiokafka getmany + orjson.loads",
    "validated": "aiokafka getmany + orjson + parse_event",
    "kpimon": "kpimon worker (counted on /metrics)",
}


def table(phases: dict[str, Phase]) -> list[str]:
    lines = [
        f"| {'phase':<40} | sustained ev/s | overall ev/s |  seconds |   CPU s | machine busy |",
        f"|{'-' * 42}|{'-' * 15}:|{'-' * 13}:|{'-' * 9}:|{'-' * 8}:|{'-' * 13}:|",
    ]
    for key, name in ROW_NAMES.items():
        if (p := phases.get(key)) is not None:
            rates = f"{p.sustained_rate:>14,.0f} | {p.overall_rate:>12,.0f}"
            busy = f"{p.extra['machine_cpu']['busy_percent']:>11.0f}%"
            lines.append(f"| {name:<40} | {rates} | {p.seconds:>8.1f} | {p.extra['cpu_seconds']:>7.1f} | {busy} |")
    return lines


def report(result: dict[str, Any], phases: dict[str, Phase]) -> str:
    m, kpimon, ratios = result["machine"], phases["kpimon"], result["ratios"]
    x, mib = kpimon.extra, 2**20
    load = {when: " ".join(f"{v:.2f}" for v in result[f"load_average_{when}"]) for when in ("start", "end")}
    lines = [
        f"kpimon throughput: {kpimon.events:,} events, {result['partitions']} partitions, run {result['run_id']}",
        f"machine: {m['nproc']} CPUs ({m['cpu_model']}), Python {m['python']}, Kafka {m['kafka']}, "
        f"load average {load['start']} at start, {load['end']} at end",
        "",
        *table(phases),
        "",
        f"kpimon = {ratios['kpimon_to_raw']:.2%} of the bare aiokafka loop (1 : {1 / ratios['kpimon_to_raw']:.0f}), "
        f"{ratios['kpimon_to_validated']:.1%} of the loop with validation",
        f"validation alone: the loop with parse_event runs at {ratios['validated_to_raw']:.1%} of the bare loop",
        "baseline passes (events/s): "
        + "; ".join(
            f"{key} " + ", ".join(f"{rate:,.0f}" for rate in phases[key].extra["passes_sustained_events_per_second"])
            for key in ("raw", "validated")
        ),
        f"kpimon start: /metrics after {x['startup_seconds']:.1f} s, "
        f"first event counted {x['time_to_first_count_seconds']:.1f} s later",
        f"kpimon memory: peak RSS {x['peak_rss_bytes'] / mib:,.0f} MiB, at the end {x['end_rss_bytes'] / mib:,.0f} MiB",
        f"/metrics at the end: {x['metrics']['series']:,} series, {x['metrics']['bytes'] / 1024:,.0f} KiB, "
        f"scraped in {x['metrics']['scrape_ms']:,.0f} ms",
        "counters at the end: " + ", ".join(f"{name} {value:,.0f}" for name, value in x["metrics"]["totals"].items()),
        f"worker stopped in {x['stop_seconds']:.1f} s, exit code {x['exit_code']}"
        + ("" if x["stopped_by_sigterm"] else " (SIGTERM did not stop it: killed)"),
    ]
    return "\n".join(lines)


def write_results(directory: Path, stamp: str, result: dict[str, Any], name: str = "throughput") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}-{stamp}.json"
    partial = path.with_suffix(".json.tmp")
    partial.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
    partial.replace(path)
    return path


# -- main --------------------------------------------------------------------------------------------------------------


def add_output_option(parser: argparse.ArgumentParser) -> None:
    """``--output``: the directory of a bench script's JSON result (``write_results``)."""
    parser.add_argument(
        "--output",
        type=Path,
        default=Path("bench/results"),
        help="directory of the JSON result (default bench/results)",
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Needs the local Kafka broker (deploy/local/kpimon-local up). Details: docs/benchmarks.md.",
    )
    parser.add_argument("--events", type=int, default=1_000_000, help="events to produce and count (default 1000000)")
    parser.add_argument("--partitions", type=int, default=6, help="partitions of the bench topics (default 6)")
    parser.add_argument("--seed", type=int, default=1, help="simulator seed (default 1)")
    add_output_option(parser)
    parser.add_argument(
        "--skip-produce",
        metavar="TOPIC_PREFIX",
        help="reuse the topics TOPIC_PREFIX.crm and TOPIC_PREFIX.marketing of an earlier --keep run "
        "instead of producing; --events becomes the number of messages in them",
    )
    parser.add_argument(
        "--baseline-runs", type=int, default=3, help="passes of each baseline loop; the median counts (default 3)"
    )
    parser.add_argument(
        "--worker-loglevel",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="the worker's --loglevel (default info, as `kpimon worker`; at warning and error Faust builds a "
        "record for every debug log call, to drive its progress spinner)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the bench topics (default: delete the topics this run created)"
    )
    args = parser.parse_args(argv)
    if min(args.events, args.partitions, args.baseline_runs) < 1:
        parser.error("--events, --partitions and --baseline-runs must be at least 1")
    return args


async def prepare_topics(args: argparse.Namespace, topics: dict[str, str]) -> tuple[int, Phase | None]:
    """Create (or check) the source topics and fill them; the number of events in them."""
    await ensure_topics(BOOTSTRAP, list(topics.values()), args.partitions)
    if args.skip_produce:
        events = await count_messages(list(topics.values()))
        if not events:
            raise SystemExit(f"no messages in {', '.join(topics.values())}")
        print(f"1. reusing {events:,} events in {', '.join(topics.values())}", flush=True)
        return events, None
    print(f"1. producing {args.events:,} events to {', '.join(topics.values())}", flush=True)
    before = cpu_jiffies()
    produced = await produce_events(topics, args.events, args.seed)
    produced.extra["machine_cpu"] = machine_cpu(before, cpu_jiffies())
    return produced.events, produced


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run_id, started = uuid.uuid4().hex[:8], datetime.now(UTC)
    app_id = f"bench-{run_id}"
    prefix = args.skip_produce or app_id
    topics = {"crm": f"{prefix}.crm", "marketing": f"{prefix}.marketing"}
    result: dict[str, Any] = {
        "run_id": run_id,
        "started_at": started.isoformat(timespec="seconds"),
        "partitions": args.partitions,
        "seed": args.seed,
        "topics": topics,
        "machine": machine(),
        "load_average_start": list(os.getloadavg()),
    }
    phases: dict[str, Phase] = {}
    try:
        events, produced = asyncio.run(prepare_topics(args, topics))
        if produced:
            phases["produce"] = produced
        print("2. baselines: a bare aiokafka consume loop", flush=True)
        source = list(topics.values())
        runs = args.baseline_runs
        phases["raw"] = baseline(source, events, "aiokafka + orjson", decode, runs)
        phases["validated"] = baseline(source, events, "aiokafka + orjson + parse_event", decode_and_validate, runs)
        print("3. kpimon worker", flush=True)
        phases["kpimon"] = run_worker(app_id, topics, args.partitions, events, args.worker_loglevel)
    finally:
        if not args.keep:  # this run's topics and the worker's internal ones; reused topics stay
            deleted = asyncio.run(delete_topics([app_id]))
            print(f"deleted {len(deleted)} topics" + (f": {', '.join(deleted)}" if deleted else ""), flush=True)
    result["load_average_end"] = list(os.getloadavg())
    result["events"] = events
    result["phases"] = {name: phase.to_json() for name, phase in phases.items()}
    result["ratios"] = {
        "kpimon_to_raw": ratio(phases["kpimon"], phases["raw"]),
        "kpimon_to_validated": ratio(phases["kpimon"], phases["validated"]),
        "validated_to_raw": ratio(phases["validated"], phases["raw"]),
    }
    print("\n" + report(result, phases) + "\n", flush=True)
    path = write_results(args.output, started.strftime("%Y%m%dT%H%M%SZ"), result)
    print(f"results: {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
