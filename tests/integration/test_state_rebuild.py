"""A deleted changelog is found, and ``kpimon rebuild`` restores the exact values from the source topics.

The worker counts calls and stops (its offsets committed); the changelog topics are deleted while it
is down, with its data dir (as after losing a broker's internal topics and a machine) or without.
Started again, it must refuse to run rather than count on from the committed offsets with an empty
state: kpimon's own check refuses the first, Faust's the second (its data dir is past the changelog).
``kpimon rebuild --yes`` resets the group, and the worker then counts every call exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from streams.worker.app import EXIT_STATE_BEHIND_COMMITS, changelog_topics
from tests.integration.support import BOOTSTRAP, WorkerProcess, event_message, produce, run, scrape, total, wait_until

CALLS = 400
REPS = ("ann", "bob", "cy")


def _calls(topic: str) -> tuple[list[object], Counter[str]]:
    now = time.time()
    per_rep: Counter[str] = Counter()
    messages = []
    for n in range(CALLS):
        rep = REPS[n % len(REPS)]
        per_rep[rep] += 1
        event = {
            "event_id": f"call-{n}",
            "type": "call.logged",
            "occurred_at": datetime.fromtimestamp(now - 600 + n, UTC).isoformat(),
            "source": "test",
            "rep_id": rep,
            "duration_seconds": 30,
            "outcome": "connected",
        }
        messages.append(event_message(topic, event))
    return messages, per_rep


async def _delete_topics(names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        await admin.delete_topics([name for name in names if name in existing])
        while set(names) & set(await admin.list_topics()):
            await asyncio.sleep(0.5)
    finally:
        await admin.close()


def _rep_calls(port: int) -> dict[str, float]:
    calls = scrape(port).get("kpimon_calls", {})
    return {
        dict(labels)["rep"]: value
        for labels, value in calls.items()
        if dict(labels)["scope"] == "rep" and dict(labels)["window"] == "24h"
    }


def _kpimon(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams.tools.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )


@pytest.mark.parametrize(
    ("data_dir_lost", "refusal"),
    [
        (True, "kpimon rebuild"),  # kpimon's check: the group committed past an empty state
        (False, "The persisted offset for changelog topic partition"),  # Faust's: the disk is past the changelog
    ],
)
def test_a_deleted_changelog_is_refused_and_kpimon_rebuild_restores_exact_values(
    worker_env: dict[str, str], tmp_path: Path, data_dir_lost: bool, refusal: str
) -> None:
    messages, per_rep = _calls(worker_env["KPIMON_CRM_TOPIC"])
    log_path = tmp_path / "worker.log"
    worker = WorkerProcess(env=worker_env, log_path=log_path)
    worker.start()  # creates the topics
    try:
        run(produce(messages))  # type: ignore[arg-type]
        wait_until(lambda: total(scrape(worker.port), "kpimon_events_total") == CALLS, 120, "every call counted")
        time.sleep(4)  # Faust's commit timer (2.8 s) commits the durable offsets
    finally:
        worker.stop()

    run(_delete_topics(changelog_topics(worker_env["KPIMON_APP_ID"])))  # type: ignore[arg-type]
    if data_dir_lost:
        shutil.rmtree(worker_env["KPIMON_DATA_DIR"])

    refused = WorkerProcess(env=worker_env, log_path=log_path)
    with contextlib.suppress(RuntimeError):  # it may refuse before it serves /metrics
        refused.start()
    assert refused.process is not None
    try:
        status = refused.process.wait(timeout=90)
    finally:
        refused.stop()
    assert status != 0 and (status == EXIT_STATE_BEHIND_COMMITS) is data_dir_lost
    assert refusal in log_path.read_text()

    dry_run = _kpimon(worker_env, "rebuild")
    assert dry_run.returncode == 0, dry_run.stderr
    assert "would delete the committed offsets" in dry_run.stdout and "nothing was changed" in dry_run.stdout
    assert f"{worker_env['KPIMON_CRM_TOPIC']}[0]: offsets 0.." in dry_run.stdout
    rebuilt = _kpimon(worker_env, "rebuild", "--yes")
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert f"{CALLS} messages will be read again" in rebuilt.stdout

    again = WorkerProcess(env=worker_env, log_path=log_path)
    again.start()
    try:
        wait_until(
            lambda: total(scrape(again.port), "kpimon_events_total") == CALLS,
            120,
            lambda: f"every call counted again: {total(scrape(again.port), 'kpimon_events_total')}",
        )
        time.sleep(2)  # nothing counted twice: the total stays
        samples = scrape(again.port)
        assert total(samples, "kpimon_events_total") == CALLS
        assert total(samples, "kpimon_events_duplicate_total") == 0
        assert _rep_calls(again.port) == {rep: float(count) for rep, count in per_rep.items()}
    finally:
        again.stop()
