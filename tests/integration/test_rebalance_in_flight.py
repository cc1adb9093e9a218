"""Rebalances while a worker is in the middle of a batch lose nothing and count nothing twice.

A backlog keeps the first worker busy (a batch is almost always in flight);
a second worker joins, then leaves, each time while both are busy. The sum of
both workers' counts, and then the first worker's alone, equals the ground truth
per rep, with every duplicate copy recognised.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from streams.worker.topics import ensure_topics
from tests.integration.support import BOOTSTRAP, WorkerProcess, event_message, produce, run, scrape, total, wait_until

BACKLOG = 20_000  # events per backlog (two), in small batches: a worker stays busy while another one starts
BATCH_SIZE = "250"
DUPLICATE_SHARE = 0.03
REPS = [f"rep{n}" for n in range(12)]
IN_FLIGHT = "Partitions revoked: waiting for the batch in flight"


def _calls(now: float, first: int, count: int) -> list[dict[str, object]]:
    rng = random.Random(first)
    return [
        {
            "event_id": f"inflight-{index}",
            "type": "call.logged",
            "occurred_at": datetime.fromtimestamp(now - rng.uniform(60, 3000), UTC).isoformat(),
            "source": "test",
            "team": "emea",
            "rep_id": rng.choice(REPS),
            "duration_seconds": 30,
            "outcome": "connected",
        }
        for index in range(first, first + count)
    ]


def _with_duplicates(events: list[dict[str, object]], seed: int) -> list[dict[str, object]]:
    rng = random.Random(seed)
    copies = rng.sample(events, int(len(events) * DUPLICATE_SHARE))
    return events + copies


def _sum(workers: list[WorkerProcess], name: str) -> float:
    return sum(total(scrape(worker.port), name) for worker in workers)


def _calls_by_rep(workers: list[WorkerProcess]) -> Counter[str]:
    calls: Counter[str] = Counter()
    for worker in workers:
        for labels, value in scrape(worker.port).get("kpimon_calls", {}).items():
            label = dict(labels)
            if label["scope"] == "rep" and label["window"] == "24h":
                calls[label["rep"]] += int(value)
    return calls


@pytest.mark.integration
def test_rebalances_during_in_flight_batches_count_exactly(
    make_worker: Callable[..., WorkerProcess], worker_env: dict[str, str]
) -> None:
    crm = worker_env["KPIMON_CRM_TOPIC"]
    run(ensure_topics(BOOTSTRAP, [crm], partitions=int(worker_env["KPIMON_PARTITIONS"])))
    now = time.time()
    first_backlog, second_backlog = _calls(now, 0, BACKLOG), _calls(now, BACKLOG, BACKLOG)
    truth = Counter(str(event["rep_id"]) for event in first_backlog + second_backlog)
    first_copies, second_copies = _with_duplicates(first_backlog, 1), _with_duplicates(second_backlog, 2)
    duplicates = len(first_copies) + len(second_copies) - 2 * BACKLOG

    run(produce(event_message(crm, event) for event in first_copies))
    first = make_worker(KPIMON_BATCH_SIZE=BATCH_SIZE)
    first.start()
    wait_until(lambda: _sum([first], "kpimon_events_total") > 0, timeout=180, message="the first is busy")
    second = make_worker(KPIMON_BATCH_SIZE=BATCH_SIZE)
    second.start()  # joins while the first works through its backlog
    both = [first, second]
    wait_until(lambda: _sum([second], "kpimon_events_total") > 0, timeout=180, message="the second takes part")
    wait_until(
        lambda: _sum(both, "kpimon_events_total") == BACKLOG,
        timeout=300,
        message=lambda: f"both workers count the first backlog; got {_sum(both, 'kpimon_events_total')}",
    )

    run(produce(event_message(crm, event) for event in second_copies))
    wait_until(
        lambda: _sum(both, "kpimon_events_total") >= BACKLOG + BACKLOG // 10,
        timeout=180,
        message="both busy with the second backlog",
    )
    second.stop()  # leaves while both work through the second backlog
    wait_until(
        lambda: _sum([first], "kpimon_events_total") == 2 * BACKLOG and _calls_by_rep([first]) == truth,
        timeout=300,
        message=lambda: f"the first worker alone counts {2 * BACKLOG}; got {_sum([first], 'kpimon_events_total')}",
    )
    assert _sum([first], "kpimon_events_duplicate_total") == duplicates
    assert IN_FLIGHT in first.log_path.read_text(errors="replace"), (
        "no rebalance met a batch in flight"
    )  # both log here
