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

from alerts.rules import RulesFile, load_rules
from schemas.catalog import load_catalog
from schemas.config import load_config

REPO = Path(__file__).resolve().parents[3]
PROMETHEUS_DIR = REPO / "deploy/prometheus"
RULES_DIR = PROMETHEUS_DIR / "rules"
ALERTMANAGER = REPO / "deploy/alertmanager/alertmanager.yml"
WORKER_JOB = "kpimon"


def _load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, PROMETHEUS_DIR / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


generate_rules = _load_script("generate_rules")
generate_alerts = _load_script("generate_alerts")  # imports generate_rules, found in sys.modules


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


PRODUCT = re.compile(r"\(kpimon_[a-z0-9_]+(?:\{[^}]*\})? \* kpimon_")


def test_every_derived_kpi_over_exported_counters_has_a_roll_up() -> None:
    catalog = load_catalog()
    exported = generate_rules.exported_counters(catalog)
    metrics = {kpi.metric for kpi in catalog.kpis}
    rules, skipped = generate_rules.recording_rules(catalog)
    by_kpi = {rule.kpi.id: rule for rule in rules}
    for kpi in catalog.kpis:
        # a part no series gives that is another KPI's numerator: that KPI's gauge times its denominator's series
        parts = generate_rules.numerator_parts(catalog, kpi.formula.tree.body, exported)
        names = generate_rules.names_outside(kpi.formula.tree.body, parts)
        if not names <= exported.keys():
            assert kpi.id in {item.kpi.id for item in skipped}
            continue
        rule = by_kpi[kpi.id]
        assert rule.record.startswith(f"kpimon:{kpi.id}:")
        # Only the series of the formula's counters, each summed across workers: never an average,
        # never the workers' own value of a derived KPI (but in such a product, summed).
        read = {metric for metric in metrics if re.search(rf"\b{metric}\b", rule.expr)}
        gauges = {metric for part, counter in parts.values() for metric in (part.metric, exported[counter].metric)}
        assert read == {exported[name].metric for name in names} | gauges, rule.record
        assert "avg" not in rule.expr
        products = PRODUCT.findall(rule.expr)  # gauge x series, inside a sum: the second series is not after "("
        assert bool(products) == bool(parts), rule.record
        assert rule.expr.count("kpimon_") == rule.expr.count("sum without (instance, pod) (kpimon_") + len(products)
    assert {"win_rate", "email_response_rate", "lead_to_mql", "average_deal_size"} <= by_kpi.keys()


UNIT_ECONOMICS = ("gross_margin", "customer_lifetime_value", "ltv_to_cac", "cac_payback")


def test_the_unit_economics_roll_up_each_workers_gross_margin_times_its_own_mrr() -> None:
    """The gross profit reads the config's gross_margin and the costed stocks (no series): margin x MRR, summed.

    The values are worked by hand in deploy/prometheus/tests/unit-economics.test.yml.
    """
    rules, skipped = generate_rules.recording_rules(load_catalog())
    by_kpi = {rule.kpi.id: rule for rule in rules}
    for kpi_id in UNIT_ECONOMICS:
        expr = by_kpi[kpi_id].expr
        selector = r"(\{[^}]*\})?"
        product = re.search(
            rf"sum without \(instance, pod\) \(kpimon_gross_margin_ratio{selector} \* kpimon_mrr{selector}\)", expr
        )
        assert product is not None, kpi_id
        assert product.group(1) == product.group(2), kpi_id  # the same scopes and windows: one product per series
        assert f"(100 * {product.group(0)})" in expr  # the counters are in cents, the MRR series in money
        assert expr.count("kpimon_") == expr.count("sum without (instance, pod) (kpimon_") + len(PRODUCT.findall(expr))
    assert by_kpi["gross_margin"].record == "kpimon:gross_margin:ratio"
    # What is left reads a counter only one worker has (or a stock no KPI divides by a series).
    assert {item.kpi.id for item in skipped} == {
        "call_connect_rate",
        "lead_cohort_to_opportunity",
        "lead_cohort_to_customer",
        "deal_profit_margin",
    }


# -- the alerting rules generated from kpimon's alert rules ------------------------------------------------------------

EXAMPLE_RULES = REPO / "deploy/examples/alerts.yaml"


def translate(*rules: dict[str, Any], grafana_url: str | None = None) -> tuple[list[Any], list[Any]]:
    """Rules given as in a rules file (``for``, ``scope``, ``condition`` ...), translated."""
    base = {"severity": "warning", "routes": ["r"]}
    rules_file = RulesFile.model_validate({"grafana_url": grafana_url, "rules": [{**base, **rule} for rule in rules]})
    return generate_alerts.translate(rules_file, load_catalog())


def test_checked_in_generated_alerts_are_current() -> None:
    assert "is current" in run(sys.executable, PROMETHEUS_DIR / "generate_alerts.py", "--check")


def test_check_reports_a_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "alerts.yml"
    output.write_text("groups: []\n", encoding="utf-8")
    assert generate_alerts.main(["--check", "--output", str(output)]) == 1
    assert "is stale: run python deploy/prometheus/generate_alerts.py" in capsys.readouterr().err
    assert generate_alerts.main(["--output", str(output)]) == 0
    assert generate_alerts.main(["--check", "--output", str(output)]) == 0


def test_example_rules_translate_to_the_roll_ups() -> None:
    rules = load_rules(EXAMPLE_RULES, load_catalog())
    translated, untranslated = generate_alerts.translate(rules, load_catalog())
    by_id = {rule.source.id: rule for rule in translated}
    drop = by_id["lead-conversion-drop"]
    assert drop.alert == "KpimonLeadConversionDrop"
    assert drop.expr == (
        'kpimon:lead_to_opportunity:ratio{window="7d", scope="team"} < 0.7 * '
        '(kpimon:lead_to_opportunity:ratio{window="7d", scope="team"} offset 7d > 0)\n'
        'and kpimon:leads:sum{window="7d", scope="team"} >= 30'
    )
    win_rate = by_id["emea-win-rate-low"]
    selector = '{window="30d", scope="team", team="emea"}'
    assert win_rate.expr == (
        f"kpimon:win_rate:ratio{selector} < 0.2\n"
        f"and (kpimon:deals_won:sum{selector} + kpimon:deals_lost:sum{selector}) >= 10"
    )
    assert win_rate.labels == {"severity": "critical", "kpimon_rule": "emea-win-rate-low"}
    assert win_rate.left_out[0] == "confidence 0.9"
    # Every series read is a recording rule of kpimon.rules.yml.
    records = {rule.record for rule in generate_rules.recording_rules(load_catalog())[0]}
    for rule in translated:
        assert set(re.findall(r"kpimon:[a-z0-9_]+:[a-z]+", rule.expr)) <= records, rule.alert
    assert not untranslated
    pace = by_id["rep-calls-behind-pace"]
    by = "window, scope, team, rep, channel, campaign"
    expected = f'max by ({by}) (kpimon_goal_expected{{window="today", scope="rep", goal="rep-daily-calls"}})'
    calls = f'sum by ({by}) (kpimon:calls:sum{{window="today", scope="rep"}})'
    assert pace.expr == f"({calls} or {expected} * 0) < on ({by}) {expected}"


def test_generated_file_lists_what_is_not_translated() -> None:
    text = (RULES_DIR / "kpimon.generated-alerts.yml").read_text(encoding="utf-8")
    header = text.split("\ngroups:", 1)[0]
    assert "Rules not translated" not in header
    for setting in ("confidence 0.9", "recovery_margin 0.02", "quiet_hours 20:00-08:00", "repeat_interval 1d"):
        assert setting in header
    assert "business_days: Alertmanager's time_intervals" in header


@pytest.mark.parametrize(
    ("window", "baseline", "offset"),
    [
        ("1h", "previous_period", "1h"),
        ("24h", "previous_period", "24h"),
        ("30d", "previous_period", "30d"),
        ("1h", "same_hour_last_week", "1w"),
        ("24h", "same_hour_last_week", "1w"),
    ],
)
def test_drop_compares_with_the_baseline_offset(window: str, baseline: str, offset: str) -> None:
    condition = {"drop": {"percent": 25, "baseline": baseline}}
    (rule,), skipped = translate({"id": "r", "kpi": "email_response_rate", "window": window, "condition": condition})
    series = f'kpimon:email_response_rate:ratio{{window="{window}", scope="all"}}'
    assert rule.expr == f"{series} < 0.75 * ({series} offset {offset} > 0)"
    assert not skipped


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        ({"kpi": "win_rate", "window": "month", "condition": {"drop": {"percent": 20}}}, "calendar window month"),
        (
            {
                "kpi": "calls",
                "window": "today",
                "condition": {"drop": {"percent": 20, "baseline": "same_hour_last_week"}},
            },
            "same hour last week of today",
        ),
        ({"kpi": "call_connect_rate", "window": "1h", "condition": {"below": 0.2}}, "calls_connected is not exported"),
    ],
)
def test_what_promql_cannot_express_is_skipped_with_the_reason(rule: dict[str, Any], reason: str) -> None:
    translated, (skipped,) = translate({"id": "r", **rule})
    assert not translated
    assert reason in skipped.reason


def test_scope_selector_labels_for_and_dashboard_link() -> None:
    rule = {
        "id": "emea-reps-revenue-low",
        "name": "Revenue is low",
        "kpi": "revenue",
        "window": "month",
        "scope": {"kind": "rep", "team": "emea"},
        "condition": {"below": 10000},
        "for": "1.5h",
        "severity": "info",
    }
    (alert,), _ = translate(rule, grafana_url="https://grafana.example.com/")
    assert alert.alert == "KpimonEmeaRepsRevenueLow"
    assert alert.expr == 'kpimon:revenue:sum{window="month", scope="rep", team="emea"} < 10000'
    assert generate_alerts.duration(alert.source.for_seconds) == "1h30m"
    assert (
        alert.annotations["summary"]
        == "Revenue of rep {{ $labels.rep }} ({{ $labels.team }}) is {{ $value | humanize }} this month"
    )
    assert alert.annotations["dashboard"] == (
        "https://grafana.example.com/d/kpimon-funnel?var-window=month"
        "&var-team={{ $labels.team | urlquery }}&var-rep={{ $labels.rep | urlquery }}"
    )
    (no_link,), _ = translate(rule)
    assert "dashboard" not in no_link.annotations


def test_generated_alerts_route_to_the_team_and_its_severity() -> None:
    teams = list(load_config(REPO / "deploy/examples/kpimon.yaml").teams)
    translated, _ = generate_alerts.translate(load_rules(EXAMPLE_RULES, load_catalog()), load_catalog())
    assert translated
    for rule in translated:
        # The team label comes from the series: the example's rules all watch team scopes.
        assert rule.source.scope.kind in {"team", "rep"}, rule.alert
        severity = rule.labels["severity"]
        for team in [rule.source.scope.team] if rule.source.scope.team else teams:
            expected = f"{team}-critical" if severity == "critical" else team
            assert route(f"team={team}", f"severity={severity}", f"alertname={rule.alert}") == expected


# -- promtool ----------------------------------------------------------------------------------------------------------


SECRETS = "/run/secrets/"  # docker compose mounts the secrets there (the scrape job's token)


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus.local.yml"])
def test_promtool_check_config(config: str, tmp_path: Path) -> None:
    """promtool reads the files a config names: the compose secrets are made up in a copy beside the rules."""
    text = (PROMETHEUS_DIR / config).read_text(encoding="utf-8")
    for secret in set(re.findall(rf"{SECRETS}(\w+)", text)):
        (tmp_path / secret).write_text("a-token\n", encoding="utf-8")
    (tmp_path / "rules").symlink_to(RULES_DIR)
    (tmp_path / config).write_text(text.replace(SECRETS, f"{tmp_path}/"), encoding="utf-8")
    output = run(tool("promtool"), "check", "config", tmp_path / config)
    # rules/*.yml: the recording rules, the hand-written alerts and the generated ones.
    assert "SUCCESS" in output and "3 rule files found" in output


def test_promtool_check_the_demos_config() -> None:
    """make demo's Prometheus, for the board: one job, scraped every second, the recording rules only."""
    output = run(tool("promtool"), "check", "config", PROMETHEUS_DIR / "prometheus.demo.yml")
    assert "SUCCESS" in output and "1 rule files found" in output
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.demo.yml").read_text(encoding="utf-8"))
    assert config["global"]["scrape_interval"] == "1s"
    assert config["rule_files"] == ["rules/kpimon.rules.yml"]
    assert [job["job_name"] for job in config["scrape_configs"]] == [WORKER_JOB]


def test_promtool_check_rules() -> None:
    files = sorted(RULES_DIR.glob("*.yml"))
    assert [path.name for path in files] == ["kpimon.alerts.yml", "kpimon.generated-alerts.yml", "kpimon.rules.yml"]
    output = run(tool("promtool"), "check", "rules", *files)
    assert output.count("SUCCESS") == len(files)


def test_promtool_test_rules() -> None:
    tests = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
    expected = {"alerts.test.yml", "customers.test.yml", "generated-alerts.test.yml", "goals.test.yml"}
    expected |= {"forecast.test.yml", "rollups.test.yml", "unit-economics.test.yml"}
    assert expected <= {path.name for path in tests}
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
