"""The sample subscription and survey exports of deploy/mappings/, replayed with `kpimon replay` into a real worker:
active customers, MRR, the customer movements and the survey scores of the last 30 days equal
tests/reference/offline_exports.py, computed from the CSV rows alone.

The samples' dates are moved by whole days so that their latest event was yesterday: the windows end now."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tests.integration.support import REPO, Labels, WorkerProcess, scrape, total, wait_until
from tests.reference.offline_exports import ExportFigures, export_figures, read_time

MAPPINGS = REPO / "deploy" / "mappings"
SAMPLES = {"stripe-subscriptions": "stripe-subscriptions.csv", "survey-responses": "survey-responses.csv"}
EVENT_TIMES = ("start_date", "current_period_start", "ended_at", "submitted_at")  # the columns the mappings read
TIME_FORMAT = "%Y-%m-%d %H:%M"
CONFIG = "timezone: UTC\nreporting_currency: USD\ncurrency_rates: {EUR: 1.1}\n"
RATES = {"USD": Decimal(1), "EUR": Decimal("1.1")}
EVENTS_BY_TYPE = {
    "subscription.started": 10,
    "subscription.renewed": 10,
    "subscription.churned": 3,
    "survey.responded": 14,
}
EVENTS = sum(EVENTS_BY_TYPE.values())  # tests/unit/tools/test_export_mappings.py lists them


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _moved_samples(target: Path) -> dict[str, Path]:
    """The samples with every time cell moved by the whole days that put their latest event time yesterday."""
    tables = {name: _read(MAPPINGS / "samples" / file) for name, file in SAMPLES.items()}
    latest = max(
        read_time(row[column]) for rows in tables.values() for row in rows for column in EVENT_TIMES if row.get(column)
    )
    days = (datetime.now(UTC).date() - datetime.fromtimestamp(latest, UTC).date()).days - 1
    moved: dict[str, Path] = {}
    for name, rows in tables.items():
        for row in rows:
            for column, text in row.items():
                try:
                    at = datetime.strptime(text, TIME_FORMAT)
                except ValueError:
                    continue
                row[column] = (at + timedelta(days=days)).strftime(TIME_FORMAT)
        moved[name] = target / SAMPLES[name]
        with moved[name].open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return moved


def _replay(source: Path, mapping: str, config: Path, env: dict[str, str]) -> None:
    command = [sys.executable, "-m", "streams.tools.cli", "replay", str(source), "--mapping",
               str(MAPPINGS / f"{mapping}.yaml"), "--config", str(config)]  # fmt: skip
    result = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 bad rows" in result.stdout, result.stdout


def _overall(window: str) -> Labels:
    return (("campaign", ""), ("channel", ""), ("rep", ""), ("scope", "all"), ("team", ""), ("window", window))


def _expected(figures: ExportFigures) -> dict[str, float]:
    return {
        "kpimon_customers": figures.customers,
        "kpimon_mrr": figures.mrr_cents / 100,
        "kpimon_arr": 12 * figures.mrr_cents / 100,
        "kpimon_customers_new": figures.new,
        "kpimon_customers_reactivated": figures.reactivated,
        "kpimon_customers_churned": figures.churned,
        "kpimon_nps": figures.nps(),
        "kpimon_nps_responses": len(figures.scores["nps"]),
        "kpimon_csat_ratio": figures.csat(),
        "kpimon_csat_responses": len(figures.scores["csat"]),
        "kpimon_ces": figures.ces(),
        "kpimon_ces_responses": len(figures.scores["ces"]),
    }


@pytest.mark.integration
def test_replayed_exports_give_the_customers_mrr_and_scores_computed_from_the_rows(
    make_worker: Callable[..., WorkerProcess], worker_env: dict[str, str], tmp_path: Path
) -> None:
    config = tmp_path / "kpimon.yaml"
    config.write_text(CONFIG)
    samples = _moved_samples(tmp_path)
    for mapping, source in samples.items():
        _replay(source, mapping, config, worker_env)
    worker = make_worker(KPIMON_CONFIG_FILE=str(config))
    worker.start()
    wait_until(lambda: total(scrape(worker.port), "kpimon_events_total") >= EVENTS, timeout=240, message="all read")

    today = datetime.now(UTC).date() - timedelta(days=29)
    start = datetime(today.year, today.month, today.day, tzinfo=UTC).timestamp()
    figures = export_figures(samples["stripe-subscriptions"], samples["survey-responses"], start, RATES)
    expected = _expected(figures)
    observed: dict[str, float | None] = {}

    def as_expected() -> bool:
        samples_now = scrape(worker.port)
        observed.update({name: samples_now.get(name, {}).get(_overall("30d")) for name in expected})
        return all(observed[name] == pytest.approx(value) for name, value in expected.items())

    wait_until(as_expected, timeout=60, message=lambda: f"expected {expected}, got {observed}")
    # by hand from the sample rows: 6 customers paying 808.04 + 1.1 x 45.50 a month; 6 NPS answers, 3 promoters
    # and 1 detractor (the 6 of cus_hotel is replaced by its 8 a week later)
    assert (figures.customers, figures.mrr_cents) == (6, 80905)
    assert (figures.new, figures.reactivated, figures.churned) == (1, 1, 1)
    assert observed["kpimon_nps"] == pytest.approx(100 * (3 - 1) / 6)
    counted = {dict(labels)["type"]: value for labels, value in scrape(worker.port)["kpimon_events_total"].items()}
    assert counted == EVENTS_BY_TYPE
