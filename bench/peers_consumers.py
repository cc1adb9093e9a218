#!/usr/bin/env python3
"""The consumer processes of a peers run (bench/peers.py) that run with kpimon's interpreter: bare and faust.

    python bench/peers_consumers.py SPEC

SPEC is a JSON file the harness writes: the consumer (``kind``), the topic, the number of events, the
partitions, the consumer group, the broker, a ``scratch`` directory and the ``result`` file. The consumer reads
the topic from the beginning with that group until it has handled the events, and writes its figures to the
result file. Progress lines go to stdout, logs to stderr. Quix Streams' consumer is bench/peers_quix.py, run
with the interpreter of its own venv (.venv-peers).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # `python bench/peers_consumers.py` puts only bench/ on the path

from bench.throughput import Progress, consume_baseline, rss_bytes  # noqa: E402

if TYPE_CHECKING:
    from faust.types import StreamT

FAUST_BATCH, FAUST_WITHIN_SECONDS = 2000, 1.0
FAUST_LOGLEVEL = "info"  # as `kpimon worker`


def own_memory(field_name: str) -> int:
    """A line of /proc/self/status (VmRSS, VmHWM), in bytes."""
    return rss_bytes(os.getpid(), field_name)


@dataclass
class Tally:
    """Counts of a consumer: per key, in all; when the first event came, when the last, the CPU time then."""

    events: int
    label: str
    counts: Counter[Any] = field(default_factory=Counter)
    total: int = 0
    started: float = field(default_factory=time.monotonic)
    cpu_at_start: float = field(default_factory=time.process_time)
    rss_at_start: int = field(default_factory=lambda: own_memory("VmRSS"))
    first: float = 0.0
    last_arrival: float = 0.0
    done: float = 0.0
    idle_tail_seconds: float = 0.0
    cpu_seconds: float = 0.0
    progress: Progress | None = None

    def add_value(self, value: bytes) -> None:
        """The bare loop's and Faust's work per message: decode, count per (rep, type)."""
        event = orjson.loads(value)
        self.counts[event["rep_id"], event["type"]] += 1

    def arrived(self) -> None:
        """A message reached the consumer (before it is batched)."""
        self.last_arrival = time.monotonic()
        if not self.first:
            self.first = self.last_arrival
            self.progress = Progress(self.label, self.events, started=self.first)

    def skip_idle_tail(self, last_batch_seconds: float) -> None:
        """Stop the clock when the last batch could have been counted: not after waiting for more that never came.

        ``take_events`` hands over a batch when it is full or after ``within`` seconds without one: the last,
        partial batch waits for nothing. Counted from the last arrival plus the time its batch took.
        """
        idle = self.done - last_batch_seconds - self.last_arrival
        if idle > 0:
            self.done, self.idle_tail_seconds = self.done - idle, idle

    def handled(self, count: int) -> bool:
        """``count`` more events handled; True (and the clock stopped) once all are."""
        self.total += count
        if self.progress:
            self.progress.update(self.total)
        if self.total < self.events:
            return False
        if not self.done:
            self.done, self.cpu_seconds = time.monotonic(), time.process_time() - self.cpu_at_start
            if self.progress:
                self.progress.update(self.total, force=True)
        return True

    def result(self) -> dict[str, Any]:
        return {
            "events": self.total,
            "seconds": self.done - self.started,
            "sustained_seconds": self.done - self.first,
            "cpu_seconds": self.cpu_seconds,
            "time_to_first_event_seconds": self.first - self.started,
            "rss_at_start_bytes": self.rss_at_start,
            "peak_rss_bytes": own_memory("VmHWM"),
            "idle_tail_seconds": self.idle_tail_seconds,
            "counted": sum(self.counts.values()),
            "keys": len(self.counts),
        }


def write_result(spec: dict[str, Any], result: dict[str, Any]) -> None:
    """The figures for the harness, in one step (it polls for the file)."""
    partial = Path(spec["result"] + ".tmp")
    partial.write_bytes(orjson.dumps(result))
    partial.replace(spec["result"])


def consume_bare(spec: dict[str, Any]) -> None:
    """aiokafka getmany + orjson + a count per (rep, type): bench/throughput.py's loop with this handler."""
    tally = Tally(spec["events"], "bare loop")
    phase = asyncio.run(consume_baseline([spec["topic"]], spec["events"], "bare loop", tally.add_value))
    timing = {"events": phase.events, "seconds": phase.seconds, "sustained_seconds": phase.sustained_seconds}
    write_result(spec, {**tally.result(), **timing, **phase.extra})


def consume_faust(spec: dict[str, Any]) -> None:
    """A Faust agent without tables: take_events + orjson + count per (rep, type); exits once N are counted."""
    import faust

    tally = Tally(spec["events"], "Faust agent")
    app = faust.App(
        spec["group"],
        broker=f"kafka://{spec['bootstrap']}",
        store="memory://",
        datadir=str(Path(spec["scratch"]) / "data"),
        web_enabled=False,
        topic_partitions=spec["partitions"],
        key_serializer="raw",
        value_serializer="raw",
        consumer_auto_offset_reset="earliest",
    )

    def arrived(value: bytes) -> bytes:
        tally.arrived()
        return value

    async def count(stream: StreamT[Any]) -> None:
        typed = cast(faust.Stream[bytes], stream)
        typed.add_processor(arrived)
        async for batch in typed.take_events(FAUST_BATCH, within=FAUST_WITHIN_SECONDS):
            began = time.monotonic()
            for event in batch:
                tally.add_value(cast(bytes, event.message.value))
            if tally.handled(len(batch)):
                tally.skip_idle_tail(time.monotonic() - began)
                write_result(spec, tally.result())
                sys.stdout.flush()
                os._exit(0)  # nothing to keep: no tables, no offsets that matter

    app.agent(app.topic(spec["topic"]), name="count")(count)
    faust.Worker(app, loglevel=FAUST_LOGLEVEL, quiet=True, redirect_stdouts=False).execute_from_commandline()


CONSUMERS = {"bare": consume_bare, "faust": consume_faust}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    spec = orjson.loads(Path(argv[0]).read_bytes())
    CONSUMERS[spec["kind"]](spec)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
