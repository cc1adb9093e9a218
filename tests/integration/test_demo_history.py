"""``kpimon simulate --history`` through a real worker: every KPI has a value, the funnel equals an offline
computation over the events produced, today's per-rep activity is exact, and a second run produces no history
again (it resumes after what the topics hold)."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import cast
from zoneinfo import ZoneInfo

import orjson
import pytest

from schemas.catalog import load_catalog
from schemas.config import load_config
from tests.integration.support import REPO, Labels, WorkerProcess, consume_to_end, run, scrape, wait_until
from tests.reference.offline_demo import ACTIVITY_TYPES, activity_on, calendar_days_start, funnel_between

CONFIG = REPO / "deploy" / "examples" / "kpimon.yaml"
HISTORY = "31d"  # covers the 30d windows
LIVE_SECONDS, LIVE_RATE = "20", "25"  # a live part that adds today's events to the history's
ACTIVITY_COUNTERS = {
    "call.logged": "kpimon_calls",
    "email.sent": "kpimon_emails_sent",
    "meeting.booked": "kpimon_meetings_booked",
    "demo.completed": "kpimon_demos_completed",
}
FUNNEL_METRICS = {
    "leads": "kpimon_leads",
    "mqls": "kpimon_mqls",
    "sqls": "kpimon_sqls",
    "opportunities_created": "kpimon_opportunities_created",
    "deals_won": "kpimon_deals_won",
    "deals_lost": "kpimon_deals_lost",
    "revenue": "kpimon_revenue",
    "win_rate": "kpimon_win_rate_ratio",
}
Samples = Mapping[str, Mapping[Labels, float]]
WITHOUT_CHURN = {"kpimon_customer_lifetime_value", "kpimon_ltv_to_cac_ratio"}  # divided by the logo churn rate
CLV_MIN_COHORT = 20  # the catalog's CLV has no value for a cohort (customers 30 days ago) smaller than this


def simulate(env: Mapping[str, str], *args: str) -> str:
    command = [sys.executable, "-m", "streams.tools.cli", "simulate", "--history", HISTORY, *args]
    result = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def history_events(output: str) -> int:
    match = re.search(r"history done: ([\d,]+) events?", output)
    assert match, output
    return int(match.group(1).replace(",", ""))


def value(samples: Samples, metric: str, **labels: str) -> float | None:
    """The sample of ``metric`` whose labels include ``labels`` (KPI series have one per scope and window)."""
    for sample_labels, sample in samples.get(metric, {}).items():
        if labels.items() <= dict(sample_labels).items():
            return sample
    return None


def by_type(samples: Samples, metric: str) -> Counter[str]:
    return Counter({dict(labels)["type"]: int(count) for labels, count in samples.get(metric, {}).items()})


@pytest.mark.integration
def test_the_demo_history_gives_every_kpi_a_value_and_the_funnel_of_the_events_produced(
    make_worker: Callable[..., WorkerProcess], worker_env: dict[str, str]
) -> None:
    env = {**worker_env, "KPIMON_CONFIG_FILE": str(CONFIG)}
    first = subprocess.Popen(
        [sys.executable, "-m", "streams.tools.cli", "simulate", "--history", HISTORY,
         "--duration", LIVE_SECONDS, "--rate", LIVE_RATE],
        env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    worker = make_worker(KPIMON_CONFIG_FILE=str(CONFIG))
    try:
        worker.start()  # while the history is produced
        output, _ = first.communicate(timeout=90)
    finally:
        first.kill()
    assert first.returncode == 0, output
    assert "(no events of seed 1 on the topics yet)" in output
    assert history_events(output) > 30_000

    again = simulate(env, "--duration", "0")  # a second demo run: the history is on the topics already
    assert "simulate: history already produced up to " in again, again
    assert history_events(again) < 20  # what the world did meanwhile, at ~1,300 events a day

    topics = (worker_env["KPIMON_CRM_TOPIC"], worker_env["KPIMON_MARKETING_TOPIC"])
    values = cast(list[bytes], run(consume_to_end(topics, int(worker_env["KPIMON_PARTITIONS"]))))
    events = [orjson.loads(raw) for raw in values]
    assert len({event["event_id"] for event in events}) == len(events)  # no id made twice
    counted = Counter(str(event["type"]) for event in events)
    # a won deal naming an account opens its subscription: the worker sends that start itself
    counted["subscription.started"] += len(
        {e["deal_id"] for e in events if e["type"] == "deal.won" and "account_id" in e}
    )
    wait_until_counted(worker.port, counted)
    config = load_config(CONFIG)
    zones = {team: config.timezone_of(team) for team in config.teams}
    overall = ZoneInfo(config.timezone)  # the days of scope all
    samples, now = scrape_at_one_moment(worker.port, [overall, *zones.values()])
    for name in ("kpimon_events_duplicate_total", "kpimon_events_late_dropped_total", "kpimon_events_rejected_total"):
        assert not any(samples.get(name, {}).values()), (name, samples.get(name))

    missing = [
        kpi.metric
        for kpi in load_catalog().kpis
        if "all" in kpi.scopes and "30d" in kpi.windows
        if not math.isfinite(value(samples, kpi.metric, scope="all", window="30d") or math.nan)
    ]
    cohort = value(samples, "kpimon_customers_at_start", scope="all", window="30d") or 0
    if cohort < CLV_MIN_COHORT or not value(samples, "kpimon_logo_churn_ratio", scope="all", window="30d"):
        # The demo world starts 31 days ago with few customers, and its churn is random: when the cohort of 30 days
        # ago is too small or none of it churned, CLV and LTV:CAC rightly have no value (the catalog says why).
        assert set(missing) >= WITHOUT_CHURN, (cohort, missing)
        missing = [metric for metric in missing if metric not in WITHOUT_CHURN]
    assert not missing, f"no value for scope all, window 30d: {missing}"

    rates = {currency: Decimal(rate) for currency in config.known_currencies() if (rate := config.rate_of(currency))}
    offline = funnel_between(events, calendar_days_start(now, 30, overall), math.inf, rates)
    assert offline["deals_won"] >= 10 and offline["leads"] >= 500
    for name, expected in cast(Mapping[str, float | Decimal | None], offline).items():
        observed = value(samples, FUNNEL_METRICS[name], scope="all", window="30d")
        assert expected is not None and observed is not None, name
        assert math.isclose(observed, float(expected), rel_tol=1e-9), (name, observed, expected)

    days = {team: datetime.fromtimestamp(now, zone).date() for team, zone in zones.items()}
    today = activity_on(events, days, zones)
    assert sum(today.values()) > 100  # the history's part of today and the live part's
    for rep in config.reps:
        for kind in ACTIVITY_TYPES:
            observed = value(samples, ACTIVITY_COUNTERS[kind], scope="rep", rep=rep, window="today") or 0.0
            assert observed == today.get((rep, kind), 0), (rep, kind)


def wait_until_counted(port: int, produced: Counter[str]) -> None:
    """Until the worker counted every event produced, by type, and what it sends itself (conversions) arrived."""

    def counted() -> bool:
        samples = scrape(port)
        return all(by_type(samples, "kpimon_events_total")[kind] == count for kind, count in produced.items())

    def missing() -> str:
        observed = by_type(scrape(port), "kpimon_events_total")
        return f"{produced.total()} events counted; by type, produced - counted: " + str(
            {kind: count - observed[kind] for kind, count in produced.items() if count != observed[kind]}
        )

    wait_until(counted, timeout=240, message=missing, interval=2)
    wait_until(lambda: settled(port), timeout=30, message="no event counted in two seconds")


def settled(port: int) -> bool:
    """No event counted in two seconds: what the worker sends itself (conversions, attribution) has arrived."""
    before = scrape(port)["kpimon_events_total"]
    time.sleep(2)
    return scrape(port)["kpimon_events_total"] == before


def scrape_at_one_moment(port: int, zones: list[ZoneInfo]) -> tuple[dict[str, dict[Labels, float]], float]:
    """A scrape and its time, taken again if a local day (in any of ``zones``) began during it."""
    while True:
        before = time.time()
        samples = scrape(port)
        after = time.time()
        if all(
            datetime.fromtimestamp(before, zone).date() == datetime.fromtimestamp(after, zone).date() for zone in zones
        ):
            return samples, before
