"""Integration tests run against the real Kafka broker and Redis of deploy/local."""

from __future__ import annotations

import ssl
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.support import REPO, WorkerProcess


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in item.nodeid:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session", autouse=True)
def local_stack() -> None:
    """Start (or reuse) the real Kafka broker and Redis; idempotent."""
    result = subprocess.run(
        [str(REPO / "deploy/local/kpimon-local"), "up"], check=False, capture_output=True, text=True
    )
    if result.returncode != 0:
        pytest.fail(f"deploy/local/kpimon-local up failed:\n{result.stdout}\n{result.stderr}")


@pytest.fixture
def worker_env(tmp_path: Path) -> dict[str, str]:
    """Settings for one test's worker: its own app id, topics and data dir."""
    run_id = uuid.uuid4().hex[:8]
    return {
        "KPIMON_APP_ID": f"it-{run_id}",
        "KPIMON_CRM_TOPIC": f"it-{run_id}.crm",
        "KPIMON_MARKETING_TOPIC": f"it-{run_id}.marketing",
        "KPIMON_DEADLETTER_TOPIC": f"it-{run_id}.deadletter",
        "KPIMON_PARTITIONS": "4",
        "KPIMON_DATA_DIR": str(tmp_path / "data"),
        "KPIMON_SESSION_TIMEOUT_SECONDS": "10",
    }


@pytest.fixture
def make_worker(tmp_path: Path, worker_env: dict[str, str]) -> Iterator[object]:
    workers: list[WorkerProcess] = []

    def make(tls: ssl.SSLContext | None = None, **extra_env: str) -> WorkerProcess:
        worker = WorkerProcess(env={**worker_env, **extra_env}, log_path=tmp_path / "worker.log", tls=tls)
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        worker.stop()
