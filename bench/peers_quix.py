#!/usr/bin/env python3
"""Quix Streams' consumer of a peers run (bench/peers.py): a script of its own, for an interpreter of its own.

Every Quix Streams 3.x release caps pydantic below 2.14 and pydantic-settings below 2.16, which kpimon pins
higher, so Quix Streams cannot be installed in kpimon's venv. bench/peers.py runs this script with the
interpreter of .venv-peers (``--quix-python``), which holds quixstreams and what it pulls in, pinned in
bench/requirements-peers.txt (``make bench-peers`` creates it). It imports only quixstreams, orjson and the
standard library.

    python bench/peers_quix.py SPEC      consume as SPEC (a JSON file the harness writes) says
    python bench/peers_quix.py --versions  the versions of Python, quixstreams, confluent-kafka and orjson, as JSON

SPEC holds the topic, the number of events, the consumer group, the broker, the window's grace period, the
``scratch`` directory (for the state) and the ``result`` file. The pipeline: the topic with the JSON
deserializer and a timestamp extractor that reads ``occurred_at`` (windows by event time);
``group_by("rep_id")``, which produces every event to a repartition topic and consumes it again; a 1-minute
tumbling window counting per rep, its live value after every event (``.current()``), kept in RocksDB with a
changelog topic. The clock runs from the first event seen to the N-th through the window (a late event,
which the window drops, counts as through and is reported); then the app stops and the figures go to the
result file. Progress lines go to stdout, Quix Streams' logs to stderr.
"""

from __future__ import annotations

import platform
import sys
import time
from datetime import datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import orjson

WINDOW_MS = 60_000  # a 1-minute tumbling window
PACKAGES = ("quixstreams", "confluent-kafka", "orjson")


def own_status(field_name: str) -> int:
    """A memory line of /proc/self/status (VmRSS, VmHWM), in bytes."""
    lines = Path("/proc/self/status").read_text().splitlines()
    return next((int(line.split()[1]) * 1024 for line in lines if line.startswith(f"{field_name}:")), 0)


class Clock:
    """The events through the window: when the first was seen, when the N-th was counted, the CPU time by then."""

    def __init__(self, events: int, progress_seconds: float) -> None:
        self.events, self.progress_seconds = events, progress_seconds
        self.started, self.cpu_at_start, self.rss_at_start = time.monotonic(), time.process_time(), own_status("VmRSS")
        self.first = self.done = self.cpu_seconds = self.next_line = 0.0
        self.total = self.late = 0

    def seen(self) -> None:
        if not self.first:
            self.first = time.monotonic()

    def through(self, *, late: bool = False) -> bool:
        """One more event through the window (``late``: dropped by it); True once all N are."""
        self.total, self.late = self.total + 1, self.late + late
        now = time.monotonic()
        if self.total == self.events:
            self.done, self.cpu_seconds = now, time.process_time() - self.cpu_at_start
        if now >= self.next_line or self.total == self.events:
            self.progress(now)
        return self.total >= self.events

    def progress(self, now: float) -> None:
        """The harness's progress line (bench/throughput.py's ``Progress``): how far, how fast, how long still."""
        self.next_line = now + self.progress_seconds
        rate = self.total / (now - self.first) if now > self.first else 0.0
        eta = f"ETA {(self.events - self.total) / rate:,.0f} s" if rate > 0 else "ETA ?"
        share = f"{100 * self.total / self.events:.0f}%"
        print(f"  Quix Streams: {self.total:,}/{self.events:,} ({share}), {rate:,.0f} events/s, {eta}", flush=True)

    def figures(self) -> dict[str, Any]:
        """What the harness reads: the timing (as bench/peers.py's other consumers report it), CPU and memory."""
        timing = {
            "events": self.total,
            "seconds": self.done - self.started,
            "sustained_seconds": self.done - self.first,
        }
        return {
            **timing,
            "cpu_seconds": self.cpu_seconds,
            "time_to_first_event_seconds": self.first - self.started,
            "rss_at_start_bytes": self.rss_at_start,
            "peak_rss_bytes": own_status("VmHWM"),
            "late": self.late,
        }


def occurred_at_ms(value: Any, headers: Any, timestamp: int, timestamp_type: Any) -> int:
    """Quix Streams' timestamp extractor: the event time, so windows are by event time."""
    return int(datetime.fromisoformat(value["occurred_at"]).timestamp() * 1000)


def consume(spec: dict[str, Any]) -> dict[str, Any]:
    """Group by rep, a 1-minute tumbling count per rep by event time; stops after N events; the figures."""
    from quixstreams import Application  # type: ignore[import-not-found, unused-ignore]

    clock = Clock(spec["events"], spec["progress_seconds"])
    app = Application(
        broker_address=spec["bootstrap"],
        consumer_group=spec["group"],
        auto_offset_reset="earliest",
        state_dir=str(Path(spec["scratch"]) / "state"),
        loglevel="INFO",
    )

    def on_late(*_: Any, **__: Any) -> bool:
        if clock.through(late=True):  # a late event leaves the window unchanged and emits nothing
            app.stop()
        return False

    def counted(_: Any) -> None:
        if clock.through():
            app.stop()

    topic = app.topic(spec["topic"], value_deserializer="json", timestamp_extractor=occurred_at_ms)
    sdf = app.dataframe(topic).update(lambda _: clock.seen())
    sdf = sdf.group_by("rep_id")
    sdf = sdf.tumbling_window(WINDOW_MS, grace_ms=spec["grace_ms"], on_late=on_late).count().current()
    sdf = sdf.update(counted)
    app.run()
    return clock.figures()


def main(argv: list[str]) -> int:
    if argv == ["--versions"]:
        found = {"python": platform.python_version(), **{name: version(name) for name in PACKAGES}}
        print(orjson.dumps(found).decode())
        return 0
    if len(argv) != 1 or argv[0].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    spec = orjson.loads(Path(argv[0]).read_bytes())
    result, partial = Path(spec["result"]), Path(spec["result"] + ".tmp")
    partial.write_bytes(orjson.dumps(consume(spec)))
    partial.replace(result)  # in one step: the harness polls for the file
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
