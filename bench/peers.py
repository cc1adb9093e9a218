#!/usr/bin/env python3
"""kpimon against its peers: the same freshly produced events through four consumers, one after the other.

1. produce N *activity* events (calls, emails sent and replied, meetings booked and held, demos: valid
   contract events) of R reps in T teams to a fresh topic ``bench-<run id>.crm`` with P partitions.
   Key: the event_id, value: orjson, ``acks=all``. Their event times rise evenly through the two hours
   before the run, so they fall into live windows and none is late for kpimon;
2. read the topic from the beginning with each consumer in turn, each in a process of its own with a
   fresh consumer group, until it has handled all N events:

   bare    aiokafka ``getmany(max_records=10000)`` + ``orjson.loads`` + a count per (rep, type) in a dict;
   quix    Quix Streams: ``group_by("rep_id")`` (a repartition topic), then a 1-minute tumbling window
           by event time (``occurred_at``) counting per rep, its live value (``.current()``); the window
           state lives in RocksDB with a changelog topic. The grace period covers the whole two hours,
           so events that the repartitioning interleaves out of order still count. It runs with the
           interpreter of its own venv (``--quix-python``, .venv-peers: Quix Streams caps pydantic below
           kpimon's pins), as bench/peers_quix.py;
   faust   a Faust agent without tables: ``take_events(2000, within=1)`` + ``orjson.loads`` of each
           message's value + a count per (rep, type) in a dict; the 1 s the last, partial batch waits
           for more is left out;
   kpimon  a real ``kpimon worker`` (bench/throughput.py's harness) with a roster of the R reps in
           T teams and every KPI, followed by its consumer group's committed offsets (scraping
           /metrics, 30,000 series with 200 reps, would stall it), until they reach N; then one
           scrape checks that ``kpimon_events_total`` is N.

   The peers run three times each (``--passes``), the median counts; kpimon runs once;

3. for each: events/s sustained (first event seen to the N-th), the CPU time of its process
   (``/proc``), and its peak RSS (VmHWM; for kpimon the largest VmRSS sampled every second);
4. print a table with each consumer's share of the bare loop and its ratio to Quix Streams, write
   every figure to bench/results/peers-<UTC stamp>.json, and delete the run's topics (also the
   consumers' internal ones: repartition, changelog, assignor, dead letters).

The four run one after the other on the same broker, minutes apart: on a shared machine the rates
move from run to run, their ratios much less.

``--reps-sweep 10,1000`` runs only the kpimon worker, once per roster size, each on its own fresh
topic with the same number of events, and prints how its rate changes with the roster.

``--scale-out 2`` runs one kpimon worker, then two started together in one consumer group of their own,
on the same events (followed by the group's commits), and prints their rates and whether the workers'
``kpimon_events_total`` sum to exactly N.

Run from the repository root: ``python bench/peers.py`` (or ``make bench-peers``, which also creates
.venv-peers). The modules: bench/peers_events.py (the events), bench/peers_runs.py (running each consumer),
bench/peers_consumers.py and bench/peers_quix.py (the consumer processes), bench/peers_report.py (the report).
See docs/benchmarks.md, "Against the peers".
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # `python bench/peers.py` puts only bench/ on the path

# the peers_* siblings by their own names (bench/ is on the path, and has no __init__.py: mypy names them so too)
from peers_events import make_roster, produce, source_topics  # noqa: E402
from peers_report import (  # noqa: E402
    CONSUMERS,
    cpu_per_event_us,
    rate_ratio,
    ratios,
    report,
    scale_out_report,
    sweep_report,
    versions,
)
from peers_runs import quix_versions, run_consumer, run_kpimon, run_kpimon_workers  # noqa: E402

from bench.throughput import Phase, add_output_option, delete_topics, machine, write_results  # noqa: E402

QUIX_PYTHON = Path(".venv-peers/bin/python")  # made by `make bench-peers` from bench/requirements-peers.txt
SIZES = {  # the options that size a run: default, what they count
    "--events": (1_000_000, "activity events to produce and count: rates by commits need runs of a minute or more"),
    "--reps": (200, "reps the events belong to"),
    "--teams": (5, "teams the reps are dealt to"),
    "--partitions": (6, "partitions of the bench topic"),
}


# -- the two modes -----------------------------------------------------------------------------------------------------


def base_result(args: argparse.Namespace, run_id: str, started: datetime, mode: str) -> dict[str, Any]:
    python = args.quix_python.relative_to(REPO) if args.quix_python.is_relative_to(REPO) else args.quix_python.name
    quix = {"python_executable": str(python), **args.quix} if args.quix else None  # no machine paths in results
    return {
        "run_id": run_id,
        "mode": mode,
        "started_at": started.isoformat(timespec="seconds"),
        "events": args.events,
        "reps": args.reps,
        "teams": args.teams,
        "partitions": args.partitions,
        "seed": args.seed,
        "machine": machine(),
        "versions": versions(args.quix),
        "quix_venv": quix,
        "load_average_start": list(os.getloadavg()),
    }


def run_peers(args: argparse.Namespace, prefix: str, result: dict[str, Any]) -> str:
    """Produce once, then each chosen consumer on the same topic; the report."""
    roster = make_roster(args.reps, args.teams)
    phases = {"produce": asyncio.run(produce(prefix, roster, args.events, args.partitions, args.seed))}
    for kind in args.only:
        phases[kind] = run_consumer(kind, prefix, roster, args)
    result["topic"] = source_topics(prefix)["crm"]
    result["phases"] = {name: phase.to_json() for name, phase in phases.items()}
    result["ratios"] = ratios(phases)
    return report(result, phases)


def run_sweep(args: argparse.Namespace, prefix: str, result: dict[str, Any]) -> str:
    """The kpimon worker alone, once per roster size, each on fresh topics with the same number of events."""
    runs: dict[int, Phase] = {}
    for reps in args.reps_sweep:
        sized, roster = f"{prefix}-r{reps}", make_roster(reps, args.teams)
        asyncio.run(produce(sized, roster, args.events, args.partitions, args.seed))
        print(f"kpimon worker, {reps:,} reps", flush=True)
        runs[reps] = run_kpimon(sized, roster, args.events, args.partitions, args.count_by)
    first, last = runs[args.reps_sweep[0]], runs[args.reps_sweep[-1]]
    result["phases"] = {f"kpimon_reps_{reps}": phase.to_json() for reps, phase in runs.items()}
    result["ratios"] = {
        "rate_largest_to_smallest": rate_ratio(last, first),
        "cpu_per_event_largest_to_smallest": cpu_per_event_us(last) / cpu_per_event_us(first),
    }
    return sweep_report(result, runs)


def run_scale_out(args: argparse.Namespace, prefix: str, result: dict[str, Any]) -> str:
    """One kpimon worker, then ``--scale-out`` workers in a group of their own, on the same events."""
    roster = make_roster(args.reps, args.teams)
    asyncio.run(produce(prefix, roster, args.events, args.partitions, args.seed))
    print("kpimon worker, alone", flush=True)
    one = run_kpimon(prefix, roster, args.events, args.partitions, "commits")
    print(f"kpimon workers, {args.scale_out} together", flush=True)
    many = run_kpimon_workers(prefix, roster, args.events, args.partitions, args.scale_out)
    result["phases"] = {"kpimon_1": one.to_json(), f"kpimon_{args.scale_out}": many.phase.to_json()}
    result["events_counted_per_worker"] = many.events_counted
    result["ratios"] = {"rate_many_to_one": rate_ratio(many.phase, one)}
    return scale_out_report(result, one, many.phase, many.events_counted)


# -- main --------------------------------------------------------------------------------------------------------------


def comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Needs the local Kafka broker (deploy/local/kpimon-local up) and, for quix, Quix Streams' venv "
        "(make bench-peers creates it). Details: docs/benchmarks.md.",
    )
    for flag, (default, what) in SIZES.items():
        parser.add_argument(flag, type=int, default=default, help=f"{what} (default {default})")
    parser.add_argument(
        "--only",
        type=comma_list,
        default=list(CONSUMERS),
        metavar="LIST",
        help=f"the consumers to run, comma-separated, in this order: {','.join(CONSUMERS)} (default all)",
    )
    parser.add_argument(
        "--reps-sweep",
        type=lambda text: [int(item) for item in comma_list(text)],
        metavar="R1,R2,...",
        help="instead: run only the kpimon worker once per roster size (e.g. 10,1000), each on fresh topics, "
        "and compare its rates (the issue's target: within 20%%)",
    )
    parser.add_argument(
        "--scale-out",
        type=int,
        metavar="N",
        help="instead: run one kpimon worker, then N workers in one consumer group, on the same events; "
        "their rates and whether their totals sum to exactly the events (the issue's target: 1.6x with 2)",
    )
    parser.add_argument(
        "--count-by",
        choices=["commits", "metrics"],
        default="commits",
        help="how the harness follows the kpimon worker's count: its consumer group's committed offsets, which "
        "costs the worker nothing (default), or scrapes of /metrics as bench/throughput.py does (each blocks "
        "the worker while it renders every series)",
    )
    parser.add_argument(
        "--passes",
        type=int,
        default=3,
        help="runs of each peer (bare, quix, faust), each in a fresh process and group; the median counts "
        "(default 3; kpimon runs once)",
    )
    parser.add_argument(
        "--quix-python",
        type=Path,
        default=QUIX_PYTHON,
        metavar="PATH",
        help=f"the interpreter of Quix Streams' own venv, which runs bench/peers_quix.py (default {QUIX_PYTHON}, "
        "made by make bench-peers from bench/requirements-peers.txt)",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated events (default 1)")
    add_output_option(parser)
    parser.add_argument("--keep", action="store_true", help="keep the run's topics (default: delete them at the end)")
    args = parser.parse_args(argv)
    check_args(parser, args)
    return args


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Check the options; ``args.quix``: the versions in Quix Streams' venv, or None where it does not run."""
    if min(args.events, args.reps, args.teams, args.partitions, args.passes, *(args.reps_sweep or [1])) < 1:
        parser.error("--events, --reps, --teams, --partitions, --passes and the --reps-sweep sizes must be at least 1")
    if unknown := [kind for kind in args.only if kind not in CONSUMERS]:
        parser.error(f"--only: unknown consumer {', '.join(unknown)} (choose from {', '.join(CONSUMERS)})")
    args.only = [kind for kind in CONSUMERS if kind in args.only]
    if args.reps_sweep is not None and len(args.reps_sweep) < 2:
        parser.error("--reps-sweep needs at least two roster sizes")
    args.quix, args.quix_python = None, args.quix_python.absolute()  # not resolve(): that leaves the venv
    if args.scale_out is not None and args.scale_out < 2:
        parser.error("--scale-out needs at least 2 workers")
    if args.reps_sweep is not None or args.scale_out is not None or "quix" not in args.only:
        return
    fix = "run `make bench-peers` (it creates .venv-peers), or leave Quix Streams out: --only bare,faust,kpimon"
    if not args.quix_python.exists():
        parser.error(f"Quix Streams' interpreter {args.quix_python} does not exist: {fix}")
    try:
        args.quix = quix_versions(args.quix_python)
    except RuntimeError as error:
        parser.error(f"{args.quix_python} cannot run Quix Streams ({error}): {fix}")


def topic_prefixes(prefix: str) -> list[str]:
    """The run's topics, the consumers' internal ones included (Quix Streams puts its own prefix in front)."""
    return [prefix, f"repartition__{prefix}", f"changelog__{prefix}"]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run_id, started = uuid.uuid4().hex[:8], datetime.now(UTC)
    mode = "reps-sweep" if args.reps_sweep else "scale-out" if args.scale_out else "peers"
    prefix, result = f"bench-{run_id}", base_result(args, run_id, started, mode)
    run_mode = {"reps-sweep": run_sweep, "scale-out": run_scale_out, "peers": run_peers}[mode]
    try:
        text = run_mode(args, prefix, result)
    finally:
        if not args.keep:
            deleted = asyncio.run(delete_topics(topic_prefixes(prefix)))
            print(f"deleted {len(deleted)} topics" + (f": {', '.join(deleted)}" if deleted else ""), flush=True)
    result["load_average_end"] = list(os.getloadavg())
    print("\n" + text + "\n", flush=True)
    name = "peers" if mode == "peers" else f"peers-{mode}"
    path = write_results(args.output, started.strftime("%Y%m%dT%H%M%SZ"), result, name)
    print(f"results: {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
