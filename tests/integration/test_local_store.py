"""The local store on disk (streams.worker.store): a restarted worker serves its state from disk at once,
and a worker whose data dir is lost rebuilds the identical state from the changelogs.

Events from ``kpimon simulate`` (activity, deals, leads, contacts, spend, web sessions), every one sent
twice. What is compared does not move with the clock: every counter and KPI per scope and month
(``/kpis/months``), the events counted, copies recognised and open deals.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest

from schemas.config import load_config
from streams.tools.simulation.live import Simulation
from tests.integration.support import REPO, WorkerProcess, scrape, total, wait_until

CONFIG_FILE = REPO / "deploy" / "examples" / "kpimon.yaml"
EVENTS = 4000
SERVED_WITHIN = 30.0  # seconds from start; generous for a shared 2-core machine (docs/benchmarks.md has the figures)


def _simulate(env: Mapping[str, str], path: Path) -> int:
    """Simulated events of the last two hours to a file, replayed twice: the second time every one a copy."""
    simulation = Simulation(load_config(CONFIG_FILE), seed=5, rate=EVENTS / 7200)
    now = time.time()
    events = [event for _, event in simulation.events_between(now - 7200, now)]
    path.write_bytes(b"".join(orjson.dumps(event) + b"\n" for event in events))
    command = [sys.executable, "-m", "streams.tools.cli", "replay", str(path), "--config", str(CONFIG_FILE)]
    for _ in range(2):
        result = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
    return len(events)


def _state(port: int) -> dict[str, Any]:
    """What the worker serves that does not depend on the clock."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/kpis/months", timeout=10) as response:
        months = orjson.loads(response.read())
    samples = scrape(port)
    return {
        "months": sorted(
            months,
            key=lambda row: (row["scope"], row["team"], row["rep"], row["channel"], row["campaign"], row["month"]),
        ),
        **{
            name: dict(samples.get(name, {}))
            for name in (
                "kpimon_events_total",
                "kpimon_events_duplicate_total",
                "kpimon_events_late_dropped_total",
                "kpimon_open_deals",
                "kpimon_open_pipeline_value",
            )
        },
    }


def _same(expected: Any, observed: Any) -> bool:
    """Equal, floats within 1e-9: sums of the same floats in another order (bucket groups are read in key order
    from disk, in the order they were written before) may differ in the last bits."""
    if isinstance(expected, float) or isinstance(observed, float):
        return isinstance(observed, int | float) and math.isclose(expected, observed, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(expected, dict):
        return (
            isinstance(observed, dict)
            and expected.keys() == observed.keys()
            and all(_same(value, observed[key]) for key, value in expected.items())
        )
    if isinstance(expected, list):
        return (
            isinstance(observed, list)
            and len(expected) == len(observed)
            and all(_same(a, b) for a, b in zip(expected, observed, strict=True))
        )
    return bool(expected == observed)


def _counted_once(port: int, produced: int) -> bool:
    samples = scrape(port)
    internal = sum(  # the events the worker sends itself (conversions, attribution views) count too
        value
        for labels, value in samples.get("kpimon_events_total", {}).items()
        if dict(labels)["type"] in ("lead.converted", "lead.deal_closed", "contact.lead_updated")
    )
    copies = total(samples, "kpimon_events_duplicate_total") + total(samples, "kpimon_events_late_dropped_total")
    return total(samples, "kpimon_events_total") - internal >= produced and copies >= produced


def _first_run(
    make_worker: Callable[..., WorkerProcess], env: Mapping[str, str], tmp_path: Path
) -> tuple[WorkerProcess, Any]:
    produced = _simulate(env, tmp_path / "events.jsonl")
    worker = make_worker(KPIMON_CONFIG_FILE=str(CONFIG_FILE))
    worker.start()
    wait_until(lambda: _counted_once(worker.port, produced), timeout=300, message=f"{produced} events and copies")
    wait_until(lambda: _same(_state(worker.port), _state(worker.port)), timeout=30, message="a settled state")
    time.sleep(3)  # the internal events' round trips
    return worker, _state(worker.port)


def _restart_and_time(worker: WorkerProcess, expected: Any) -> float:
    started = time.monotonic()
    worker.start()
    wait_until(lambda: _same(expected, _state(worker.port)), timeout=180, message="the state before the restart")
    return time.monotonic() - started


@pytest.mark.integration
def test_a_restarted_worker_serves_its_state_from_the_local_store(
    make_worker: Callable[..., WorkerProcess], worker_env: dict[str, str], tmp_path: Path
) -> None:
    worker, before = _first_run(make_worker, worker_env, tmp_path)
    assert before["kpimon_open_deals"] and before["months"]
    samples = scrape(worker.port)  # the store's cache fills within its budget (bench/memory.py run shows it over time)
    assert 0 < total(samples, "kpimon_store_cache_bytes") <= total(samples, "kpimon_store_cache_budget_bytes")
    worker.stop()
    data = Path(worker_env["KPIMON_DATA_DIR"])
    assert any(data.rglob("seen-*.db")) and any(data.rglob("entities-*.db"))
    served_after = _restart_and_time(worker, before)
    assert served_after < SERVED_WITHIN
    worker.kill()  # SIGKILL: nothing more than a crash leaves behind
    _restart_and_time(worker, before)


@pytest.mark.integration
def test_a_lost_local_store_is_restored_from_the_changelogs(
    make_worker: Callable[..., WorkerProcess], worker_env: dict[str, str], tmp_path: Path
) -> None:
    worker, before = _first_run(make_worker, worker_env, tmp_path)
    worker.stop()
    shutil.rmtree(worker_env["KPIMON_DATA_DIR"])
    _restart_and_time(worker, before)
    assert _same(before, _state(worker.port))
