"""10,000 hostile messages through a real worker: each counted or dead-lettered, exact after a restart.

The messages are made of the hostile values of the hypothesis test (tests/unit/worker/
test_hostile_input.py: huge numbers, deep nesting, odd Unicode, giant strings, odd times): random
bytes, random JSON, and valid events of every source type with one field made hostile, from a
seeded generator (a hypothesis example cannot hold 10,000 messages). One in twenty is sent twice;
all go to random partitions, so many are re-keyed. The worker must account for every message
(counted, a copy, or dead-lettered), never need ``processing_error``, stay alive, and serve, before
and after a restart, the overall calls, emails sent and web traffic of an offline count of the
messages the contract accepts.
"""

from __future__ import annotations

import json
import random
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson

from schemas.events import INTERNAL_TYPES
from streams.core.validation import Rejection, validate_message
from streams.worker.settings import Settings
from tests.integration.support import Message, WorkerProcess, produce, run, scrape, total, wait_until
from tests.unit.schemas.contract_examples import MINIMAL
from tests.unit.worker.test_hostile_input import (
    DEEP_NESTING,
    GIANT_TEXT_LENGTH,
    ODD_NUMBERS,
    ODD_TEXTS,
    ODD_TIMES,
    SOURCE_TYPES,
    activity_offline,
)

MESSAGES = 10_000
COUNTED = ("kpimon_events_total", "kpimon_events_duplicate_total", "kpimon_events_late_dropped_total")
ACTIVITY = ("calls", "call_duration_seconds", "emails_sent", "web_sessions", "web_pageviews")


def _hostile_value(rng: random.Random) -> Any:
    pick = rng.random()
    if pick < 0.3:
        return rng.choice(ODD_NUMBERS)
    if pick < 0.5:
        return rng.choice(ODD_TEXTS)
    if pick < 0.7:
        return rng.choice(ODD_TIMES)
    if pick < 0.8:
        return rng.choice([None, [], {}, [[[]]], {"a": {"b": None}}, DEEP_NESTING])
    if pick < 0.9:
        return "".join(chr(rng.randrange(0x20, 0x2FFFF)) for _ in range(rng.randrange(1, 30)))
    return "x" * GIANT_TEXT_LENGTH


def _message(rng: random.Random, number: int) -> bytes:
    """Random bytes, random JSON, or a valid event with one field replaced or added (or none)."""
    pick = rng.random()
    if pick < 0.05:
        return rng.randbytes(rng.randrange(0, 300))
    if pick < 0.1:
        return json.dumps([_hostile_value(rng), {"type": _hostile_value(rng)}]).encode("utf-8", "surrogatepass")
    kind = rng.choice(SOURCE_TYPES)
    event: dict[str, Any] = {
        "event_id": f"m{number}",
        "type": kind,
        "occurred_at": "2025-12-01T11:00:00Z",
        "source": "fuzz",
        **MINIMAL[kind],
    }
    if rng.random() < 0.5:
        # every field but the event id: two events sharing a hostile id on one partition count the first to
        # arrive, and re-keying makes that order differ from the order produced (the unit test covers odd ids)
        names = [name for name in event if name != "event_id"]
        field = rng.choice([*names, "campaign_id", "channel", "rep_id", "team", "reason", "attributes"])
        event[field] = _hostile_value(rng)
    return json.dumps(event, allow_nan=True).encode("utf-8", "surrogatepass")


def _offline(values: list[bytes], limits: Settings) -> dict[str, float]:
    """The overall activity counters of the messages the contract accepts, the first copy of each id."""
    accepted = [
        value
        for value in values
        if not isinstance(
            validate_message(
                value,
                max_bytes=limits.max_event_bytes,
                now=time.time(),
                future_tolerance_seconds=limits.future_tolerance_seconds,
                past_horizon_seconds=limits.past_horizon_days * 86_400,
                known_currencies=frozenset({"USD"}),
            ),
            Rejection,
        )
    ]
    return activity_offline([json.loads(value) for value in accepted])  # ids are unique: the order does not matter


def _overall(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/kpis/months", timeout=30) as response:
        rows: list[dict[str, Any]] = orjson.loads(response.read())
    totals = dict.fromkeys(ACTIVITY, 0.0)
    for row in rows:
        if row["scope"] == "all":
            for name in ACTIVITY:
                totals[name] += row["counters"].get(name, 0)
    return totals


def _accounted(port: int) -> float:
    """Messages counted, recognised as copies or dead-lettered; not the events kpimon sends itself."""
    samples = scrape(port)
    counted = sum(
        value
        for name in COUNTED
        for labels, value in samples.get(name, {}).items()
        if dict(labels)["type"] not in INTERNAL_TYPES
    )
    return counted + total(samples, "kpimon_events_rejected_total")


def test_ten_thousand_hostile_messages_are_each_counted_or_dead_lettered_and_exact_after_a_restart(
    worker_env: dict[str, str], tmp_path: Path
) -> None:
    rng = random.Random(7)
    values = [_message(rng, number) for number in range(MESSAGES)]
    values += rng.sample(values, MESSAGES // 20)  # copies, anywhere
    rng.shuffle(values)
    topic = worker_env["KPIMON_CRM_TOPIC"]
    expected = _offline(values, Settings())

    worker = WorkerProcess(env=worker_env, log_path=tmp_path / "worker.log")
    worker.start()
    try:
        run(produce(Message(topic, value, None) for value in values))  # type: ignore[arg-type]
        wait_until(
            lambda: _accounted(worker.port) == len(values),
            300,
            lambda: f"every message accounted for: {_accounted(worker.port)} of {len(values)}",
        )
        before = _overall(worker.port)
        reasons = {dict(labels)["reason"] for labels in scrape(worker.port)["kpimon_events_rejected_total"]}
        assert worker.process is not None and worker.process.poll() is None
    finally:
        worker.stop()
    assert "processing_error" not in reasons
    again = WorkerProcess(env=worker_env, log_path=tmp_path / "worker.log")
    again.start()
    try:
        wait_until(lambda: _overall(again.port) == before, 120, "the same values after the restart")
    finally:
        again.stop()
    for name in ACTIVITY:
        assert abs(before[name] - expected[name]) <= 1e-6 * max(1.0, expected[name]), (name, before, expected)
