"""A year of subscriptions and survey answers of 500 accounts through a real worker, killed twice with SIGKILL:
every customer, MRR, retention and survey KPI per scope and window equals tests/reference/offline_customers.py."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from schemas.events import routing_key_of
from streams.worker.topics import ensure_topics
from tests.integration.support import (
    BOOTSTRAP,
    Labels,
    WorkerProcess,
    event_message,
    kill_after_each,
    produce,
    run,
    scrape,
    total,
    wait_until,
)
from tests.reference.offline_customers import (
    CustomerFigures,
    SurveyFigures,
    customer_events,
    customer_figures,
    survey_figures,
)

CONFIG = "timezone: UTC\ncurrency_rates: {EUR: 1.1}\ngross_margin: 0.75\n"
GROSS_MARGIN = 0.75
RATES = {"USD": Decimal(1), "EUR": Decimal("1.1")}
ACCOUNTS = 500
DUPLICATE_SHARE = 0.05
DAY = 86_400


def _labels(scope: tuple[str, ...], window: str) -> Labels:
    kind, *rest = scope
    team = rest[0] if kind in ("team", "rep") else ""
    rep = rest[1] if kind == "rep" else ""
    channel = rest[0] if kind == "channel" else ""
    return (("campaign", ""), ("channel", channel), ("rep", rep), ("scope", kind), ("team", team), ("window", window))


def _window_start(window: str, now: float) -> int:
    today = datetime.fromtimestamp(now, UTC).date()
    first_day = {
        "week": today - timedelta(days=today.weekday()),
        "30d": today - timedelta(days=29),
        "month": today.replace(day=1),
        "quarter": today.replace(month=3 * ((today.month - 1) // 3) + 1, day=1),
    }[window]
    return int(datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC).timestamp())


def _customer_values(figure: CustomerFigures) -> dict[str, float | None]:
    moves = figure.movements
    values: dict[str, float | None] = {
        "kpimon_customers": figure.now,
        "kpimon_customers_at_start": figure.at_start,
        "kpimon_customers_new": figure.new,
        "kpimon_customers_reactivated": figure.reactivated,
        "kpimon_customers_churned": figure.churned,
        "kpimon_mrr": figure.mrr_now / 100,
        "kpimon_arr": 12 * figure.mrr_now / 100,
        "kpimon_mrr_at_start": figure.mrr_at_start / 100,
        "kpimon_mrr_net_change": (figure.mrr_now - figure.mrr_at_start) / 100,
    }
    values |= {f"kpimon_mrr_{kind}": moves[kind] / 100 for kind in ("new", "expansion", "contraction", "churned")}
    values["kpimon_mrr_reactivated"] = moves["reactivated"] / 100
    return values


def _rate_values(figure: CustomerFigures) -> dict[str, float | None]:
    return {
        "kpimon_average_revenue_per_account": figure.arpa(),
        "kpimon_gross_margin_ratio": figure.gross_margin(GROSS_MARGIN),
        "kpimon_customer_retention_ratio": figure.retention_rate(),
        "kpimon_logo_churn_ratio": figure.logo_churn_rate(),
        "kpimon_gross_revenue_retention_ratio": figure.gross_revenue_retention(),
        "kpimon_net_revenue_retention_ratio": figure.net_revenue_retention(),
    }


def _survey_values(figure: SurveyFigures) -> dict[str, float | None]:
    return {
        "kpimon_nps": figure.nps(),
        "kpimon_nps_responses": len(figure.scores["nps"]),
        "kpimon_csat_ratio": figure.csat(),
        "kpimon_csat_responses": len(figure.scores["csat"]),
        "kpimon_ces": figure.ces(),
        "kpimon_ces_responses": len(figure.scores["ces"]),
    }


def expected_values(events: list[dict[str, object]], now: float) -> dict[tuple[str, Labels], float]:
    expected: dict[tuple[str, Labels], float] = {}
    for window in ("week", "30d", "month", "quarter"):
        start = _window_start(window, now)
        for scope, figure in customer_figures(events, start, RATES).items():
            values = _customer_values(figure) | (_rate_values(figure) if window != "week" else {})
            if window == "30d":
                values["kpimon_customer_lifetime_value"] = figure.lifetime_value(GROSS_MARGIN)
            expected |= {(name, _labels(scope, window)): v for name, v in values.items() if v is not None}
        for scope, answers in survey_figures(events, start).items():
            expected |= {(name, _labels(scope, window)): v for name, v in _survey_values(answers).items() if v}
    return expected


@pytest.mark.integration
def test_customer_and_survey_kpis_exact_after_duplicates_and_two_sigkills(
    make_worker: Callable[..., WorkerProcess], worker_env: dict[str, str], tmp_path: Path
) -> None:
    config_path = tmp_path / "kpimon.yaml"
    config_path.write_text(CONFIG)
    crm = worker_env["KPIMON_CRM_TOPIC"]
    now = time.time()
    events = customer_events(seed=14, accounts=ACCOUNTS, first=int(now - 365 * DAY), last=int(now - 120))
    rng = random.Random(3)
    duplicates = rng.sample(events, int(len(events) * DUPLICATE_SHARE))
    # most keyed by their routing key (the account), some by their event id: every account event goes through the
    # re-keyed topic either way (streams.worker.pipeline.must_be_rekeyed), so a crash reads them again in one order
    stream = [
        event_message(crm, event, key=routing_key_of(event) if rng.random() < 0.7 else None)
        for event in events + duplicates
    ]
    rng.shuffle(stream)
    run(ensure_topics(BOOTSTRAP, [crm], partitions=int(worker_env["KPIMON_PARTITIONS"])))
    run(produce(stream))

    worker = make_worker(KPIMON_CONFIG_FILE=str(config_path))
    kill_after_each(worker, (len(events) // 3, 2 * len(events) // 3), timeout=180)
    worker.start()
    observed: list[tuple[float, float]] = []

    def all_counted() -> bool:
        samples = scrape(worker.port)
        observed.append((total(samples, "kpimon_events_total"), total(samples, "kpimon_events_duplicate_total")))
        # more duplicates than sent: a message forwarded to the re-keyed topic, then read again after a kill, is
        # forwarded again, and that copy is a duplicate too
        return observed[-1][0] == len(events) and observed[-1][1] >= len(duplicates)

    wait_until(all_counted, timeout=300, message=lambda: f"every event counted; last seen: {observed[-3:]}")
    expected = expected_values(events, time.time())
    names = {name for name, _ in expected}
    differences: list[tuple[tuple[str, Labels], float | None, float]] = []

    def every_value_as_expected() -> bool:
        samples = scrape(worker.port)
        actual.clear()
        actual.update({(name, labels): value for name in names for labels, value in samples.get(name, {}).items()})
        differences[:] = [
            (key, actual.get(key), value) for key, value in expected.items() if actual.get(key) != pytest.approx(value)
        ]
        return not differences

    actual: dict[tuple[str, Labels], float] = {}

    def report() -> str:
        where = Counter((dict(labels)["scope"], dict(labels)["window"]) for (_, labels), _, _ in differences)
        return f"{len(differences)} differ, per (scope, window) {dict(where)}; e.g. {differences[:10]}"

    wait_until(every_value_as_expected, timeout=60, message=report)
    # by hand, so a shared mistake cannot hide: every window reads the same stock, the movements add up
    overall = [_labels(("all",), window) for window in ("week", "30d", "month", "quarter")]
    assert len({actual[("kpimon_customers", labels)] for labels in overall}) == 1
    for labels in overall:
        change = actual[("kpimon_mrr", labels)] - actual[("kpimon_mrr_at_start", labels)]
        assert actual[("kpimon_mrr_net_change", labels)] == pytest.approx(change)
    assert len(expected) > 1000  # every KPI of 4 windows in the scopes: all, 3 teams, 6 reps, 4 channels and web
