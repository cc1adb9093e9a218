"""SIGKILL the worker mid-stream, restart it: every count equals the ground truth."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from streams.worker.topics import ensure_topics
from tests.integration.support import (
    BOOTSTRAP,
    WorkerProcess,
    event_message,
    kill_after_each,
    produce,
    run,
    scrape,
    total,
    wait_until,
)

EVENTS = 40_000
DUPLICATE_SHARE = 0.05
TEAMS = ("emea", "amer", "apac")
REPS = [f"{team}-rep{n}" for team in TEAMS for n in range(5)]


def _events(now: float) -> list[dict[str, object]]:
    rng = random.Random(7)
    events = []
    for index in range(EVENTS):
        rep = rng.choice(REPS)
        events.append(
            {
                "event_id": f"crash-{index}",
                "type": "call.logged",
                "occurred_at": datetime.fromtimestamp(now - rng.uniform(60, 20 * 3600), UTC).isoformat(),
                "source": "test",
                "team": rep.split("-")[0],
                "rep_id": rep,
                "duration_seconds": rng.randint(0, 900),
                "outcome": rng.choice(["connected", "no_answer", "voicemail"]),
            }
        )
    return events


def _labels(scope: str, team: str = "", rep: str = "") -> tuple[tuple[str, str], ...]:
    return (("campaign", ""), ("channel", ""), ("rep", rep), ("scope", scope), ("team", team), ("window", "24h"))


@pytest.mark.integration
def test_counts_exact_after_sigkill_and_restart(
    make_worker: Callable[..., WorkerProcess], worker_env: dict[str, str]
) -> None:
    crm = worker_env["KPIMON_CRM_TOPIC"]
    events = _events(time.time())
    rng = random.Random(11)
    duplicates = rng.sample(events, int(EVENTS * DUPLICATE_SHARE))
    stream = [event_message(crm, event) for event in events + duplicates]
    rng.shuffle(stream)
    run(ensure_topics(BOOTSTRAP, [crm], partitions=int(worker_env["KPIMON_PARTITIONS"])))
    run(produce(stream))

    calls = Counter(str(e["rep_id"]) for e in events)
    seconds = Counter()
    for event in events:
        seconds[str(event["rep_id"])] += int(str(event["duration_seconds"]))

    worker = make_worker()
    kill_after_each(worker, (EVENTS // 4, EVENTS // 2), timeout=120)
    observed: list[tuple[float, float]] = []

    def all_counted() -> bool:
        # The ingest counters are durable a stage before the KPIs of their batch (streams.ingest.batch):
        # a scrape in between serves them complete with the last batch's calls still missing.
        samples = scrape(worker.port)
        observed.append((total(samples, "kpimon_events_total"), total(samples, "kpimon_events_duplicate_total")))
        return (
            observed[-1] == (EVENTS, len(duplicates)) and samples.get("kpimon_calls", {}).get(_labels("all")) == EVENTS
        )

    worker.start()
    wait_until(
        all_counted,
        timeout=240,
        message=lambda: f"all {EVENTS} events counted; last (events, duplicates) seen: {observed[-3:]}",
    )
    assert observed[-1] == (EVENTS, len(duplicates)), f"last (events, duplicates) seen: {observed[-3:]}"
    samples = scrape(worker.port)
    assert samples["kpimon_events_total"] == {(("type", "call.logged"),): EVENTS}
    assert total(samples, "kpimon_events_duplicate_total") == len(duplicates)
    assert samples["kpimon_calls"][_labels("all")] == EVENTS
    for rep in REPS:
        team = rep.split("-")[0]
        assert samples["kpimon_calls"][_labels("rep", team, rep)] == calls[rep], rep
        assert samples["kpimon_call_duration_seconds"][_labels("rep", team, rep)] == seconds[rep], rep
    for team in TEAMS:
        team_calls = sum(count for rep, count in calls.items() if rep.startswith(team))
        assert samples["kpimon_calls"][_labels("team", team)] == team_calls
