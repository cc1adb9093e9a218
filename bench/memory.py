#!/usr/bin/env python3
"""Memory and restart of the local store (streams.worker.store), against issue 12's targets.

Modes (all by default, in this order):

- ``ids``: load N event ids (default 10 million) into the seen store as the worker does (chunks of a
  batch, 16-byte hashes, one RocksDB key per id), then look ids up; prints RSS and disk bytes per id,
  and, for comparison, the bytes per id of the previous in-memory design (measured on 1 million ids).
- ``entities``: simulated events through the pure pipeline; bytes per entity state by kind (JSON) and
  on disk.
- ``restart``: a worker counts N events (several sizes), stops, and starts again: seconds until it
  serves the same totals from its local store, and from the changelogs after its data dir is deleted.
- ``run``: a worker at a constant rate (``kpimon simulate``) for a while: its RSS every 10 s, and the part of
  it the local store's RocksDB cache holds (``kpimon_store_cache_bytes``, from a scrape). The simulator
  first produces ``--history`` of the past (8 days by default: the dedup horizon and the longest retention
  below a day's buckets), so the run starts with its groups of every resolution and its remembered ids
  in place, as a worker that has run for days; RSS then should stay flat.

Run from the repository root: ``python bench/memory.py`` (or ``make bench-memory``); see
docs/benchmarks.md. Needs the local Kafka and Redis for ``restart`` and ``run``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faust
import orjson
from faust.types import TP

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.throughput import (
    CONFIG_FILE,
    REPO,
    delete_topics,
    fetch_metrics,
    metric_sum,
    produce_events,
    rss_bytes,
    simulated_chunks,
    start_worker,
    stop_worker,
    worker_env,
)
from schemas.config import load_config
from schemas.events import parse_event
from streams.core.dedup import MemorySeen, chunk_key, copy_code, encode_chunk, id_hash
from streams.core.records import Accepted, Position
from streams.ingest.batch import StoredState, plan_batch
from streams.worker.app import ROCKS_STORE, SEEN_STORE, PartitionKeyedTable
from streams.worker.store import shared_cache_usage
from streams.worker.topics import ensure_topics
from tests.integration.support import BOOTSTRAP

MIB = 1024**2
PARTITIONS = 6
BATCH = 2000  # ids per chunk: one batch of one partition


def disk_bytes(path: Path) -> int:
    return sum(file.stat().st_size for file in path.rglob("*") if file.is_file())


def open_store(data_dir: Path, store: str, name: str) -> Any:
    """A table's store with every partition held, as in a worker (no broker needed)."""
    app = faust.App("bench-memory", broker="kafka://127.0.0.1:1", store="rocksdb://", datadir=str(data_dir))
    table = PartitionKeyedTable(app, name=name, default=None, partitions=PARTITIONS, key_type=str)
    table.store_url = store
    data = table.data
    topic = table.changelog_topic.get_topic_name()
    app.assignor.assigned_actives = lambda: {TP(topic, p) for p in range(PARTITIONS)}  # type: ignore[method-assign]
    for partition in range(PARTITIONS):
        data._db_for_partition(partition)
    return data


# -- ids ---------------------------------------------------------------------------------------------------------------


def _old_design_bytes_per_id(count: int, queue: Any) -> None:
    """The previous design: a SeenBatch dict per batch (id -> [topic, offset]) and an index dict, in memory."""
    before = rss_bytes(os.getpid())
    batches: dict[str, dict[str, Any]] = {}
    index: dict[tuple[int, str], tuple[str, int]] = {}
    for start in range(0, count, BATCH):
        ids = {f"sim-7-{n}": ["crm.events", n] for n in range(start, start + BATCH)}
        batches[f"0|run-{start}"] = {"newest": 0, "ids": ids}
        for event_id, (topic, offset) in ids.items():
            index[(0, event_id)] = (str(topic), int(offset))
    queue.put((rss_bytes(os.getpid()) - before) / count)


def bench_ids(count: int) -> dict[str, Any]:
    queue: Any = multiprocessing.get_context("fork").Queue()
    old = multiprocessing.get_context("fork").Process(target=_old_design_bytes_per_id, args=(1_000_000, queue))
    old.start()
    old_bytes = queue.get()
    old.join()
    with tempfile.TemporaryDirectory(prefix="kpimon-ids-") as tmp:
        store = open_store(Path(tmp), SEEN_STORE, "seen")
        gc.collect()
        rss_before = rss_bytes(os.getpid())
        started, samples = time.monotonic(), []
        for number, start in enumerate(range(0, count, BATCH)):
            partition = number % PARTITIONS
            entries = {id_hash(f"sim-7-{n}"): copy_code("crm.events", n) for n in range(start, start + BATCH)}
            store[chunk_key(partition, 20_000 + number * 8 // (count // BATCH + 1), f"run-{number}")] = encode_chunk(
                entries
            )
            store.checkpoint()
            if (start + BATCH) % (count // 10) < BATCH:
                samples.append((start + BATCH, rss_bytes(os.getpid())))
        load_seconds = time.monotonic() - started
        for db in store._dbs.values():
            db.flush()
        rss_loaded = rss_bytes(os.getpid())
        half = min(samples, key=lambda sample: abs(sample[0] - count // 2))
        per_id_second_half = (rss_loaded - half[1]) / (count - half[0])
        lookups, hits = 200_000, 0
        started = time.monotonic()
        for n in range(0, lookups):
            event = n * (count // lookups) if n % 2 else count + n  # half remembered ids, half absent ones
            partition = (event // BATCH) % PARTITIONS
            hits += store.first_copy(partition, id_hash(f"sim-7-{event}")) is not None
        lookup_us = (time.monotonic() - started) / lookups * 1e6
        time.sleep(5)  # let flushes and compactions settle before the disk is measured
        on_disk = disk_bytes(Path(tmp))
        result = {
            "ids": count,
            "load_seconds": round(load_seconds, 1),
            "ids_per_second": round(count / load_seconds),
            "rss_before_mib": round(rss_before / MIB, 1),
            "rss_after_mib": round(rss_loaded / MIB, 1),
            "rss_bytes_per_id_first_to_last": round((rss_loaded - rss_before) / count, 2),
            "rss_bytes_per_id_second_half": round(per_id_second_half, 2),
            "rss_timeline_mib": [(ids, round(rss / MIB, 1)) for ids, rss in samples],
            "rocksdb_cache_mib": round(shared_cache_usage() / MIB, 1),
            "disk_bytes_per_id": round(on_disk / count, 1),
            "lookup_microseconds": round(lookup_us, 2),
            "lookup_hits": f"{hits} of {lookups // 2}",
            "old_design_rss_bytes_per_id": round(old_bytes, 1),
            "rss_at_69m_ids_mib_estimate": round(
                (rss_loaded + max(per_id_second_half, 0) * (69_000_000 - count)) / MIB
            ),
        }
    print(json.dumps(result, indent=2))
    return result


# -- entities ----------------------------------------------------------------------------------------------------------


def bench_entities(events: int) -> dict[str, Any]:
    """Simulated events through plan_batch on one partition: the entity states it keeps, and their bytes."""
    config = load_config(REPO / CONFIG_FILE)
    seen = MemorySeen()
    groups: dict[str, Any] = {}
    progress: dict[str, Any] = {}
    entities: dict[str, Any] = {}
    offset = 0
    for chunk in simulated_chunks(events, 11, time.time()):
        records: list[Any] = []
        for _, event in chunk:
            offset += 1
            records.append(Accepted(Position("crm.events", 0, offset), parse_event(orjson.dumps(event))))
        plan = plan_batch(records, StoredState(seen, groups, progress, entities), config)
        for stage in plan.stages:
            groups.update(stage.groups)
            progress.update(stage.progress)
            entities.update(stage.entities)
    sizes: dict[str, list[int]] = {}
    for key, state in entities.items():
        sizes.setdefault(key.split("|", 1)[1].split(":", 1)[0], []).append(len(orjson.dumps(state)))
    with tempfile.TemporaryDirectory(prefix="kpimon-entities-") as tmp:
        store = open_store(Path(tmp), ROCKS_STORE, "entities")
        for key, state in entities.items():
            store[key] = state
        store.checkpoint()
        for db in store._dbs.values():
            db.flush()
        on_disk = disk_bytes(Path(tmp))
    result = {
        "events": events,
        "entities": len(entities),
        "json_bytes_by_kind": {
            kind: {"count": len(values), "mean": round(statistics.mean(values)), "max": max(values)}
            for kind, values in sorted(sizes.items())
        },
        "disk_bytes_per_entity": round(on_disk / max(len(entities), 1)),
    }
    print(json.dumps(result, indent=2))
    return result


# -- restart -----------------------------------------------------------------------------------------------------------


def _wait(check: Callable[[], bool], timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if check():
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError("the worker did not get there in time")


def _read(port: int) -> float:
    text = fetch_metrics(port)
    return sum(metric_sum(text, name) for name in ("kpimon_events_total", "kpimon_events_duplicate_total"))


def _settled(port: int, quiet_seconds: float = 5.0) -> float:
    """The totals once they stopped moving for ``quiet_seconds``: the worker may still count what it sends itself."""
    last = _read(port)
    while True:
        time.sleep(quiet_seconds)
        now = _read(port)
        if now == last:
            return now
        last = now


def bench_restart(sizes: list[int], port: int) -> list[dict[str, Any]]:
    rows = []
    for size in sizes:
        app_id = f"bench-mem-{uuid.uuid4().hex[:8]}"
        topics = {"crm": f"{app_id}.crm", "marketing": f"{app_id}.marketing"}
        with tempfile.TemporaryDirectory(prefix="kpimon-restart-") as tmp:
            data = Path(tmp) / "data"
            env = worker_env(app_id, topics, PARTITIONS, data)
            asyncio.run(ensure_topics(BOOTSTRAP, list(topics.values()), PARTITIONS))
            asyncio.run(produce_events(topics, size, seed=3))
            log = Path(tmp) / "worker.log"
            process = start_worker(env, port, "warning", log)
            counted_seconds = _wait(lambda size=size: _read(port) >= size, 3600)
            expected = _settled(port)  # a won deal's subscription.started, sent by the worker, counts too
            stop_worker(process)
            started = time.monotonic()
            process = start_worker(env, port, "warning", log)
            _wait(lambda expected=expected: _read(port) == expected, 600)
            local = time.monotonic() - started  # from the process's start to the same totals served
            stop_worker(process)
            store_mib = disk_bytes(data) / MIB
            shutil.rmtree(data)
            started = time.monotonic()
            process = start_worker(env, port, "warning", log)
            _wait(lambda expected=expected: _read(port) == expected, 3600)
            restored = time.monotonic() - started
            stop_worker(process)
            asyncio.run(delete_topics([app_id]))
        row = {
            "events": size,
            "first_count_seconds": round(counted_seconds, 1),
            "store_mib": round(store_mib, 1),
            "restart_local_store_seconds": round(local, 1),
            "restart_from_changelogs_seconds": round(restored, 1),
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


# -- run ---------------------------------------------------------------------------------------------------------------


def _store_cache_bytes(port: int) -> float:
    """``kpimon_store_cache_bytes`` from /metrics (a scrape, as Prometheus would make); 0 while it answers 503."""
    try:
        return metric_sum(fetch_metrics(port), "kpimon_store_cache_bytes")
    except urllib.error.HTTPError:
        return 0.0


def _spread_percent(values: list[float]) -> float:
    return round((max(values) - min(values)) / min(values) * 100, 1)


def bench_run(rate: int, minutes: float, history: str, port: int) -> dict[str, Any]:
    app_id = f"bench-run-{uuid.uuid4().hex[:8]}"
    topics = {"crm": f"{app_id}.crm", "marketing": f"{app_id}.marketing"}
    with tempfile.TemporaryDirectory(prefix="kpimon-run-") as tmp:
        env = worker_env(app_id, topics, PARTITIONS, Path(tmp) / "data")
        asyncio.run(ensure_topics(BOOTSTRAP, list(topics.values()), PARTITIONS))
        process = start_worker(env, port, "warning", Path(tmp) / "worker.log")
        command = [sys.executable, "-m", "streams.tools.cli", "simulate", "--rate", str(rate), "--history", history,
                   "--duration", str(int(minutes * 60)), "--config", str(REPO / CONFIG_FILE)]  # fmt: skip
        simulator = subprocess.Popen(command, env={**os.environ, **env}, stdout=subprocess.DEVNULL)
        timeline: list[tuple[int, float, float]] = []  # seconds, RSS MiB, the store's cache MiB
        started = time.monotonic()
        while simulator.poll() is None:
            time.sleep(10)
            rss, cache = rss_bytes(process.pid) / MIB, _store_cache_bytes(port) / MIB
            timeline.append((round(time.monotonic() - started), round(rss, 1), round(cache, 1)))
            print(f"  {timeline[-1][0]:>5} s  RSS {rss:7.1f} MiB, the store's cache {cache:6.1f} MiB", flush=True)
        counted = _read(port)
        stop_worker(process)
        asyncio.run(delete_topics([app_id]))
    second_half = [(rss, cache) for seconds, rss, cache in timeline if seconds >= timeline[-1][0] / 2]
    rss_values = [rss for rss, _ in second_half]
    without_cache = [rss - cache for rss, cache in second_half]
    result = {
        "rate": rate,
        "minutes": minutes,
        "history": history,
        "events_counted": counted,
        "rss_mib_min_max_second_half": [min(rss_values), max(rss_values)],
        "second_half_spread_percent": _spread_percent(rss_values),
        "store_cache_mib_min_max_second_half": [min(c for _, c in second_half), max(c for _, c in second_half)],
        "rss_without_store_cache_second_half_spread_percent": _spread_percent(without_cache),
        "timeline": timeline,
    }
    print(json.dumps({k: v for k, v in result.items() if k != "timeline"}, indent=2))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("modes", nargs="*", default=["ids", "entities", "restart", "run"])
    parser.add_argument("--ids", type=int, default=10_000_000)
    parser.add_argument("--entity-events", type=int, default=100_000)
    parser.add_argument("--restart-sizes", default="20000,60000,120000")
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--history", default="8d", help="past produced before the live run (0: none; default 8d)")
    parser.add_argument("--port", type=int, default=6091)
    args = parser.parse_args()
    results: dict[str, Any] = {}
    if "ids" in args.modes:
        results["ids"] = bench_ids(args.ids)
    if "entities" in args.modes:
        results["entities"] = bench_entities(args.entity_events)
    if "restart" in args.modes:
        results["restart"] = bench_restart([int(size) for size in args.restart_sizes.split(",")], args.port)
    if "run" in args.modes:
        results["run"] = bench_run(args.rate, args.minutes, args.history, args.port)
    out = REPO / "bench" / "results" / f"memory-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
