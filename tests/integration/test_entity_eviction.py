"""Closed entities past the retention leave the worker's store, and no KPI changes (streams.entities.retention).

Four hours of simulated events from 850 days ago (deals, leads, contacts, spend) and three open deals,
then one event of now on every partition: the watermark moves past the 800-day retention, so the sweep
deletes every entity but the open deals, which still count in the open pipeline. Every old event sent
again is counted as late or as a copy (its id still remembered, or an open deal's), and creates no entity.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import rocksdict

from schemas.config import load_config
from streams.tools.simulation.live import Simulation
from streams.worker.pipeline import partition_of
from tests.integration.support import REPO, WorkerProcess, scrape, total, wait_until

CONFIG_FILE = REPO / "deploy" / "examples" / "kpimon.yaml"
PARTITIONS = 4
DAY = 86_400


def _replay(path: Path, env: dict[str, str]) -> None:
    command = [sys.executable, "-m", "streams.tools.cli", "replay", str(path), "--config", str(CONFIG_FILE)]
    result = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def _ticks(now: float) -> list[dict[str, Any]]:
    """One call of now on every partition (keyed by its event id)."""
    ticks: dict[int, dict[str, Any]] = {}
    for number in range(1000):
        event_id = f"tick-{number}"
        ticks.setdefault(partition_of(event_id, PARTITIONS), {
            "event_id": event_id, "type": "call.logged", "occurred_at": datetime.fromtimestamp(now, UTC).isoformat(),
            "source": "test", "team": "emea", "rep_id": "emea-anna", "duration_seconds": 60, "outcome": "connected",
        })  # fmt: skip
    assert len(ticks) == PARTITIONS
    return list(ticks.values())


def _open(port: int) -> dict[str, dict[Any, float]]:
    samples = scrape(port)
    return {name: dict(samples.get(name, {})) for name in ("kpimon_open_deals", "kpimon_open_pipeline_value")}


def _stored_entities(data_dir: Path) -> list[str]:
    keys = []
    for path in sorted(data_dir.rglob("entities-*.db")):
        db = rocksdict.Rdict(str(path), options=rocksdict.Options(raw_mode=True),
                             access_type=rocksdict.AccessType.read_only())  # fmt: skip
        keys += [orjson.loads(key) for key, _ in db.items() if isinstance(key, bytes) and key[:1] == b'"']
        db.close()
    return keys


@pytest.mark.integration
def test_closed_entities_past_the_retention_are_evicted_and_no_kpi_changes(
    make_worker: Callable[..., WorkerProcess], worker_env: dict[str, str], tmp_path: Path
) -> None:
    now = time.time()
    start = now - 850 * DAY
    simulation = Simulation(load_config(CONFIG_FILE), seed=9, rate=0.5)
    old = [event for _, event in simulation.events_between(start, start + 4 * 3600)]
    old += [  # the simulator closes its deals: three that stay open
        {"event_id": f"open-{n}", "type": "opportunity.created", "source": "test", "deal_id": f"open-{n}",
         "occurred_at": datetime.fromtimestamp(start + 3600, UTC).isoformat(), "team": "emea",
         "rep_id": "emea-anna", "amount": f"{1000 * (n + 1)}", "currency": "EUR", "channel": "web"}
        for n in range(3)
    ]  # fmt: skip
    old_file = tmp_path / "old.jsonl"
    old_file.write_bytes(b"".join(orjson.dumps(event) + b"\n" for event in old))
    _replay(old_file, worker_env)
    worker = make_worker(KPIMON_CONFIG_FILE=str(CONFIG_FILE))
    worker.start()
    wait_until(lambda: total(scrape(worker.port), "kpimon_events_total") >= len(old), timeout=180, message="old")
    time.sleep(3)  # the events entities send each other
    before = _open(worker.port)
    open_deals = sum(value for labels, value in before["kpimon_open_deals"].items() if ("scope", "all") in labels)
    assert open_deals > 0
    worker.stop()
    entities_before = _stored_entities(Path(worker_env["KPIMON_DATA_DIR"]))
    assert any(not key.split("|", 1)[1].startswith("deal:") for key in entities_before)

    ticks_file = tmp_path / "ticks.jsonl"
    ticks_file.write_bytes(b"".join(orjson.dumps(tick) + b"\n" for tick in _ticks(now)))
    _replay(ticks_file, worker_env)
    _replay(old_file, worker_env)  # every old event again: late now
    worker.start()

    def copies(samples: dict[str, Any]) -> float:  # late, or copies (ids still remembered, or open deals' events)
        return total(samples, "kpimon_events_late_dropped_total") + total(samples, "kpimon_events_duplicate_total")

    wait_until(lambda: copies(scrape(worker.port)) >= len(old), timeout=180, message="the old events read again")
    assert _open(worker.port) == before  # the open pipeline is the same
    worker.stop()
    entities_after = _stored_entities(Path(worker_env["KPIMON_DATA_DIR"]))
    assert all(key.split("|", 1)[1].startswith("deal:") for key in entities_after)  # the open deals are kept
    assert open_deals <= len(entities_after) < len(entities_before)
