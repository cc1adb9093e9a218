"""A real Prometheus scrapes a real worker: every rule and dashboard query returns data, with the right labels.

Prometheus (Debian's binary, `make tools`) runs with deploy/prometheus/prometheus.local.yml, its
worker target moved to the test worker's port, scraping and evaluating every second. The worker
counts demo events from `kpimon simulate`, plus a small funnel per team (the simulator's deals
take many minutes to close), a few customers and survey answers per team, and one invalid
message. Then every expression of the recording rules, of the alerting rules and of the Grafana
dashboards in deploy/grafana/dashboards/ is run through Prometheus' HTTP API.

A real Alertmanager with deploy/alertmanager/alertmanager.yml delivers alerts to a stand-in for
Slack's webhook on 127.0.0.1: the team's channels, the inhibition, the resolved messages.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from schemas.catalog import Catalog, load_catalog
from schemas.config import KpimonConfig, load_config
from schemas.events import routing_key_of
from tests.integration.prometheus_server import Prometheus, binary, prometheus_binary
from tests.integration.support import (
    REPO,
    Labels,
    Message,
    WorkerProcess,
    event_message,
    free_port,
    produce,
    run,
    scrape,
    total,
    wait_until,
)
from tests.reference.offline_forecast import acceptance_events, projection, stage_forecast

PROMETHEUS_DIR = REPO / "deploy/prometheus"
DASHBOARDS = REPO / "deploy/grafana/dashboards"
ALERTMANAGER = REPO / "deploy/alertmanager/alertmanager.yml"
CONFIG_FILE = REPO / "deploy/examples/kpimon.yaml"
WORKER_JOB = "kpimon"
SIMULATED = 1500
READ_COUNTERS = ("kpimon_events_total", "kpimon_events_duplicate_total", "kpimon_events_rejected_total")
WIN_RATE = "kpimon_win_rate_ratio"
SIMULATE = (sys.executable, "-m", "streams.tools.cli", "simulate")
KPI_LABELS = {"job", "window", "scope", "team", "rep", "channel", "campaign"}
FUNNEL_CAMPAIGN = "partner-referrals"
ATTAINMENT = "kpimon_goal_attainment_ratio"
FORECAST_RECORDS = {
    "kpimon_goal_projection",
    "kpimon:win_rate_by_stage:ratio",
    "kpimon:open_pipeline_value_by_stage:weighted",
    "kpimon:open_deals_by_stage:weighted",
    "kpimon:open_pipeline_value:weighted",
    "kpimon:open_deals:weighted",
}
FORECAST_TEAM, FORECAST_REP = "acme", "acme-ann"
# Labels of each alert's expression (before the alert's own labels are added).
ALERT_LABELS = {
    "KpimonWorkerDown": {"job", "instance"},
    "KpimonConsumerLagHigh": {"job", "topic", "partition"},
    "KpimonDeadLettersHigh": {"job"},
    "KpimonNoEvents": {"job"},
    "KpimonWinRateLow": {"job", "window", "scope", "team"},
}
# A comparison with a number filters; with `bool` it keeps every series (0 or 1), so an alert's
# expression shows its series whether or not it would fire.
THRESHOLD = re.compile(r"(?<![=!<>~])(==|!=|>=|<=|>|<)\s*(?=-?\d)")
GRAFANA_BUILTINS = {
    "__rate_interval": "5m",
    "__interval": "5m",
    "__range": "5m",
    "__interval_ms": "300000",
    "__range_s": "300",
    "__range_ms": "300000",
}
GRAFANA_VARIABLE = re.compile(r"\$\{(\w+)(?::[\w]+)?\}|\[\[(\w+)(?::[\w]+)?\]\]|\$(\w+)")
GRAFANA_MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"')


# -- Prometheus --------------------------------------------------------------------------------------------------------


def prometheus_config(worker_port: int, port: int) -> dict[str, Any]:
    """deploy/prometheus/prometheus.local.yml, scraping the test worker every second, without Alertmanager."""
    config: dict[str, Any] = yaml.safe_load((PROMETHEUS_DIR / "prometheus.local.yml").read_text(encoding="utf-8"))
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(PROMETHEUS_DIR / pattern) for pattern in config["rule_files"]]
    config.pop("alerting", None)
    targets = {WORKER_JOB: f"127.0.0.1:{worker_port}", "prometheus": f"127.0.0.1:{port}"}
    for job in config["scrape_configs"]:
        job.update(scrape_interval="1s", scrape_timeout="1s")
        job["static_configs"] = [{"targets": [targets[job["job_name"]]]}]
    return config


@pytest.fixture
def prometheus_factory(tmp_path: Path) -> Iterator[Callable[[int], Prometheus]]:
    started: list[Prometheus] = []

    def start(worker_port: int) -> Prometheus:
        started.append(Prometheus(tmp_path, lambda port: prometheus_config(worker_port, port)))
        return started[-1]

    yield start
    for server in started:
        server.stop()


# -- events ------------------------------------------------------------------------------------------------------------


def funnel_events(config: KpimonConfig, now: float) -> list[dict[str, Any]]:
    """Per team, for its first rep: 3 leads, 2 MQLs, 1 SQL, 3 opportunities, 1 won, 1 lost and 1 open in a stage
    (the stage forecast has data: the simulator's deals take minutes to open).

    Two of the leads and both deals name ``FUNNEL_CAMPAIGN``; the third lead names no campaign. An email campaign
    of ``FUNNEL_CAMPAIGN`` (sends, a bounce, an unsubscribe) reaches the first lead's person, who opens and clicks
    before the lead is created: every email rate, and attribution to the email channel, have data.
    """
    events: list[dict[str, Any]] = []

    def event(team: str, kind: str, seconds_ago: float, serial: str, **fields: Any) -> None:
        occurred_at = datetime.fromtimestamp(now - seconds_ago, UTC).isoformat()
        envelope = {"event_id": f"prom-{team}-{serial}", "type": kind, "occurred_at": occurred_at, "source": "test"}
        events.append({**envelope, "team": team, **fields})

    for team in config.teams:
        rep = next(rep_id for rep_id, rep in config.reps.items() if rep.team == team)
        for n in range(3):
            campaign = {"campaign_id": FUNNEL_CAMPAIGN} if n < 2 else {}
            event(team, "lead.created", 120, f"lead-{n}", lead_id=f"{team}-lead-{n}", channel="referral", **campaign)
        for n in range(2):
            event(team, "lead.qualified", 110, f"mql-{n}", lead_id=f"{team}-lead-{n}", stage="mql")
        event(team, "lead.qualified", 100, "sql-0", lead_id=f"{team}-lead-0", stage="sql", rep_id=rep)
        for n in range(2):
            deal = {"deal_id": f"{team}-deal-{n}", "rep_id": rep, "lead_id": f"{team}-lead-{n}"}
            event(
                team,
                "opportunity.created",
                90,
                f"opportunity-{n}",
                **deal,
                amount=20000,
                currency="EUR",
                channel="referral",
                campaign_id=FUNNEL_CAMPAIGN,
            )
        event(team, "opportunity.created", 90, "opportunity-open", deal_id=f"{team}-deal-open", rep_id=rep,
              amount=10000, currency="EUR", channel="referral")  # fmt: skip
        stages = {"from_stage": "discovery", "to_stage": "proposal"}
        event(team, "opportunity.stage_changed", 60, "stage-open", deal_id=f"{team}-deal-open", rep_id=rep, **stages)
        event(team, "deal.won", 30, "won-0", deal_id=f"{team}-deal-0", rep_id=rep, amount=18000, currency="EUR")
        event(team, "deal.lost", 30, "lost-1", deal_id=f"{team}-deal-1", rep_id=rep, reason="chose a competitor")
        event(team, "email_campaign.sent", 200, "sent", campaign_id=FUNNEL_CAMPAIGN, recipients=40)
        # spend where the won deal is attributed, whatever the hour the simulator ran at: ROMI has data
        spend = {"channel": "referral", "campaign_id": FUNNEL_CAMPAIGN, "amount": 500, "currency": "EUR"}
        event(team, "spend.recorded", 150, "spend", **spend)
        for serial, kind, person in (
            ("bounced", "email.bounced", "nobody"),
            ("opened", "email.opened", "lead-0"),
            ("clicked", "email.clicked", "lead-0"),
            ("unsub", "email.unsubscribed", "lead-2"),
        ):
            event(team, kind, 190, serial, campaign_id=FUNNEL_CAMPAIGN, contact_id=f"{team}-{person}")
    return events


def customer_events(config: KpimonConfig, now: float) -> list[dict[str, Any]]:
    """Per team, for its first rep: 10 accounts paying since 100 days ago (before every window's start; 20 or more
    in all, the cohort CLV needs), one of which churns, one expands, one contracts, one churns and comes back within
    the window; a new account; NPS, CSAT and CES answers. Every customer, retention and survey query has data."""
    events: list[dict[str, Any]] = []
    day, hour = 86_400, 3_600

    def event(team: str, event_type: str, seconds_ago: float, serial: str, **fields: Any) -> None:
        occurred_at = datetime.fromtimestamp(now - seconds_ago, UTC).isoformat()
        envelope = {
            "event_id": f"prom-{team}-{serial}",
            "type": event_type,
            "occurred_at": occurred_at,
            "source": "test",
        }
        events.append({**envelope, "team": team, **fields})

    for team in config.teams:
        rep = next(rep_id for rep_id, rep in config.reps.items() if rep.team == team)
        owner = {"rep_id": rep, "channel": "referral", "currency": "EUR"}
        for n in range(10):
            event(
                team, "subscription.started", 100 * day, f"start-{n}", account_id=f"{team}-acct-{n}", mrr=100, **owner
            )
        event(team, "subscription.churned", 10 * hour, "churn-0", account_id=f"{team}-acct-0", **owner)
        event(team, "subscription.changed", 5 * hour, "up-1", account_id=f"{team}-acct-1", mrr=150, **owner)
        event(team, "subscription.changed", 5 * hour, "down-2", account_id=f"{team}-acct-2", mrr=60, **owner)
        event(team, "subscription.churned", 20 * hour, "churn-3", account_id=f"{team}-acct-3", **owner)
        event(team, "subscription.started", 2 * hour, "back-3", account_id=f"{team}-acct-3", mrr=100, **owner)
        event(team, "subscription.started", 3 * hour, "start-new", account_id=f"{team}-acct-new", mrr=80, **owner)
        for serial, account, kind, score in (("nps-4", 4, "nps", 9), ("nps-5", 5, "nps", 3), ("csat-6", 6, "csat", 5),
                                             ("ces-7", 7, "ces", 2)):  # fmt: skip
            event(team, "survey.responded", hour, serial, account_id=f"{team}-acct-{account}", kind=kind, score=score)
    return events


def simulate(env: Mapping[str, str], total_events: int) -> int:
    """``kpimon simulate --total N``: the number of events it produced."""
    result = subprocess.run(
        [*SIMULATE, "--total", str(total_events), "--rate", "500", "--config", str(CONFIG_FILE)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    match = re.search(r"done, ([\d,]+) events produced", result.stdout)
    assert match, result.stdout
    return int(match.group(1).replace(",", ""))


# -- the expressions under test ----------------------------------------------------------------------------------------


def rules(file: str) -> list[dict[str, Any]]:
    groups = yaml.safe_load((PROMETHEUS_DIR / "rules" / file).read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"]]


def grafana_targets() -> Iterator[tuple[str, str, str]]:
    """(dashboard file, panel title, PromQL) of every query of every dashboard, variables filled in."""
    for path in sorted(DASHBOARDS.glob("*.json")):
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        variables = {
            variable["name"]: (variable.get("current") or {}).get("value", "$__all")
            for variable in (dashboard.get("templating") or {}).get("list", [])
        }

        def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
            for panel in items:
                yield panel
                yield from panels(panel.get("panels") or [])

        for panel in panels(dashboard.get("panels") or []):
            for target in panel.get("targets") or []:
                if target.get("expr"):
                    yield path.name, str(panel.get("title", "")), grafana_expr(target["expr"], variables)


def grafana_value(name: str, variables: Mapping[str, Any]) -> tuple[str, bool]:
    """A variable's value in a query, and whether it is a regex (All, or several values)."""
    if name in GRAFANA_BUILTINS or name.startswith("__auto_interval"):
        return GRAFANA_BUILTINS.get(name, "5m"), False
    value = variables.get(name, "$__all")
    values = value if isinstance(value, list) else [value]
    if not values or "$__all" in values:
        return ".*", True
    return "|".join(str(v) for v in values), len(values) > 1


def grafana_expr(expr: str, variables: Mapping[str, Any]) -> str:
    """Grafana's interpolation of template variables: their current value, All as `.*`."""

    def substitute(text: str) -> tuple[str, bool]:
        regex = False

        def one(match: re.Match[str]) -> str:
            nonlocal regex
            value, is_regex = grafana_value(match.group(1) or match.group(2) or match.group(3), variables)
            regex = regex or is_regex
            return value

        return GRAFANA_VARIABLE.sub(one, text), regex

    def matcher(match: re.Match[str]) -> str:
        label, operator, value = match.groups()
        value, regex = substitute(value)
        if regex:
            operator = {"=": "=~", "!=": "!~"}.get(operator, operator)
        return f'{label}{operator}"{value}"'

    return substitute(GRAFANA_MATCHER.sub(matcher, expr))[0]


def with_bool(expr: str) -> str:
    return THRESHOLD.sub(lambda match: f"{match.group(1)} bool ", expr)


def describe(results: list[dict[str, Any]]) -> str:
    return ", ".join(json.dumps(result["metric"], sort_keys=True) for result in results[:3])


def rfc3339_seconds(value: str) -> float:
    """Prometheus' timestamps have nanoseconds; Python parses microseconds."""
    return datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", value).replace("Z", "+00:00")).timestamp()


# -- the test ----------------------------------------------------------------------------------------------------------


@pytest.mark.integration
def round_the_clock(config_file: Path, output: Path) -> Path:
    """The example config with its goals counted round the clock (no working hours or business days).

    So every goal has a pace above 0 whenever the test runs (at night and on weekends too), and every
    dashboard query reading one returns data.
    """
    data = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    for goal in data["goals"]:
        goal.pop("hours", None)
        goal.pop("business_days", None)
    output.write_text(yaml.safe_dump(data), encoding="utf-8")
    return output


def test_every_rule_and_dashboard_query_returns_data_from_a_real_worker(
    tmp_path: Path,
    make_worker: Callable[..., WorkerProcess],
    prometheus_factory: Callable[[int], Prometheus],
    worker_env: dict[str, str],
) -> None:
    started = time.monotonic()
    prometheus_binary()
    config_file = round_the_clock(CONFIG_FILE, tmp_path / "kpimon.yaml")
    config = load_config(config_file)
    worker = make_worker(KPIMON_CONFIG_FILE=str(config_file), KPIMON_SHUTDOWN_TIMEOUT_SECONDS="3")
    prometheus = prometheus_factory(worker.port)
    worker.start()
    wait_until(prometheus.ready, timeout=30, message=lambda: f"prometheus ready; see {prometheus.log_path}")

    produced = simulate(worker_env, SIMULATED)
    funnel = funnel_events(config, time.time()) + customer_events(config, time.time())
    crm = worker_env["KPIMON_CRM_TOPIC"]
    invalid = Message(crm, b"{not json", b"prom-invalid")
    run(produce([*(event_message(crm, event, routing_key_of(event)) for event in funnel), invalid]))
    messages = produced + len(funnel) + 1

    seen: list[tuple[float, float, int]] = []

    def worker_read_everything() -> bool:
        """Every message read (counted, duplicate or rejected), the same total twice in a row, win rates, and
        ROMI: the won deals' revenue reached their people through two internal hops and was attributed."""
        samples = scrape(worker.port)
        read = sum(total(samples, name) for name in READ_COUNTERS)
        rejected, win_rates = total(samples, "kpimon_events_rejected_total"), len(samples.get(WIN_RATE, {}))
        seen.append((read, rejected, win_rates, len(samples.get("kpimon_romi_ratio", {}))))
        settled = seen[-2:] == [seen[-1]] * 2
        return read >= messages and rejected == 1 and win_rates > 0 and seen[-1][3] > 0 and settled

    wait_until(worker_read_everything, timeout=60, message=lambda: f"the worker read {messages}: {seen[-1:]}")
    read_total = f'sum({{__name__=~"{"|".join(READ_COUNTERS)}"}})'

    def prometheus_scraped_the_workers_total() -> bool:
        """Prometheus holds what the worker serves now: the worker's own events (a lead's conversion, its
        person's view) can still arrive after the two equal reads above, on a slow first start."""
        read = sum(total(scrape(worker.port), name) for name in READ_COUNTERS)
        return bool(prometheus.query(f"{read_total} == {read}"))

    wait_until(
        prometheus_scraped_the_workers_total,
        timeout=30,
        message=lambda: f"{read_total} as on the worker: {prometheus.targets()}",
    )
    scraped_at = time.time()

    def rules_evaluated_since_then() -> bool:
        groups = prometheus.get("/api/v1/rules")["groups"]
        return bool(groups) and all(rfc3339_seconds(group["lastEvaluation"]) > scraped_at + 0.1 for group in groups)

    wait_until(rules_evaluated_since_then, timeout=30, message="every rule group evaluated after the last scrape")
    failures = check_recording_rules(prometheus, load_catalog(), config)
    failures += check_goal_attainment(prometheus, scrape(worker.port), load_catalog())
    failures += check_alerting_rules(prometheus)
    queries = list(grafana_targets())
    failures += check_dashboards(prometheus, queries)
    assert not failures, "\n".join(failures)
    print(
        f"{len(rules('kpimon.rules.yml'))} recording rules, {len(rules('kpimon.alerts.yml'))} alerts, "
        f"{len(queries)} dashboard queries checked in {time.monotonic() - started:.1f} s"
    )


def forecast_config(output: Path) -> Path:
    """One team with a monthly revenue goal and a monthly deals-won goal, in EUR."""
    goal = {"scope": "team", "period": "month"}
    config = {
        "teams": {FORECAST_TEAM: {"name": "Acme", "timezone": "UTC"}},
        "reps": {FORECAST_REP: {"team": FORECAST_TEAM}},
        "reporting_currency": "EUR",
        "goals": [
            {"name": "acme-monthly-revenue", "kpi": "revenue", "target": 300_000, **goal},
            {"name": "acme-monthly-deals", "kpi": "deals_won", "target": 10, **goal},
        ],
    }
    output.write_text(yaml.safe_dump(config), encoding="utf-8")
    return output


@pytest.mark.integration
def test_the_weighted_pipeline_projection_of_a_month_through_a_real_prometheus(
    tmp_path: Path,
    make_worker: Callable[..., WorkerProcess],
    prometheus_factory: Callable[[int], Prometheus],
    worker_env: dict[str, str],
) -> None:
    """The forecast's acceptance, end to end: the 12 deals of ``acceptance_events`` (over discovery, proposal and
    negotiation, a copy and a stage change delivered after its win) through a real worker, and the generated
    recording rules evaluated by a real Prometheus.

    By hand (tests/unit/schemas/test_forecast.py): 30-day win rates negotiation 3/4, proposal 1/2, discovery 0/2,
    overall 4/8 for the deal with no stage change; weighted open value 40,000 x 0.75 + 20,000 x 0.5 + 30,000 x 0
    + 10,000 x 0.5 = 45,000, weighted open deals 1.75. This month: 75,000 won in 4 deals. Projected: revenue
    120,000, deals won 5.75. The offline reference (tests/reference/offline_forecast.py) gives the same.
    """
    prometheus_binary()
    worker = make_worker(
        KPIMON_CONFIG_FILE=str(forecast_config(tmp_path / "kpimon.yaml")), KPIMON_SHUTDOWN_TIMEOUT_SECONDS="3"
    )
    prometheus = prometheus_factory(worker.port)
    worker.start()
    wait_until(prometheus.ready, timeout=30, message=lambda: f"prometheus ready; see {prometheus.log_path}")

    now = int(time.time())
    events = acceptance_events(now, f"forecast-{worker_env['KPIMON_APP_ID']}", FORECAST_TEAM, FORECAST_REP)
    crm = worker_env["KPIMON_CRM_TOPIC"]
    run(produce(event_message(crm, event, routing_key_of(event)) for event in events))
    month_start = int(datetime.fromtimestamp(now, UTC).replace(day=1, hour=0, minute=0, second=0).timestamp())
    reference = stage_forecast(events, now - 30 * 86_400, month_start)
    expected = {
        kpi: float(projection(reference, of) or 0) for kpi, of in (("revenue", "revenue"), ("deals_won", "deals"))
    }
    if now - 120 >= month_start:  # every outcome is in this month (the hand numbers assume it)
        assert expected == {"revenue": 120_000.0, "deals_won": 5.75}

    def projected() -> dict[str, float]:
        query = f'kpimon_goal_projection{{method="weighted_pipeline", scope="team", team="{FORECAST_TEAM}"}}'
        return {result["metric"]["kpi"]: float(result["value"][1]) for result in prometheus.query(query)}

    wait_until(
        lambda: projected() == pytest.approx(expected),
        timeout=90,
        message=lambda: f"projections {projected()}, expected {expected}; see {prometheus.log_path}",
    )
    rates = {
        result["metric"]["stage"]: float(result["value"][1])
        for result in prometheus.query(f'kpimon:win_rate_by_stage:ratio{{scope="team", team="{FORECAST_TEAM}"}}')
    }
    assert rates == {"negotiation": 0.75, "proposal": 0.5, "discovery": 0.0}
    weighted = prometheus.query(f'kpimon:open_pipeline_value:weighted{{scope="team", team="{FORECAST_TEAM}"}}')
    assert [float(result["value"][1]) for result in weighted] == [45_000.0]
    by_stage = prometheus.query(f'kpimon:open_deals_by_stage:weighted{{scope="team", team="{FORECAST_TEAM}"}}')
    assert {result["metric"]["stage"]: float(result["value"][1]) for result in by_stage} == {
        "negotiation": 0.75,
        "proposal": 0.5,
        "discovery": 0.0,
        "unknown": 0.5,  # no deal closed from it: the team's overall 4 of 8
    }


def check_recording_rules(prometheus: Prometheus, catalog: Catalog, config: KpimonConfig) -> list[str]:
    """Every rule evaluated without error; the KPIs of every scope, without the worker's instance.

    With one worker, each roll-up must equal the worker's own series of that KPI.
    """
    loaded = [rule for group in prometheus.get("/api/v1/rules")["groups"] for rule in group["rules"]]
    files = ("kpimon.rules.yml", "kpimon.alerts.yml", "kpimon.generated-alerts.yml")
    assert len(loaded) == sum(len(rules(name)) for name in files)
    failures = [
        f"{rule['name']}: {rule['health']} {rule.get('lastError')}" for rule in loaded if rule["health"] != "ok"
    ]
    metric_of = {kpi.id: kpi.metric for kpi in catalog.kpis}
    for rule in rules("kpimon.rules.yml"):
        record, expr = rule["record"], rule["expr"]
        if record == ATTAINMENT:
            continue  # one per KPI that can have a goal, most without one here: check_goal_attainment
        if record in FORECAST_RECORDS:
            continue  # projections of goals, not KPI roll-ups: forecast.test.yml and the test below
        results = prometheus.query(expr)
        if not results:
            failures.append(f"{record}: no data")
            continue
        for result in results:
            labels = set(result["metric"])
            if "instance" in labels or not {"job", "window", "scope"} <= labels or not labels <= KPI_LABELS:
                failures.append(f"{record}: labels {sorted(labels)}")
                break
        if len(prometheus.query(record)) != len(results):
            failures.append(f"{record}: the recorded series differ from its expression")
        metric = metric_of[record.split(":")[1]]
        matched = prometheus.query(f"({expr}) - on (job, window, scope, team, rep, channel, campaign) {metric}")
        wrong = [result for result in matched if abs(float(result["value"][1])) > 1e-9]
        if len(matched) != len(results) or wrong:
            failures.append(f"{record}: differs from {metric}: {describe(wrong)} ({len(matched)}/{len(results)})")
    teams = {result["metric"].get("team") for result in prometheus.query('kpimon:win_rate:ratio{scope="team"}')}
    if teams != set(config.teams):
        failures.append(f"kpimon:win_rate:ratio: teams {sorted(map(str, teams))}, expected {sorted(config.teams)}")
    campaign_win_rate = prometheus.query(f'kpimon:win_rate:ratio{{scope="campaign", campaign="{FUNNEL_CAMPAIGN}"}}')
    if not campaign_win_rate:
        failures.append(f"kpimon:win_rate:ratio: no series of campaign {FUNNEL_CAMPAIGN}")
    return failures


def check_goal_attainment(
    prometheus: Prometheus, samples: Mapping[str, Mapping[Labels, float]], catalog: Catalog
) -> list[str]:
    """Each goal on the worker's /metrics has its attainment in Prometheus: the KPI's value there over the target."""
    metric_of = {kpi.id: kpi.metric for kpi in catalog.kpis}
    recorded = {
        tuple(sorted((k, v) for k, v in result["metric"].items() if k != "__name__")): float(result["value"][1])
        for result in prometheus.query(ATTAINMENT)
    }
    expected = {}
    for labels, target in samples.get("kpimon_goal", {}).items():
        names = dict(labels)
        kpi_labels = tuple(sorted((k, v) for k, v in labels if k not in ("kpi", "goal", "period")))
        value = samples.get(metric_of[names["kpi"]], {}).get(kpi_labels, 0.0)
        expected[tuple(sorted((k, v) for k, v in labels if v))] = value / target  # Prometheus drops empty labels
    if not expected:
        return ["kpimon_goal: no goal on the worker's /metrics"]
    wrong = [
        f"{ATTAINMENT}{dict(labels)}: {recorded.get(labels)}, expected {value}"
        for labels, value in expected.items()
        if labels not in recorded or abs(recorded[labels] - value) > 1e-9
    ]
    extra = sorted(set(recorded) - set(expected))
    return wrong + [f"{ATTAINMENT}: no goal on the worker for {dict(labels)}" for labels in extra]


def check_alerting_rules(prometheus: Prometheus) -> list[str]:
    """Each alert expression's series (with `bool`, whether it fires or not) and their labels."""
    failures = []
    for rule in rules("kpimon.alerts.yml"):
        name, expr = rule["alert"], with_bool(rule["expr"])
        results = prometheus.query(expr)
        expected = ALERT_LABELS.get(name)
        if expected is None:
            failures.append(f"{name}: add its labels to ALERT_LABELS")
        elif not results:
            failures.append(f"{name}: no data for {expr}")
        elif any(set(result["metric"]) != expected for result in results):
            failures.append(f"{name}: labels {describe(results)}, expected {sorted(expected)}")
    return failures


def check_dashboards(prometheus: Prometheus, queries: list[tuple[str, str, str]]) -> list[str]:
    """Every query of every Grafana dashboard there is returns data; sums across workers drop the instance."""
    failures = []
    for dashboard, title, expr in queries:
        results = prometheus.query(expr)
        if not results:
            failures.append(f"{dashboard} / {title}: no data for {expr}")
        elif "without (instance" in expr and any("instance" in result["metric"] for result in results):
            failures.append(f"{dashboard} / {title}: per-instance series from {expr}")
    return failures


# -- Alertmanager ------------------------------------------------------------------------------------------------------


class FakeSlack(http.server.ThreadingHTTPServer):
    """Slack's incoming webhook on 127.0.0.1: keeps every message posted to it."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        messages = self.messages

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                messages.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def channels(self, status: str) -> list[str]:
        return sorted(
            message["channel"]
            for message in self.messages
            if message["attachments"][0]["title"].startswith(f"[{status}")
        )


def post_alerts(port: int, alerts: list[dict[str, Any]]) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v2/alerts",
        data=json.dumps(alerts).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


@pytest.mark.integration
def test_alertmanager_sends_each_team_its_alerts_on_slack_and_inhibits_warnings(tmp_path: Path) -> None:
    alertmanager_binary = binary("prometheus-alertmanager", "alertmanager")
    slack = FakeSlack()
    webhook = tmp_path / "slack-webhook-url"
    webhook.write_text(f"http://127.0.0.1:{slack.server_address[1]}/services/test\n", encoding="utf-8")
    config = yaml.safe_load(ALERTMANAGER.read_text(encoding="utf-8"))
    config["global"]["slack_api_url_file"] = str(webhook)
    config["templates"] = [str(ALERTMANAGER.parent / pattern) for pattern in config["templates"]]
    config["route"].update(group_wait="1s", group_interval="1s")  # the same tree, without the waits
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    port = free_port()
    log_path = tmp_path / "alertmanager.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                alertmanager_binary,
                f"--config.file={tmp_path / 'alertmanager.yml'}",
                f"--storage.path={tmp_path / 'alertmanager-data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:

        def ready() -> bool:
            assert process.poll() is None, log_path.read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2) as response:
                    return response.status == 200
            except OSError:
                return False

        wait_until(ready, timeout=20, message="alertmanager ready")
        win_rate = {"alertname": "KpimonWinRateLow", "job": "kpimon", "scope": "team", "window": "30d"}
        summary = {"summary": "Win rate of team apac is 5% over 30 days", "description": "test"}
        alerts = [
            {"labels": {**win_rate, "team": "apac", "severity": "warning"}, "annotations": summary},
            {"labels": {**win_rate, "team": "apac", "severity": "critical"}, "annotations": summary},
            {"labels": {**win_rate, "team": "emea", "severity": "warning"}, "annotations": summary},
            {
                "labels": {"alertname": "KpimonWorkerDown", "team": "platform", "severity": "critical"},
                "annotations": {"summary": "kpimon worker w1 is down", "description": "test"},
            },
        ]
        post_alerts(port, alerts)
        expected = ["#kpimon-platform-critical", "#sales-apac-critical", "#sales-emea-kpis"]
        wait_until(
            lambda: slack.channels("FIRING") == expected,
            timeout=20,
            message=lambda: f"firing messages in {expected}, got {slack.messages}",
        )
        time.sleep(2)  # a few more group intervals: still no message for apac's inhibited warning
        assert slack.channels("FIRING") == expected
        critical = next(message for message in slack.messages if message["channel"] == "#sales-apac-critical")
        assert critical["attachments"][0]["title"] == "[FIRING:1] KpimonWinRateLow (apac)"
        assert "*CRITICAL* Win rate of team apac is 5% over 30 days" in critical["attachments"][0]["text"]

        ended = datetime.now(UTC).isoformat()
        post_alerts(port, [{**alert, "endsAt": ended} for alert in alerts])
        wait_until(
            lambda: slack.channels("RESOLVED") == expected,
            timeout=20,
            message=lambda: f"resolved messages in {expected}, got {slack.messages}",
        )
    finally:
        process.terminate()
        process.wait(timeout=20)
        slack.shutdown()
