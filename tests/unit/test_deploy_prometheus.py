"""Prometheus and Alertmanager configuration, checked by their own tools (promtool, amtool).

The tools come from Debian's prometheus and prometheus-alertmanager packages (`make tools`, part
of `make test`). Without them the checks are skipped, except under CI, where they must run.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from schemas.catalog import load_catalog
from schemas.config import load_config

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = REPO / "deploy/prometheus"
RULES_DIR = PROMETHEUS_DIR / "rules"
ALERTMANAGER = REPO / "deploy/alertmanager/alertmanager.yml"
WORKER_JOB = "kpimon"


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_rules", PROMETHEUS_DIR / "generate_rules.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


generate_rules = _load_generator()


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI", "").lower() not in {"", "0", "false"}:
            pytest.fail(f"{name} is not installed, and CI must run this check: `make tools` installs it")
        pytest.skip(f"{name} is not installed: `make tools` installs Debian's prometheus and prometheus-alertmanager")
    return path


def run(*args: str | Path, stdout_only: bool = False) -> str:
    result = subprocess.run([str(arg) for arg in args], capture_output=True, text=True, timeout=60, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(map(str, args))} failed:\n{output}"
    return result.stdout if stdout_only else output


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def alerting_rules() -> list[dict[str, Any]]:
    groups = load_yaml(RULES_DIR / "kpimon.alerts.yml")["groups"]
    return [rule for group in groups for rule in group["rules"]]


# -- the generated recording rules -------------------------------------------------------------------------------------


def test_checked_in_recording_rules_are_current() -> None:
    expected = generate_rules.render(load_catalog())
    actual = (RULES_DIR / "kpimon.rules.yml").read_text(encoding="utf-8")
    assert actual == expected, "rules/kpimon.rules.yml is stale: run python deploy/prometheus/generate_rules.py"


def test_win_rate_sums_the_counts_then_divides() -> None:
    rules = {rule.record: rule.expr for rule in generate_rules.recording_rules(load_catalog())[0]}
    assert rules["kpimon:win_rate:ratio"] == (
        "sum without (instance, pod) (kpimon_deals_won) / "
        "((sum without (instance, pod) (kpimon_deals_won) + sum without (instance, pod) (kpimon_deals_lost)) != 0)"
    )
    assert rules["kpimon:deals_won:sum"] == "sum without (instance, pod) (kpimon_deals_won)"


def test_every_derived_kpi_over_exported_counters_has_a_roll_up() -> None:
    catalog = load_catalog()
    exported = generate_rules.exported_counters(catalog)
    metrics = {kpi.metric for kpi in catalog.kpis}
    rules, skipped = generate_rules.recording_rules(catalog)
    by_kpi = {rule.kpi.id: rule for rule in rules}
    for kpi in catalog.kpis:
        if not kpi.formula.names <= exported.keys():
            assert kpi.id in {item.kpi.id for item in skipped}
            continue
        rule = by_kpi[kpi.id]
        assert rule.record.startswith(f"kpimon:{kpi.id}:")
        # Only the series of the formula's counters, each summed across workers: never an average,
        # never the workers' own value of a derived KPI.
        read = {metric for metric in metrics if re.search(rf"\b{metric}\b", rule.expr)}
        assert read == {exported[name].metric for name in kpi.formula.names}, rule.record
        assert "avg" not in rule.expr
        assert rule.expr.count("kpimon_") == rule.expr.count("sum without (instance, pod) (kpimon_")
    assert {"win_rate", "email_response_rate", "lead_to_mql", "average_deal_size"} <= by_kpi.keys()


# -- promtool ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus.local.yml"])
def test_promtool_check_config(config: str) -> None:
    output = run(tool("promtool"), "check", "config", PROMETHEUS_DIR / config)
    assert "SUCCESS" in output and "2 rule files found" in output


def test_promtool_check_rules() -> None:
    files = sorted(RULES_DIR.glob("*.yml"))
    assert [path.name for path in files] == ["kpimon.alerts.yml", "kpimon.rules.yml"]
    output = run(tool("promtool"), "check", "rules", *files)
    assert output.count("SUCCESS") == len(files)


def test_promtool_test_rules() -> None:
    tests = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
    assert tests, "deploy/prometheus/tests/*.yml"
    output = run(tool("promtool"), "test", "rules", *tests)
    assert output.count("SUCCESS") == len(tests)


def test_alerts_route_by_team_and_severity() -> None:
    for rule in alerting_rules():
        labels = rule.get("labels", {})
        assert labels.get("severity") in {"warning", "critical"}, rule["alert"]
        # The team is fixed for the workers' health, or comes from a team's series.
        assert "team" in labels or 'scope="team"' in rule["expr"], rule["alert"]
        assert {"summary", "description"} <= rule.get("annotations", {}).keys(), rule["alert"]
        if "job=" in rule["expr"]:
            assert f'job="{WORKER_JOB}"' in rule["expr"], "the job of deploy/prometheus/prometheus.yml"
    jobs = [scrape["job_name"] for scrape in load_yaml(PROMETHEUS_DIR / "prometheus.yml")["scrape_configs"]]
    assert WORKER_JOB in jobs


# -- amtool ------------------------------------------------------------------------------------------------------------


def test_amtool_check_config() -> None:
    output = run(tool("amtool"), "check-config", ALERTMANAGER)
    assert "SUCCESS" in output


def route(*labels: str) -> str:
    args = (tool("amtool"), "config", "routes", "test", f"--config.file={ALERTMANAGER}", *labels)
    return run(*args, stdout_only=True).strip()


def test_every_team_has_a_channel_and_a_critical_one() -> None:
    teams = [*load_config(REPO / "deploy/examples/kpimon.yaml").teams, "platform"]
    for team in teams:
        assert route(f"team={team}", "severity=warning", "alertname=KpimonWinRateLow") == team
        assert route(f"team={team}", "severity=critical", "alertname=KpimonWinRateLow") == f"{team}-critical"
    assert route("team=unknown", "severity=critical") == "default"


def test_slack_receivers_send_resolved_and_keep_the_url_out_of_the_file() -> None:
    config = load_yaml(ALERTMANAGER)
    assert config["global"]["slack_api_url_file"].startswith("/run/secrets/")
    assert "hooks.slack.com" not in ALERTMANAGER.read_text(encoding="utf-8")
    for receiver in config["receivers"]:
        (slack,) = receiver["slack_configs"]
        assert slack["send_resolved"] is True, receiver["name"]
        assert "api_url" not in slack, "the webhook URL is a secret: slack_api_url_file only"
        assert slack["channel"].startswith("#")


def test_critical_inhibits_warning_of_the_same_alert_and_team() -> None:
    rules = load_yaml(ALERTMANAGER)["inhibit_rules"]
    assert {
        "source_matchers": ['severity="critical"'],
        "target_matchers": ['severity="warning"'],
        "equal": ["alertname", "team"],
    } in rules


def test_slack_templates_render() -> None:
    title = run(
        tool("amtool"),
        "template",
        "render",
        f"--template.glob={ALERTMANAGER.parent / 'templates'}/*.tmpl",
        '--template.text={{ template "kpimon.slack.title" . }}',
    )
    assert title.startswith("[")
