"""Two workers share the partitions; their /metrics sum to the exact totals, before and after a rebalance,
also when the rebalances meet batches in flight."""

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
BACKLOG = 20_000  # events per backlog (two), in small batches: a worker stays busy while another one starts
BATCH_SIZE = "250"
DUPLICATE_SHARE = 0.03
IN_FLIGHT = "Partitions revoked: waiting for the batch in flight"


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


def _events_total(workers: list[WorkerProcess], name: str = "kpimon_events_total") -> float:
    return sum(total(scrape(worker.port), name) for worker in workers)


def _with_duplicates(events: list[dict[str, object]], seed: int) -> list[dict[str, object]]:
    return events + random.Random(seed).sample(events, int(len(events) * DUPLICATE_SHARE))


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


@pytest.mark.integration
def test_rebalances_during_in_flight_batches_count_exactly(
    make_worker: Callable[..., WorkerProcess], worker_env: dict[str, str]
) -> None:
    """A worker joins, then leaves, while both work through a backlog: a batch is in flight at each rebalance.

    The revoking worker finishes its batch before it hands the partitions over (the
    consumer logs that it waits), and a stopping worker finishes its own; the sum of
    both workers, and then the first alone, equals the ground truth per rep, with every
    duplicate copy recognised.
    """
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
    wait_until(lambda: _events_total([first]) > 0, timeout=180, message="the first is busy")
    second = make_worker(KPIMON_BATCH_SIZE=BATCH_SIZE, KPIMON_DATA_DIR=worker_env["KPIMON_DATA_DIR"] + "-second")
    second.start()  # joins while the first works through its backlog
    both = [first, second]
    wait_until(lambda: _events_total([second]) > 0, timeout=180, message="the second takes part")
    wait_until(
        lambda: _events_total(both) == BACKLOG,
        timeout=300,
        message=lambda: f"both workers count the first backlog; got {_events_total(both)}",
    )

    run(produce(event_message(crm, event) for event in second_copies))
    wait_until(lambda: _events_total(both) >= BACKLOG + BACKLOG // 10, timeout=180, message="both busy again")
    second.stop()  # leaves while both work through the second backlog
    wait_until(
        lambda: _events_total([first]) == 2 * BACKLOG and _calls_by_rep([first]) == truth,
        timeout=300,
        message=lambda: f"the first worker alone counts {2 * BACKLOG}; got {_events_total([first])}",
    )
    assert _events_total([first], "kpimon_events_duplicate_total") == duplicates
    assert IN_FLIGHT in first.log_path.read_text(errors="replace"), "no rebalance met a batch in flight"
