"""`kpimon replay` of a public CRM export, twice, through a real worker: every event counted once."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Callable

import pytest

from tests.integration.support import REPO, WorkerProcess, scrape, wait_until

DATASET = REPO.parent / "shared" / "datasets" / "crm-sales-opportunities" / "sales_pipeline.csv"
MAPPING = REPO / "deploy" / "mappings" / "crm-sales-opportunities.yaml"


def _expected_counts() -> dict[str, int]:
    """Counted straight from the CSV: an opportunity per engaged row, a win or loss per closed one."""
    with DATASET.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {
        "opportunity.created": sum(1 for row in rows if row["engage_date"]),
        "deal.won": sum(1 for row in rows if row["deal_stage"] == "Won"),
        "deal.lost": sum(1 for row in rows if row["deal_stage"] == "Lost"),
    }


@pytest.mark.integration
@pytest.mark.skipif(not DATASET.exists(), reason="the public data sets are not next to this checkout")
def test_replaying_a_crm_export_twice_counts_every_event_once(
    make_worker: Callable[..., WorkerProcess], worker_env: dict[str, str]
) -> None:
    expected = _expected_counts()
    replay = [sys.executable, "-m", "streams.tools.cli", "replay", str(DATASET), "--mapping", str(MAPPING)]
    for _ in range(2):
        result = subprocess.run(replay, env={**os.environ, **worker_env}, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "0 bad rows" in result.stdout

    worker = make_worker()
    worker.start()
    total_events = sum(expected.values())

    def counted() -> dict[str, float]:
        samples = scrape(worker.port)
        return {dict(labels)["type"]: value for labels, value in samples.get("kpimon_events_total", {}).items()}

    def second_copies() -> float:
        # A second copy is a duplicate while its first copy's id is remembered; once the
        # watermark has moved 8 days past it, it is dropped as late instead. Either way once.
        samples = scrape(worker.port)
        return sum(
            value
            for name in ("kpimon_events_duplicate_total", "kpimon_events_late_dropped_total")
            for value in samples.get(name, {}).values()
        )

    wait_until(
        lambda: second_copies() == total_events,
        timeout=180,
        message=lambda: f"both replays read; counted {counted()}, second copies {second_copies()}",
    )
    assert counted() == expected
