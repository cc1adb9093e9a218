"""The consumer runs of a peers run (bench/peers.py): each consumer in a process of its own, and its figures.

The bare loop and the Faust agent run as bench/peers_consumers.py with this interpreter, Quix Streams as
bench/peers_quix.py with the interpreter of its own venv (``--quix-python``). Each gets a JSON spec and writes
its figures to a result file, which this side polls for; its progress lines come out on our stdout, its logs go
to a file that is shown when it fails. The kpimon worker runs with bench/throughput.py's harness.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiokafka.admin import AIOKafkaAdminClient
from peers_events import Roster, source_topics, write_config  # a sibling: see bench/peers.py's imports

from bench.throughput import (
    EVENT_SPAN_SECONDS,
    EVENTS_TOTAL,
    PROGRESS_SECONDS,
    REPO,
    Phase,
    Progress,
    cpu_jiffies,
    cpu_seconds,
    fetch_metrics,
    machine_cpu,
    median_pass,
    metric_sum,
    run_worker,
    start_worker,
    stop_worker,
    worker_env,
)
from tests.integration.support import BOOTSTRAP, free_port

CONSUMERS_SCRIPT = REPO / "bench" / "peers_consumers.py"  # bare, faust: with this interpreter
QUIX_SCRIPT = REPO / "bench" / "peers_quix.py"  # quix: with the interpreter of .venv-peers
GRACE_MS = (EVENT_SPAN_SECONDS + 600) * 1000  # Quix Streams' window: wide enough that no event is late
WORKER_LOGLEVEL = "info"  # as `kpimon worker` (see docs/benchmarks.md on warning)
CHILD_TIMEOUT_SECONDS = 3600.0
CHILD_STOP_SECONDS = 10.0
POLL_SECONDS = 0.2
SHORT_RUN_SECONDS = 30.0  # by commits (every 2.8 s), kpimon's time is known to a few seconds: run it longer


def quix_versions(python: Path) -> dict[str, str]:
    """Python's and the packages' versions in Quix Streams' venv; RuntimeError where it cannot run the consumer."""
    try:
        done = subprocess.run([python, QUIX_SCRIPT, "--versions"], capture_output=True, check=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as error:
        detail = getattr(error, "stderr", None) or str(error).encode()
        raise RuntimeError(detail.decode(errors="replace").strip().splitlines()[-1]) from error
    return dict(orjson.loads(done.stdout))


def child_spec(kind: str, topic: str, events: int, partitions: int, group: str, scratch: Path) -> dict[str, Any]:
    """What a consumer process reads (the JSON spec it gets), how much, under which group; where it writes."""
    return {
        **{"kind": kind, "topic": topic, "events": events, "partitions": partitions, "group": group},
        **{"bootstrap": BOOTSTRAP, "scratch": str(scratch), "result": str(scratch / "result.json")},
        **{"grace_ms": GRACE_MS, "progress_seconds": PROGRESS_SECONDS},
    }


def await_result(process: subprocess.Popen[bytes], kind: str, result_path: Path) -> dict[str, Any]:
    """The consumer's result, once it has written it."""
    deadline = time.monotonic() + CHILD_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if result_path.exists():
            return dict(orjson.loads(result_path.read_bytes()))
        if process.poll() is not None and not result_path.exists():
            raise RuntimeError(f"the {kind} consumer exited with {process.returncode} without a result")
        time.sleep(POLL_SECONDS)
    raise TimeoutError(f"the {kind} consumer did not finish within {CHILD_TIMEOUT_SECONDS:.0f} s")


def end_child(process: subprocess.Popen[bytes]) -> None:
    """Let a consumer that has written its result exit; kill it if it does not."""
    try:
        process.wait(timeout=CHILD_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run_child(kind: str, topic: str, events: int, partitions: int, group: str, quix_python: Path) -> Phase:
    """Run one consumer in its own process (progress on our stdout, its logs in a file) and collect its figures."""
    with tempfile.TemporaryDirectory(prefix=f"kpimon-peers-{kind}-") as scratch:
        spec = child_spec(kind, topic, events, partitions, group, Path(scratch))
        spec_path, log_path, before = Path(scratch) / "spec.json", Path(scratch) / "consumer.log", cpu_jiffies()
        spec_path.write_bytes(orjson.dumps(spec))
        python, script = (quix_python, QUIX_SCRIPT) if kind == "quix" else (Path(sys.executable), CONSUMERS_SCRIPT)
        with log_path.open("ab") as log:
            process = subprocess.Popen([python, script, spec_path], cwd=REPO, stderr=log)
        try:
            result = await_result(process, kind, Path(spec["result"]))
        except BaseException:
            process.kill()
            lines = log_path.read_text(errors="replace").splitlines()[-40:]
            print(f"--- {kind} consumer log (last lines) ---\n" + "\n".join(lines), file=sys.stderr)
            raise
        finally:
            end_child(process)
    timing = {name: result.pop(name) for name in ("events", "seconds", "sustained_seconds")}
    extra = {**result, "pid": process.pid, "machine_cpu": machine_cpu(before, cpu_jiffies())}
    return Phase(timing["events"], timing["seconds"], timing["sustained_seconds"], extra)


class CommittedCount:
    """Messages of a topic that a consumer group has committed: a count that costs the worker nothing.

    Faust commits what its agents have processed every 2.8 s (``broker_commit_interval``), so the count
    lags by up to that much, at the first count as at the last: on average the lags cancel out.
    """

    def __init__(self, group: str, topic: str) -> None:
        self.group, self.topic = group, topic
        self.loop = asyncio.new_event_loop()
        self.admin = self.loop.run_until_complete(self.started_admin())

    @staticmethod
    async def started_admin() -> AIOKafkaAdminClient:
        admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)  # needs a running loop
        await admin.start()
        return admin

    def __call__(self) -> int:
        offsets = self.loop.run_until_complete(self.admin.list_consumer_group_offsets(self.group))
        return sum(meta.offset for tp, meta in offsets.items() if tp.topic == self.topic and meta.offset > 0)

    def close(self) -> None:
        self.loop.run_until_complete(self.admin.close())
        self.loop.close()


def run_kpimon(prefix: str, roster: Roster, events: int, partitions: int, count_by: str) -> Phase:
    """bench/throughput.py's kpimon worker run, with a config file of this roster."""
    app_id, topics = f"{prefix}-kpimon", source_topics(prefix)
    committed = CommittedCount(app_id, topics["crm"]) if count_by == "commits" else None
    try:
        with tempfile.TemporaryDirectory(prefix="kpimon-peers-config-") as scratch:
            config = write_config(roster, Path(scratch) / "kpimon.yaml")
            before = cpu_jiffies()
            phase = run_worker(app_id, topics, partitions, events, WORKER_LOGLEVEL, config, committed)
    finally:
        if committed:
            committed.close()
    phase.extra.setdefault("machine_cpu", machine_cpu(before, cpu_jiffies()))
    phase.extra["counted_by"] = count_by
    if count_by == "commits" and phase.sustained_seconds < SHORT_RUN_SECONDS:
        print(f"  kpimon: warning: {phase.sustained_seconds:.1f} s is too short for a rate by commits", flush=True)
    return phase


def run_consumer(kind: str, prefix: str, roster: Roster, args: argparse.Namespace) -> Phase:
    """kpimon once (it runs for minutes); a peer ``--passes`` times, each with a fresh group, the median."""
    if kind == "kpimon":
        print("consumer: kpimon", flush=True)
        return run_kpimon(prefix, roster, args.events, args.partitions, args.count_by)
    passes = []
    for number in range(1, args.passes + 1):
        print(f"consumer: {kind} ({number}/{args.passes})", flush=True)
        group, topic = f"{prefix}-{kind}-{number}", source_topics(prefix)["crm"]
        passes.append(run_child(kind, topic, args.events, args.partitions, group, args.quix_python))
    return median_pass(passes)


@dataclass
class WorkersRun:
    """Several kpimon workers in one consumer group on the same topic, until their commits reach N."""

    phase: Phase
    events_counted: list[int]  # kpimon_events_total of each worker at the end


def run_kpimon_workers(prefix: str, roster: Roster, events: int, partitions: int, workers: int) -> WorkersRun:
    """``workers`` kpimon workers started together (a group of their own), followed by their commits."""
    app_id, topics = f"{prefix}-kpimon-x{workers}", source_topics(prefix)
    committed = CommittedCount(app_id, topics["crm"])
    processes: list[subprocess.Popen[bytes]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="kpimon-peers-workers-") as scratch:
            config = write_config(roster, Path(scratch) / "kpimon.yaml")
            ports = [free_port() for _ in range(workers)]

            def start(number: int) -> subprocess.Popen[bytes]:
                env = worker_env(app_id, topics, partitions, Path(scratch) / f"data-{number}", config)
                return start_worker(env, ports[number], WORKER_LOGLEVEL, Path(scratch) / f"worker-{number}.log")

            with ThreadPoolExecutor(workers) as pool:  # together: none gets a head start on the events
                processes = list(pool.map(start, range(workers)))
            print(f"  kpimon: {workers} workers, pids {', '.join(str(p.pid) for p in processes)}", flush=True)
            before, cpu_before = cpu_jiffies(), [cpu_seconds(p.pid) for p in processes]
            started, first, first_counted = time.monotonic(), 0.0, 0
            progress = Progress(f"kpimon x{workers}", events)
            while (counted := committed()) < events:
                if any(process.poll() is not None for process in processes):
                    raise RuntimeError("a kpimon worker exited")
                if time.monotonic() - started > CHILD_TIMEOUT_SECONDS:
                    raise TimeoutError(f"{workers} workers did not commit {events:,} events")
                if counted and not first:
                    first, first_counted = time.monotonic(), counted
                progress.update(counted)
                time.sleep(POLL_SECONDS)
            done = time.monotonic()
            cpu = sum(cpu_seconds(p.pid) for p in processes) - sum(cpu_before)
            counts = [int(metric_sum(fetch_metrics(port), EVENTS_TOTAL)) for port in ports]
    finally:
        for process in processes:
            stop_worker(process)
        committed.close()
    extra = {"workers": workers, "cpu_seconds": cpu, "machine_cpu": machine_cpu(before, cpu_jiffies())}
    phase = Phase(events, done - started, done - (first or started), extra, events - first_counted if first else None)
    return WorkersRun(phase, counts)
