"""Both public data sets replayed through a real worker: every funnel KPI per scope and month equals the
offline computation of tests/reference/offline_funnel.py (counts exactly, amounts and ratios within 1e-9).
Likewise per campaign, for generated events with campaigns (tests/reference/offline_campaigns.py)."""

from __future__ import annotations

import csv
import math
import os
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from tests.integration.support import REPO, WorkerProcess, kill_after_each, scrape, total, wait_until
from tests.reference.offline_campaigns import campaign_events, campaign_funnel_by_month
from tests.reference.offline_funnel import olist_funnel_by_month, sales_opportunities_by_month

DATASETS = REPO.parent / "shared" / "datasets"
SALES = DATASETS / "crm-sales-opportunities" / "sales_pipeline.csv"
OLIST = DATASETS / "olist-marketing-funnel" / "olist_marketing_qualified_leads_dataset.csv"
MAPPINGS = REPO / "deploy" / "mappings"
OLIST_CONFIG = "timezone: America/Sao_Paulo\nreporting_currency: BRL\n"

# offline name -> the worker's (counter or KPI id); amounts and ratios compared within 1e-9
SALES_VALUES = {
    "opportunities_created": "opportunities_created",
    "deals_won": "deals_won",
    "deals_lost": "deals_lost",
    "revenue": "revenue",
    "win_rate": "win_rate",
    "opportunity_to_customer": "opportunity_to_customer",
    "average_deal_size": "average_deal_size",
    "cycle_mean_seconds": "sales_cycle",
    "cycle_p50_seconds": "sales_cycle_p50_seconds",
    "cycle_p90_seconds": "sales_cycle_p90_seconds",
    "pipeline_velocity_per_day": "pipeline_velocity",
}
COUNTERS = {"opportunities_created", "deals_won", "deals_lost", "revenue", "leads", "mqls"}


def _replay(source: Path, mapping: str, env: Mapping[str, str], *extra: str) -> None:
    command = [
        sys.executable,
        "-m",
        "streams.tools.cli",
        "replay",
        str(source),
        "--mapping",
        str(MAPPINGS / mapping),
        *extra,
    ]
    result = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 bad rows" in result.stdout, result.stdout


def _months(port: int) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/kpis/months", timeout=10) as response:
        rows: list[dict[str, Any]] = orjson.loads(response.read())
    return rows


def _worker_values(row: Mapping[str, Any]) -> dict[str, float]:
    return {**row["kpis"], **{name: value for name, value in row["counters"].items() if name in COUNTERS}}


def _compare(expected: Any, observed: float | None, where: str) -> None:
    if expected is None:
        assert observed is None, f"{where}: expected no value, got {observed}"
    elif isinstance(expected, int):
        assert observed == expected, f"{where}: expected {expected}, got {observed}"
    else:
        assert observed is not None, f"{where}: expected {expected}, got nothing"
        assert math.isclose(float(Decimal(expected)), observed, rel_tol=1e-9, abs_tol=1e-9), (
            f"{where}: expected {expected}, got {observed}"
        )


def _run_worker_until_counted(make_worker: Callable[..., WorkerProcess], events: int, **env: str) -> WorkerProcess:
    worker = make_worker(**env)
    worker.start()
    wait_until(
        lambda: total(scrape(worker.port), "kpimon_events_total") >= events,
        timeout=240,
        message=f"{events} events counted",
    )
    return worker


ATTRIBUTION_EVENTS = ("lead.deal_closed", "contact.lead_updated")  # sent by the worker; how many depends on the order


def _without_attribution(samples: Mapping[str, Mapping[Any, float]], name: str) -> float:
    return sum(
        value for labels, value in samples.get(name, {}).items() if dict(labels)["type"] not in ATTRIBUTION_EVENTS
    )


def _sales_events(expected: Mapping[Any, Any]) -> int:
    return sum(
        values["opportunities_created"] + values["deals_won"] + values["deals_lost"]
        for (kind, _, _), values in expected.items()
        if kind == "overall"
    )


def _assert_sales_months_match(port: int, expected: Mapping[Any, Any]) -> None:
    rows = {
        (row["scope"], row["team"], row["rep"], row["month"]): _worker_values(row)
        for row in _months(port)
        if row["scope"] in ("all", "team", "rep")
    }
    scope_of = {"overall": lambda key: ("all", "", ""), "team": lambda key: ("team", key[0], ""),
                "rep": lambda key: ("rep", key[0], key[1])}  # fmt: skip
    compared = 0
    for (kind, key, month), values in expected.items():
        observed = rows.get((*scope_of[kind](key), month), {})
        for offline_name, worker_name in SALES_VALUES.items():
            _compare(values[offline_name], observed.get(worker_name), f"{kind} {key} {month} {offline_name}")
            compared += 1
    assert set(rows) == {(*scope_of[kind](key), month) for kind, key, month in expected}
    assert compared > 4000


@pytest.mark.integration
@pytest.mark.skipif(not SALES.exists(), reason="the public data sets are not next to this checkout")
def test_sales_funnel_per_rep_team_and_month_equals_the_offline_computation(
    make_worker: Callable[..., WorkerProcess], worker_env: dict[str, str]
) -> None:
    expected = sales_opportunities_by_month(DATASETS)
    _replay(SALES, "crm-sales-opportunities.yaml", worker_env)
    worker = _run_worker_until_counted(make_worker, _sales_events(expected))
    _assert_sales_months_match(worker.port, expected)


@pytest.mark.integration
@pytest.mark.skipif(not SALES.exists(), reason="the public data sets are not next to this checkout")
def test_sales_funnel_is_identical_after_sigkill_during_the_replay(
    make_worker: Callable[..., WorkerProcess], worker_env: dict[str, str]
) -> None:
    """The replay runs (twice: every event has a copy) while the worker is killed twice; the result is the same."""
    expected = sales_opportunities_by_month(DATASETS)
    events = _sales_events(expected)
    command = [sys.executable, "-m", "streams.tools.cli", "replay", str(SALES), "--mapping",
               str(MAPPINGS / "crm-sales-opportunities.yaml"), "--rate", "4000"]  # fmt: skip
    replays = subprocess.Popen(
        ["/bin/sh", "-c", f"{' '.join(command)} && {' '.join(command)}"],
        env={**os.environ, **worker_env},
        stdout=subprocess.DEVNULL,
    )
    worker = make_worker()
    try:
        kill_after_each(worker, (events // 3, events), timeout=180)
        assert replays.wait(timeout=120) == 0
    finally:
        replays.kill()
    worker.start()

    def all_read() -> bool:
        # at least one copy of each: a deal's event forwarded to the re-keyed topic, then read again after a kill,
        # is forwarded again, and that copy is recognised as one too
        samples = scrape(worker.port)
        return total(samples, "kpimon_events_total") == events and (
            total(samples, "kpimon_events_duplicate_total") >= events
        )

    wait_until(all_read, timeout=240, message=f"{events} events and {events} second copies read")
    _assert_sales_months_match(worker.port, expected)


def _olist_cohorts() -> dict[tuple[str, str], int]:
    """(channel or "" for overall, São Paulo month of the lead's first contact) -> its leads that closed a deal."""
    with OLIST.open(newline="", encoding="utf-8-sig") as handle:
        leads = {row["mql_id"]: row for row in csv.DictReader(handle)}
    with (OLIST.parent / "olist_closed_deals_dataset.csv").open(newline="", encoding="utf-8-sig") as handle:
        closed = {row["mql_id"] for row in csv.DictReader(handle)}
    cohorts: dict[tuple[str, str], int] = {}
    for mql_id in closed:
        month_number, _, year = leads[mql_id]["first_contact_date"].split("/")  # M/D/YYYY, a local date
        month = f"{year}-{int(month_number):02d}"
        for channel in ("", leads[mql_id]["origin"] or "unknown"):
            cohorts[(channel, month)] = cohorts.get((channel, month), 0) + 1
    return cohorts


@pytest.mark.integration
@pytest.mark.skipif(not OLIST.exists(), reason="the public data sets are not next to this checkout")
def test_olist_funnel_per_channel_rep_and_month_equals_the_offline_computation(
    make_worker: Callable[..., WorkerProcess], worker_env: dict[str, str], tmp_path: Path
) -> None:
    expected = olist_funnel_by_month(DATASETS)
    config = tmp_path / "kpimon.yaml"
    config.write_text(OLIST_CONFIG)
    _replay(OLIST, "olist-marketing-funnel.yaml", worker_env, "--config", str(config))
    events = sum(
        2 * (values["leads"] or 0) + values["deals_won"]
        for (kind, _, _), values in expected.items()
        if kind == "overall"
    )
    cohorts = _olist_cohorts()
    won_leads = sum(count for (channel, _), count in cohorts.items() if channel == "")
    worker = _run_worker_until_counted(make_worker, events, KPIMON_CONFIG_FILE=str(config))
    wait_until(  # the lead.converted events go round through the re-keyed topic
        lambda: (
            _without_attribution(scrape(worker.port), "kpimon_events_total") >= events + 2 * won_leads
        ),  # lead.converted
        timeout=60,
        message="the leads' conversions counted",
    )
    rows = {(row["scope"], row["channel"], row["rep"], row["month"]): row["counters"] for row in _months(worker.port)}
    scope_of = {"overall": lambda key: ("all", "", ""), "channel": lambda key: ("channel", key[0], ""),
                "rep": lambda key: ("rep", "", key[0])}  # fmt: skip
    for (kind, key, month), values in expected.items():
        observed = rows.get((*scope_of[kind](key), month), {})
        where = f"{kind} {key} {month}"
        _compare(values["deals_won"], observed.get("deals_won", 0), f"{where} deals_won")
        if kind in ("overall", "channel"):  # every won deal names its lead (deal_id = lead_id = mql_id)
            cohort = cohorts.get((key[0] if key else "", month), 0)
            _compare(cohort, observed.get("cohort_customers", 0), f"{where} cohort_customers")
        if kind != "rep":
            _compare(values["leads"], observed.get("leads", 0), f"{where} leads")
            _compare(values["mqls"], observed.get("mqls", 0), f"{where} mqls")
            leads, won = observed.get("leads", 0), observed.get("deals_won", 0)
            _compare(values["lead_to_customer"], won / leads if leads else None, f"{where} lead_to_customer")


# -- per campaign ------------------------------------------------------------------------------------------------------

CAMPAIGN_ZONE = "America/New_York"  # the config's default zone: every campaign's months are in it
CAMPAIGN_CONFIG = f"""\
timezone: {CAMPAIGN_ZONE}
reporting_currency: USD
teams:
  emea: {{timezone: Europe/Berlin}}
  amer: {{timezone: America/New_York}}
  apac: {{timezone: Asia/Singapore}}
"""
CAMPAIGN_COUNTERS = (
    "leads",
    "mqls",
    "sqls",
    "cohort_opportunities",
    "cohort_customers",
    "opportunities_created",
    "deals_won",
    "deals_lost",
    "revenue",
    "cycle_seconds",
    "campaigns_launched",
    "email_campaign_sends",
)
CAMPAIGN_KPIS = (
    "lead_to_mql",
    "win_rate",
    "opportunity_to_customer",
    "average_deal_size",
    "sales_cycle",
    "lead_cohort_to_customer",
)


def _write_jsonl(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(event) + b"\n" for event in events))
    return path


def _replay_jsonl(source: Path, env: Mapping[str, str], config: Path) -> None:
    command = [sys.executable, "-m", "streams.tools.cli", "replay", str(source), "--config", str(config)]
    result = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 bad rows" in result.stdout, result.stdout


def _conversions(funnel: list[dict[str, Any]]) -> int:
    """The lead.converted events the worker sends itself: per deal naming its lead, one when created, one when won."""
    with_lead = {event["deal_id"] for event in funnel if event["type"] == "opportunity.created" and "lead_id" in event}
    won = {event["deal_id"] for event in funnel if event["type"] == "deal.won"}
    return len(with_lead) + len(with_lead & won)


@pytest.mark.integration
def test_funnel_per_campaign_and_month_equals_the_offline_computation(
    make_worker: Callable[..., WorkerProcess], worker_env: dict[str, str], tmp_path: Path
) -> None:
    """Leads count in the campaign of their creation, deals in the latest campaign their events name, in the
    config's default zone; what names no campaign counts in none. The funnel is replayed twice (every copy a
    duplicate), the marketing events once (activity copies more than 8 days old would count again)."""
    funnel, marketing = campaign_events(seed=11)
    expected = campaign_funnel_by_month([*funnel, *marketing], ZoneInfo(CAMPAIGN_ZONE))
    config = tmp_path / "kpimon.yaml"
    config.write_text(CAMPAIGN_CONFIG)
    funnel_file = _write_jsonl(tmp_path / "funnel.jsonl", funnel)
    for source in (funnel_file, _write_jsonl(tmp_path / "marketing.jsonl", marketing), funnel_file):
        _replay_jsonl(source, worker_env, config)
    worker = make_worker(KPIMON_CONFIG_FILE=str(config))
    worker.start()
    events = len(funnel) + len(marketing) + _conversions(funnel)

    def all_read() -> bool:
        samples = scrape(worker.port)
        return _without_attribution(samples, "kpimon_events_total") >= events and (
            _without_attribution(samples, "kpimon_events_duplicate_total") >= len(funnel)
        )

    wait_until(all_read, timeout=240, message=f"{events} events and {len(funnel)} copies read")
    wait_until(  # a scrape is a moment: let any conversion still on its way arrive
        lambda: _without_attribution(scrape(worker.port), "kpimon_events_total") == events,
        timeout=30,
        message="no extra event",
    )
    months = _months(worker.port)
    rows = {(row["campaign"], row["month"]): row for row in months if row["scope"] == "campaign"}
    compared = 0
    for (campaign, month), values in expected.items():
        row = rows.get((campaign, month), {"counters": {}, "kpis": {}})
        where = f"campaign {campaign!r} {month}"
        for name in CAMPAIGN_COUNTERS:
            _compare(values[name], row["counters"].get(name, 0), f"{where} {name}")
        for name in CAMPAIGN_KPIS:
            _compare(values[name], row["kpis"].get(name), f"{where} {name}")
        compared += len(CAMPAIGN_COUNTERS) + len(CAMPAIGN_KPIS)
    assert compared > 300
    assert all(row["team"] == row["rep"] == row["channel"] == "" for row in rows.values())
    for key in set(rows) - set(expected):  # a deal moved to another campaign leaves zeros behind, nothing else
        counters = {name: rows[key]["counters"].get(name, 0) for name in CAMPAIGN_COUNTERS}
        assert not any(counters.values()), f"campaign {key}: {counters}"  # (attributed revenue may count there)
    funnel_campaigns = {
        campaign for (campaign, _), row in rows.items() if any(row["counters"].get(name) for name in CAMPAIGN_COUNTERS)
    }
    assert funnel_campaigns == {campaign for campaign, _ in expected}  # no "unknown"; web-only has web and spend only
    overall = sum(row["counters"].get("leads", 0) for row in months if row["scope"] == "all")
    in_campaigns = sum(values["leads"] for values in expected.values())
    assert overall == sum(event["type"] == "lead.created" for event in funnel) > in_campaigns
