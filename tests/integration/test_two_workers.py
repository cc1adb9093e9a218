"""Two workers share the partitions; their /metrics sum to the exact totals, before and after a rebalance."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from streams.worker.topics import ensure_topics
from tests.integration.support import BOOTSTRAP, WorkerProcess, event_message, produce, run, scrape, total, wait_until

EVENTS = 6_000
REPS = [f"rep{n}" for n in range(12)]


def _calls(now: float, first: int, count: int) -> list[dict[str, object]]:
    rng = random.Random(first)
    return [
        {
            "event_id": f"two-{index}",
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


def _calls_by_rep(workers: list[WorkerProcess]) -> Counter[str]:
    calls: Counter[str] = Counter()
    for worker in workers:
        for labels, value in scrape(worker.port).get("kpimon_calls", {}).items():
            label = dict(labels)
            if label["scope"] == "rep" and label["window"] == "24h":
                calls[label["rep"]] += int(value)
    return calls


def _events_total(workers: list[WorkerProcess]) -> float:
    return sum(total(scrape(worker.port), "kpimon_events_total") for worker in workers)


@pytest.mark.integration
def test_two_workers_split_partitions_and_sum_exactly(
    make_worker: Callable[..., WorkerProcess], worker_env: dict[str, str]
) -> None:
    crm = worker_env["KPIMON_CRM_TOPIC"]
    run(ensure_topics(BOOTSTRAP, [crm], partitions=int(worker_env["KPIMON_PARTITIONS"])))
    now = time.time()
    first_half, second_half = _calls(now, 0, EVENTS // 2), _calls(now, EVENTS // 2, EVENTS // 2)
    truth = Counter(str(event["rep_id"]) for event in first_half + second_half)

    first = make_worker()
    first.start()
    run(produce(event_message(crm, event) for event in first_half))
    wait_until(lambda: _events_total([first]) == EVENTS // 2, timeout=120, message="the first half counted")

    second = make_worker(KPIMON_DATA_DIR=worker_env["KPIMON_DATA_DIR"] + "-second")  # a local store of its own
    second.start()
    run(produce(event_message(crm, event) for event in second_half))
    both = [first, second]
    wait_until(
        lambda: (
            _events_total(both) == EVENTS
            and _calls_by_rep(both) == truth
            and all(_events_total([worker]) > 0 for worker in both)  # the partitions are shared
        ),
        timeout=180,
        message=lambda: (
            f"both workers share the partitions and count {EVENTS} together; "
            f"got {[_events_total([worker]) for worker in both]}"
        ),
    )

    second.stop()
    wait_until(
        lambda: _events_total([first]) == EVENTS and _calls_by_rep([first]) == truth,
        timeout=180,
        message=lambda: f"the remaining worker alone counts {EVENTS}; got {_events_total([first])}",
    )
