#!/usr/bin/env python3
"""CPU per event of a worker's pure work, without Kafka or Faust: a figure that others' load does not move.

The activity events of a peers run (bench/peers_events.py: R reps in T teams, event times rising
through the last two hours) are encoded as messages on the partitions of their routing keys, cut
into fetches of ``--batch`` messages, and taken through what the worker does with each fetch:
``validate_message``, ``plan_batch``, the writes of every stage into in-memory tables (values
serialised with orjson, as a store would), the /metrics totals told of every write, the eviction of
expired groups; and, every ``--refresh-every`` batches, a /metrics refresh (totals synced, windows
moved, changed families rendered and joined). Each phase is timed with ``time.process_time``, the
CPU of this process only, so a busy machine slows the run but hardly changes the figures.

Run from the repository root: ``python bench/core_cpu.py`` (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar, cast

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # `python bench/core_cpu.py` puts only bench/ on the path

from bench.peers_events import activity_chunks, make_roster, write_config  # noqa: E402
from schemas.catalog import load_catalog  # noqa: E402
from schemas.config import KpimonConfig, load_config  # noqa: E402
from schemas.events import routing_key  # noqa: E402
from streams.core.dedup import MemorySeen, chunk_key, encode_chunk  # noqa: E402
from streams.core.folding import BucketGroup, GroupEnds, ProgressValue  # noqa: E402
from streams.core.records import Accepted, Position, Record, Rejected  # noqa: E402
from streams.core.validation import Rejection, validate_message  # noqa: E402
from streams.entities.registry import EntityState  # noqa: E402
from streams.ingest.batch import BatchPlan, StoredState, plan_batch  # noqa: E402
from streams.metrics.exposition import KpiExposition  # noqa: E402
from streams.readout.open_pipeline import OpenPipeline  # noqa: E402
from streams.readout.window_totals import WindowTotals  # noqa: E402
from streams.worker.pipeline import partition_of  # noqa: E402
from streams.worker.settings import Settings  # noqa: E402

T = TypeVar("T")
TOPIC = "bench.crm"
MAX_EVENT_BYTES = 64 * 1024


class Timer:
    """CPU seconds per phase, by ``time.process_time``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def run(self, phase: str, work: Callable[..., T], *args: Any) -> T:
        started = time.process_time()
        result = work(*args)
        self.seconds[phase] = self.seconds.get(phase, 0.0) + time.process_time() - started
        return result


def fetches(reps: int, teams: int, events: int, partitions: int, batch: int, seed: int) -> Iterator[list[Any]]:
    """The events as fetches of (topic, partition, offset, value), each fetch's messages by partition."""
    offsets = [0] * partitions
    pending: list[tuple[int, int, bytes]] = []
    end = time.time() // 3600 * 3600 - 1  # the same minutes in every run of the hour
    for chunk in activity_chunks(make_roster(reps, teams), events, seed, end, "core-cpu"):
        for _, event in chunk:
            partition = partition_of(event["event_id"], partitions)
            pending.append((partition, offsets[partition], orjson.dumps(event)))
            offsets[partition] += 1
    for first in range(0, len(pending), batch):
        yield sorted(pending[first : first + batch], key=lambda message: message[:2])


def drain(steps: Iterator[None]) -> None:
    for _ in steps:
        pass


def run(args: argparse.Namespace) -> dict[str, Any]:
    """``--repeat`` runs over the same events, each from empty state; per phase the least CPU of any run."""
    with tempfile.TemporaryDirectory(prefix="kpimon-core-cpu-") as scratch:
        config = load_config(write_config(make_roster(args.reps, args.teams), Path(scratch) / "kpimon.yaml"))
    batches = list(fetches(args.reps, args.teams, args.events, args.partitions, args.batch, args.seed))
    events = sum(len(batch) for batch in batches)
    runs = [measure(args, config, batches) for _ in range(args.repeat)]
    least = {phase: min(seconds[phase] for seconds, _, _ in runs) for phase in runs[0][0]}
    per_event = {phase: round(seconds * 1e6 / events, 2) for phase, seconds in least.items()}
    return {
        "events": events,
        "reps": args.reps,
        "teams": args.teams,
        "partitions": args.partitions,
        "batch": args.batch,
        "runs": args.repeat,
        "groups_stored": runs[0][1],
        "group_writes_per_event": round(runs[0][2] / events, 3),
        "cpu_us_per_event": {**per_event, "total": round(sum(per_event.values()), 2)},
        "cpu_us_per_event_of_each_run": [round(sum(seconds.values()) * 1e6 / events, 2) for seconds, _, _ in runs],
    }


def measure(
    args: argparse.Namespace, config: KpimonConfig, batches: list[list[Any]]
) -> tuple[dict[str, float], int, int]:
    """One run over the fetches from empty state: CPU seconds per phase, the groups stored at the end and written."""
    catalog = load_catalog()
    seen = MemorySeen()
    groups: dict[str, BucketGroup] = {}
    progress: dict[str, ProgressValue] = {}
    entities: dict[str, EntityState] = {}
    totals = WindowTotals(config, int(time.time()))
    exposition = KpiExposition(catalog, totals, OpenPipeline(config))
    timer, known, group_ends = Timer(), config.known_currencies(), GroupEnds(config)
    written = [0]  # group writes (changelog records of the buckets table)

    def validate(batch: list[Any]) -> list[Record]:
        now = time.time()
        records: list[Record] = []
        for partition, offset, value in batch:
            position = Position(TOPIC, partition, offset)
            outcome = validate_message(
                value,
                max_bytes=MAX_EVENT_BYTES,
                now=now,
                future_tolerance_seconds=300,
                past_horizon_seconds=800 * 86_400,
                known_currencies=known,
            )
            if isinstance(outcome, Rejection):
                records.append(Rejected(position, outcome))
            elif partition != partition_of(routing_key(outcome), args.partitions):
                raise ValueError("the events are produced to the partitions of their routing keys")
            else:
                records.append(Accepted(position, outcome))
        return records

    def write(plan: BatchPlan, number: int) -> None:
        for stage in plan.stages:
            for partition, chunk in stage.seen.items():
                seen[chunk_key(partition, chunk.day, f"core-cpu-{number}")] = encode_chunk(chunk.entries)
            for table, changed in (
                (cast(dict[str, Any], groups), stage.groups),
                (cast(dict[str, Any], progress), stage.progress),
                (entities, stage.entities),
            ):
                for key, value in changed.items():
                    orjson.dumps(value)  # what a store and a changelog record would hold
                    table[key] = value
            if stage.groups:
                totals.apply(stage.groups)
                written[0] += len(stage.groups)

    def evict() -> None:
        watermarks = {int(key): value["watermark"] for key, value in progress.items()}
        expired = group_ends.expired(list(groups), watermarks)
        for key in expired:
            del groups[key]
        if expired:
            totals.apply(dict.fromkeys(expired))

    def refresh() -> None:
        drain(totals.sync())
        drain(totals.advance(int(time.time())))
        drain(exposition.render())
        drain(exposition.assemble())

    for number, batch in enumerate(batches, 1):
        records = timer.run("validate", validate, batch)
        plan = timer.run("plan_batch", plan_batch, records, StoredState(seen, groups, progress, entities), config)
        timer.run("write", write, plan, number)
        timer.run("evict", evict)
        if number % args.refresh_every == 0:
            timer.run("refresh", refresh)
    timer.run("refresh", refresh)
    events = sum(len(batch) for batch in batches)
    counted = sum(sum(value["events"].values()) for value in progress.values())
    if counted != events:
        raise RuntimeError(f"{counted} events counted of {events}")
    return timer.seconds, len(groups), written[0]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=30_000, help="activity events (default 30000)")
    parser.add_argument("--reps", type=int, default=200, help="reps (default 200)")
    parser.add_argument("--teams", type=int, default=5, help="teams (default 5)")
    parser.add_argument("--partitions", type=int, default=6, help="partitions (default 6)")
    parser.add_argument(
        "--batch",
        type=int,
        default=Settings.model_fields["batch_size"].default,
        help="messages per fetch (default: the worker's, %(default)s)",
    )
    parser.add_argument("--refresh-every", type=int, default=2, help="a /metrics refresh every N batches (default 2)")
    parser.add_argument("--repeat", type=int, default=3, help="runs over the events; the least CPU counts (default 3)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated events (default 1)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    print(json.dumps(run(parse_args(argv)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
