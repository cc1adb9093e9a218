"""The Grafana dashboards: current with the catalog, and every query aggregates the workers correctly."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from schemas.catalog import WINDOW_NAMES, Catalog, CatalogExtension, load_catalog
from schemas.config import KpimonConfig
from streams.metrics.faust_collector import FaustCollector
from streams.metrics.goal_exposition import GOAL_FAMILIES
from streams.metrics.kpi_collector import PROGRESS_COUNTERS, KpiCollector
from streams.tools.cli import main
from streams.tools.dashboards import (
    ACTIVITY_KPIS,
    AGGREGATE,
    DASHBOARD_DIR,
    GRAFANA_UNITS,
    UIDS,
    Selector,
    counter_series,
    dashboard_files,
    dashboards,
    kpi_query,
    threshold_steps,
)

REPO = Path(__file__).resolve().parents[3]
CATALOG = load_catalog()
DASHBOARDS = dashboards(CATALOG)
KPIS = {kpi.id: kpi for kpi in CATALOG.kpis}
METRIC_NAME = re.compile(r"\bkpimon_[a-z0-9_]+")
RECORD_NAME = re.compile(r"\bkpimon:[a-z0-9_]+:[a-z0-9_]+")  # a recording rule's own name (level:metric:operation)
RULES_FILE = REPO / "deploy/prometheus/rules/kpimon.rules.yml"
# sum over the workers, optionally over more labels (the consumer lag's topic and partition)
SUM_GROUP = re.compile(r"sum without \(instance, pod, job(?:, [a-z_]+)*\) \(")
# the goals, the same on every worker: taken once (for a KPI's series, or one row per goal)
GOAL_GROUP = re.compile(r"max without \(instance, pod, job(?:, kpi, goal, period)?\) \(")
GOAL_METRICS = {name for name, _ in GOAL_FAMILIES}
# a recorded series of one window, the window dropped (so it merges with series without one)
RECORD_GROUP = re.compile(r"max without \(window\) \(")


def exported_metrics(catalog: Catalog) -> set[str]:
    """Every series name a worker serves, found the way streams/tools/reference_docs.py finds them."""
    collector = KpiCollector(catalog, KpimonConfig(), buckets=list, progress=list, clock=float)
    names = {family.name for family in collector.describe() if family.type != "counter"}
    names |= {f"{name}_total" for _, name, _, _ in PROGRESS_COUNTERS}
    for family in FaustCollector.families():
        names.add(f"{family.name}_total" if family.type == "counter" else family.name)
    return names | GOAL_METRICS


EXPORTED = exported_metrics(CATALOG)
# Series Prometheus records from the workers' (deploy/prometheus/rules): already whole, never summed again.
RECORDED = {rule["record"] for group in yaml.safe_load(RULES_FILE.read_text())["groups"] for rule in group["rules"]}
RECORDED_SELECTOR = re.compile(rf"\b(?:{'|'.join(re.escape(name) for name in sorted(RECORDED))})\{{[^}}]*\}}")


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from (panel for panel in board["panels"] if panel["type"] != "row")


def exprs(board: dict[str, Any]) -> Iterator[str]:
    for panel in panels(board):
        for target in panel.get("targets", []):
            yield target["expr"]


ALL_EXPRS = [expr for board in DASHBOARDS.values() for expr in exprs(board)]


def variables(board: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {variable["name"]: variable for variable in board["templating"]["list"]}


def strip_sums(expr: str) -> str:
    """``expr`` without its ``sum without (instance, pod, job) (...)`` groups, the goals' ``max`` groups and the
    recorded series (and the ``max`` dropping the one window of such a series)."""
    allowed = {GOAL_GROUP: GOAL_METRICS, RECORD_GROUP: RECORDED}
    for group in (SUM_GROUP, GOAL_GROUP, RECORD_GROUP):
        while match := group.search(expr):
            depth, index = 1, match.end()
            while depth:
                depth += {"(": 1, ")": -1}.get(expr[index], 0)
                index += 1
            inside = expr[match.end() : index - 1]
            names = set(METRIC_NAME.findall(inside)) | set(RECORD_NAME.findall(inside))
            assert group is SUM_GROUP or names <= allowed[group], f"max over {inside}"
            expr = expr[: match.start()] + "S" + expr[index:]
    return RECORDED_SELECTOR.sub("R", expr)


# --- the checked-in files -------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "text"), dashboard_files(CATALOG).items(), ids=str)
def test_checked_in_dashboards_are_current(path: Path, text: str) -> None:
    assert (REPO / path).read_text(encoding="utf-8") == text, f"{path} is stale: run `kpimon dashboards`"


def test_one_file_per_dashboard_and_nothing_else() -> None:
    checked_in = {path.name for path in (REPO / DASHBOARD_DIR).glob("*.json")}
    assert checked_in == {f"{uid}.json" for uid in UIDS.values()}


def test_cli_writes_then_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dashboards", "--check", "--root", str(tmp_path)]) == 1
    assert main(["dashboards", "--root", str(tmp_path)]) == 0
    assert main(["dashboards", "--check", "--root", str(tmp_path)]) == 0
    assert "dashboards: wrote deploy/grafana/dashboards/kpimon-wallboard.json" in capsys.readouterr().out
    assert main(["dashboards", "--check", "--root", str(REPO)]) == 0


# --- queries --------------------------------------------------------------------------------------


def test_queries_refer_only_to_exported_metrics() -> None:
    documented = (REPO / "docs/metrics.md").read_text(encoding="utf-8")
    queries = [*ALL_EXPRS]
    for board in DASHBOARDS.values():
        queries += [variable["query"] for variable in board["templating"]["list"] if variable["type"] == "query"]
    used = {name for query in queries for name in METRIC_NAME.findall(query) + RECORD_NAME.findall(query)}
    assert used, "no metric found in any query"
    assert used <= EXPORTED | RECORDED, (
        f"neither exported by the worker nor recorded: {sorted(used - EXPORTED - RECORDED)}"
    )
    for name in used - {name for name in RECORDED if name.startswith("kpimon:")}:  # rules' own names: in the rules
        assert f"`{name}`" in documented, f"{name} is not in docs/metrics.md"


def test_every_metric_is_summed_over_the_workers() -> None:
    for expr in ALL_EXPRS:
        rest = strip_sums(expr)
        assert "kpimon_" not in rest, f"a metric outside {AGGREGATE} (...): {expr}"
        assert not re.search(r"\b(avg|max|min|quantile|topk|bottomk)\b", rest), expr


def test_no_ratio_gauge_is_summed_or_averaged() -> None:
    """Ratios are rebuilt from summed counts; a non-additive gauge appears only weighted per worker."""
    additive = set(counter_series(CATALOG).values())
    for expr in ALL_EXPRS:
        for name in set(METRIC_NAME.findall(expr)) & {kpi.metric for kpi in CATALOG.kpis} - additive:
            weighted = re.compile(rf"\(\s*{name}\{{[^}}]*\}} \* kpimon_[a-z_]+\{{[^}}]*\}}\)")
            assert weighted.search(expr), f"{name} is not weighted per worker in {expr}"
        # a ratio gauge only times its own denominator (its numerator, per worker: the gross profit of the margin);
        # a ratio recorded by Prometheus (the goal attainment) is whole already
        unweighted = re.sub(r"kpimon_[a-z_]+_ratio\{[^}]*\} \* kpimon_[a-z_]+\{[^}]*\}", "", expr)
        unweighted = RECORDED_SELECTOR.sub("R", unweighted)
        assert "_ratio{" not in unweighted, f"a ratio gauge in {expr}"


def test_ratios_are_rebuilt_exactly_from_summed_counts() -> None:
    week = Selector("week", "all")
    win_rate = kpi_query(CATALOG, KPIS["win_rate"], week)
    won = f'{AGGREGATE} (kpimon_deals_won{{window="week", scope="all"}})'
    lost = f'{AGGREGATE} (kpimon_deals_lost{{window="week", scope="all"}})'
    assert win_rate.exact
    assert win_rate.expr == f"{won} / (({won} + {lost}) > 0)"
    deal_size = kpi_query(CATALOG, KPIS["average_deal_size"], week)
    assert deal_size.exact
    assert deal_size.expr == f'{AGGREGATE} (kpimon_revenue{{window="week", scope="all"}}) / ({won} > 0)'
    for kpi_id in ("lead_to_mql", "mql_to_sql", "lead_to_opportunity", "opportunity_to_customer", "revenue"):
        assert kpi_query(CATALOG, KPIS[kpi_id], week).exact, kpi_id


def test_a_ratio_over_a_counter_without_series_is_its_gauge_weighted_by_the_denominator() -> None:
    connect = kpi_query(CATALOG, KPIS["call_connect_rate"], Selector("today", "rep", (("team", "$team"),)))
    gauge = 'kpimon_call_connect_ratio{window="today", scope="rep", team=~"$team"}'
    weight = 'kpimon_calls{window="today", scope="rep", team=~"$team"}'
    assert connect.expr == f"{AGGREGATE} ({gauge} * {weight}) / ({AGGREGATE} ({weight} and {gauge}) > 0)"
    assert not connect.exact and "weighted by calls" in connect.note


def test_the_sales_cycle_and_velocity_are_rebuilt_exactly_from_summed_counters() -> None:
    cycle = kpi_query(CATALOG, KPIS["sales_cycle"], Selector("30d", "team", (("team", "$team"),)))
    assert cycle.exact
    assert "kpimon_sales_cycle_total_seconds" in cycle.expr and "kpimon_deals_won_timed" in cycle.expr
    assert "kpimon_sales_cycle_seconds{" not in cycle.expr
    velocity = kpi_query(CATALOG, KPIS["pipeline_velocity"], Selector("30d", "all"))
    assert velocity.exact
    assert "kpimon_pipeline_velocity_per_day" not in velocity.expr


def test_a_kpi_that_cannot_be_rebuilt_is_the_summed_gauge_documented_as_exact_for_one_worker() -> None:
    extension = CatalogExtension.model_validate(
        {
            "kpis": [
                {
                    "id": "connected_twice",
                    "metric": "kpimon_connected_twice",
                    "name": "Connected twice",
                    "kind": "activity",
                    "indicator": "leading",
                    "formula": "calls_connected * 2",
                    "unit": "count",
                    "good": "up",
                    "description": "Not exported as counters.",
                }
            ]
        }
    )
    catalog = extension.merged_into(CATALOG)
    query = kpi_query(catalog, catalog.kpis[-1], Selector("1h", "all"))
    assert query.expr == f'{AGGREGATE} (kpimon_connected_twice{{window="1h", scope="all"}})'
    assert not query.exact
    assert "exact for one worker only" in query.note


def test_a_scope_the_kpi_does_not_have_is_refused() -> None:
    with pytest.raises(ValueError, match="no 'channel' scope"):
        kpi_query(CATALOG, KPIS["email_campaign_sends"], Selector("week", "channel"))


def test_panel_descriptions_say_how_workers_are_aggregated() -> None:
    for board in DASHBOARDS.values():
        for panel in panels(board):
            if any("kpimon_" in target["expr"] for target in panel.get("targets", [])):
                assert "exact" in panel.get("description", ""), panel["title"]


# --- dashboards -----------------------------------------------------------------------------------


def test_wallboard_is_kiosk_friendly() -> None:
    board = DASHBOARDS["kpimon-wallboard.json"]
    assert board["refresh"] == "5s"
    assert "5s" in board["timepicker"]["refresh_intervals"]
    assert not any(panel["type"] == "row" for panel in board["panels"])
    kinds = [panel["type"] for panel in board["panels"]]
    assert kinds.count("bargauge") == len(ACTIVITY_KPIS)
    assert "table" in kinds


def test_wallboard_pace_bars_per_rep_against_the_goals_of_the_config() -> None:
    board = DASHBOARDS["kpimon-wallboard.json"]
    assert not [variable for variable in board["templating"]["list"] if variable["type"] == "textbox"]
    bars = [panel for panel in board["panels"] if panel["type"] == "bargauge"]
    for kpi_id, bar in zip(ACTIVITY_KPIS, bars, strict=True):
        (target,) = bar["targets"]
        selector = 'window="today", scope="rep", team=~"$team", rep=~"$rep"'
        value = f"{AGGREGATE} ({KPIS[kpi_id].metric}{{{selector}}})"
        pace = (
            f'max without (instance, pod, job, kpi, goal, period) (kpimon_goal_expected{{window="today", '
            f'scope="rep", kpi="{kpi_id}", period="day", team=~"$team", rep=~"$rep"}})'
        )
        assert target["expr"] == f"{value} / ({pace} > 0)"
        assert target["legendFormat"] == "{{rep}}"
        steps = bar["fieldConfig"]["defaults"]["thresholds"]["steps"]
        assert [step["color"] for step in steps] == ["red", "orange", "green"]


def test_wallboard_headline_windows() -> None:
    board = DASHBOARDS["kpimon-wallboard.json"]
    wanted = {
        'kpimon_revenue{window="month", scope="all"}',
        'kpimon_deals_won{window="week", scope="all"}',
        'kpimon_opportunities_created{window="week", scope="all"}',
        'kpimon_leads{window="week", scope="all"}',
        'kpimon_opportunities_created{window="30d", scope="all"}',
    }
    text = "\n".join(exprs(board))
    for selector in wanted:
        assert selector in text
    # the teams' revenue against the pace to their monthly goals, only where a team has one
    pace = (
        'max without (instance, pod, job, kpi, goal, period) (kpimon_goal_expected{window="month", scope="team", '
        'kpi="revenue", period="month", team=~"$team"})'
    )
    revenue = f'{AGGREGATE} (kpimon_revenue{{window="month", scope="team", team=~"$team"}})'
    assert f"sum ({revenue} and {pace}) / (sum ({pace}) > 0)" in text


@pytest.mark.parametrize(
    ("name", "wanted"),
    [
        ("kpimon-wallboard.json", {"datasource", "team", "rep"}),
        ("kpimon-funnel.json", {"datasource", "team", "rep", "channel", "window"}),
        ("kpimon-marketing.json", {"datasource", "team", "channel", "campaign", "window"}),
    ],
)
def test_template_variables(name: str, wanted: set[str]) -> None:
    found = variables(DASHBOARDS[name])
    assert wanted <= set(found)
    for label in wanted & {"team", "rep", "channel", "campaign"}:
        variable = found[label]
        assert variable["type"] == "query"
        assert variable["query"].startswith("label_values(") and variable["query"].endswith(f", {label})")
        assert variable["multi"] and variable["includeAll"] and variable["allValue"] == ".*"
    if "window" in wanted:
        windows = [option["value"] for option in found["window"]["options"]]
        assert windows and set(windows) <= set(WINDOW_NAMES)
        assert found["window"]["current"]["value"] in windows


def test_units_map_from_the_catalog() -> None:
    assert GRAFANA_UNITS["ratio"] == "percentunit"
    assert GRAFANA_UNITS["seconds"] == "s"
    by_name = {kpi.name: GRAFANA_UNITS[kpi.unit].format(currency="USD") for kpi in CATALOG.kpis}
    checked = 0
    for board in DASHBOARDS.values():
        for panel in panels(board):
            for override in panel.get("fieldConfig", {}).get("overrides", []):
                name = override["matcher"]["options"]
                if name in by_name:
                    units = [prop["value"] for prop in override["properties"] if prop["id"] == "unit"]
                    assert units == [by_name[name]], (panel["title"], name)
                    checked += 1
            legends = {target.get("legendFormat") for target in panel.get("targets", [])}
            if panel["type"] in ("stat", "timeseries") and legends <= set(by_name):
                assert {by_name[legend] for legend in legends} == {panel["fieldConfig"]["defaults"]["unit"]}
                checked += 1
    assert checked > 20
    units = {
        target.get("legendFormat"): panel["fieldConfig"]["defaults"].get("unit")
        for panel in panels(DASHBOARDS["kpimon-funnel.json"])
        for target in panel.get("targets", [])
    }
    assert units[KPIS["sales_cycle"].name] == "s"
    assert units[KPIS["revenue"].name] == "currencyUSD"
    assert units[KPIS["win_rate"].name] == "percentunit"


def test_good_direction_decides_colour_order() -> None:
    assert [step.color for step in threshold_steps("up", 0.8, 1.0)] == ["red", "orange", "green"]
    assert [step.color for step in threshold_steps("down", 0.8, 1.0)] == ["green", "orange", "red"]
    assert [step.value for step in threshold_steps("down", 0.8, 1.0)] == [None, 0.8, 1.0]


def test_dashboards_link_to_each_other() -> None:
    for board in DASHBOARDS.values():
        (link,) = board["links"]
        assert link["type"] == "dashboards" and link["tags"] == ["kpimon"]
        assert "kpimon" in board["tags"]
        assert "placement" not in link
    urls = [link["url"] for board in DASHBOARDS.values() for p in panels(board) for link in p.get("links", [])]
    assert {url.split("?")[0] for url in urls} == {f"/d/{UIDS['funnel']}", f"/d/{UIDS['marketing']}"}


def test_panels_are_numbered_and_fit_the_grid() -> None:
    for board in DASHBOARDS.values():
        ids = [panel["id"] for panel in board["panels"]]
        assert ids == list(range(1, len(ids) + 1))
        for panel in board["panels"]:
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24


def test_marketing_shows_the_funnel_per_campaign() -> None:
    board = DASHBOARDS["kpimon-marketing.json"]
    campaign = variables(board)["campaign"]
    assert 'scope="campaign"' in campaign["query"] and "kpimon_revenue" in campaign["query"]
    (table,) = [panel for panel in panels(board) if panel["title"].startswith("Funnel by campaign")]
    assert table["type"] == "table"
    queries = [target["expr"] for target in table["targets"]]
    metrics = ("leads", "mqls", "opportunities_created", "deals_won", "revenue")
    assert [METRIC_NAME.findall(query) for query in queries] == [[f"kpimon_{metric}"] for metric in metrics]
    assert all('scope="campaign", campaign=~"$campaign"' in query for query in queries)
    organize = next(t for t in table["transformations"] if t["id"] == "organize")
    assert organize["options"]["renameByName"]["campaign"] == "Campaign"


def test_marketing_shows_spend_return_email_and_web_per_channel_and_campaign() -> None:
    board = DASHBOARDS["kpimon-marketing.json"]
    queried = {name for expr in exprs(board) for name in METRIC_NAME.findall(expr)}
    # ratios and costs are computed from summed counters (never averaged across workers)
    for counter in ("marketing_spend", "sales_spend", "leads", "mqls", "deals_won", "attributed_revenue_first"):
        assert f"kpimon_{counter}" in queried, counter
    for counter in ("attributed_revenue_last", "attributed_revenue_linear", "email_unique_opens", "web_sessions"):
        assert f"kpimon_{counter}" in queried, counter
    titles = [panel["title"] for panel in panels(board)]
    assert "Spend and return by channel · $window" in titles and "Spend and return by campaign · $window" in titles
    assert "Email campaigns · $window" in titles
    assert [panel for panel in board["panels"] if panel["type"] == "text"] == []


# --- PromQL, checked by Prometheus's own tool (when installed) ------------------------------------

needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")


def _substituted(expr: str, board: dict[str, Any]) -> str:
    values = {}
    for name, variable in variables(board).items():
        if variable["type"] == "textbox":
            values[name] = variable["query"]
        elif variable["type"] == "custom":
            values[name] = variable["current"]["value"]
        else:
            values[name] = ".*"
    return re.sub(r"\$(\w+)", lambda match: values[match.group(1)], expr)


def _promtool(tmp_path: Path, rules: list[dict[str, str]], tests: list[dict[str, Any]] | None = None) -> None:
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    command = ["promtool", "check", "rules", "rules.yml"]
    if tests is not None:
        (tmp_path / "test.yml").write_text(yaml.safe_dump({"rule_files": ["rules.yml"], "tests": tests}))
        command = ["promtool", "test", "rules", "test.yml"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    rules = [
        {"record": f"dashboard:query_{index}", "expr": _substituted(expr, board)}
        for index, (board, expr) in enumerate((board, expr) for board in DASHBOARDS.values() for expr in exprs(board))
    ]
    _promtool(tmp_path, rules)


@needs_promtool
def test_two_workers_add_up_to_what_one_worker_would_show(tmp_path: Path) -> None:
    """Worker a: 3 won (10-day cycles), 1 lost; worker b: 1 won (30 days), 3 lost."""
    week = Selector("week", "all")
    kpi_ids = ("win_rate", "average_deal_size", "lead_to_opportunity", "sales_cycle", "pipeline_velocity")
    rules = [{"record": f"test:{kpi_id}", "expr": kpi_query(CATALOG, KPIS[kpi_id], week).expr} for kpi_id in kpi_ids]
    per_worker = {
        "a": {"deals_won": 3, "deals_lost": 1, "revenue": 300, "opportunities_created": 10, "leads": 20},
        "b": {"deals_won": 1, "deals_lost": 3, "revenue": 100, "opportunities_created": 6, "leads": 0},
    }
    cycles = {"a": 10 * 86_400, "b": 30 * 86_400}
    labels = 'window="week", scope="all", team="", rep="", channel=""'
    series = [
        {"series": f'{KPIS[kpi_id].metric}{{instance="{worker}", job="kpimon", {labels}}}', "values": f"{value}x3"}
        for worker, counts in per_worker.items()
        for kpi_id, value in counts.items()
    ]
    series += [
        {"series": f'{metric}{{instance="{worker}", job="kpimon", {labels}}}', "values": f"{value}x3"}
        for worker, cycle_seconds in cycles.items()
        for metric, value in (
            ("kpimon_sales_cycle_seconds", cycle_seconds),
            ("kpimon_deals_won_timed", per_worker[worker]["deals_won"]),
            ("kpimon_sales_cycle_total_seconds", cycle_seconds * per_worker[worker]["deals_won"]),
        )
    ]
    cycle = (3 * 10 + 1 * 30) / 4  # days: the summed cycles over the summed timed deals
    expected = {
        "win_rate": 4 / 8,
        "average_deal_size": 400 / 4,
        "lead_to_opportunity": 16 / 20,
        "sales_cycle": cycle * 86_400,
        "pipeline_velocity": 16 * (400 / 4) * (4 / 8) / cycle,
    }
    checks = [
        {
            "expr": f"test:{kpi_id}",
            "eval_time": "1m",
            "exp_samples": [{"labels": f"test:{kpi_id}{{{labels}}}", "value": value}],
        }
        for kpi_id, value in expected.items()
    ]
    _promtool(tmp_path, rules, [{"interval": "1m", "input_series": series, "promql_expr_test": checks}])


CUSTOMER_KPIS = (
    "customers", "mrr", "arr", "arpa", "customers_new", "customers_reactivated", "customers_churned", "mrr_new",
    "mrr_reactivated", "mrr_expansion", "mrr_contraction", "mrr_churned", "mrr_net_change", "mrr_at_start",
    "customer_retention_rate", "logo_churn_rate", "gross_revenue_retention", "net_revenue_retention", "gross_margin",
    "customer_lifetime_value", "ltv_to_cac", "cac_payback", "nps", "csat", "ces",
)  # fmt: skip


def test_the_customers_dashboard_shows_every_customer_kpi_rebuilt_exactly_across_workers() -> None:
    board = DASHBOARDS[f"{UIDS['customers']}.json"]
    shown = {target.get("legendFormat") for panel in panels(board) for target in panel.get("targets", [])}
    shown |= {panel["title"].split(" · ")[0] for panel in panels(board)}
    assert {KPIS[kpi_id].name for kpi_id in CUSTOMER_KPIS} <= shown
    for panel in panels(board):
        assert "exact for one worker only" not in panel.get("description", ""), panel["title"]
    assert set(variables(board)) == {"datasource", "window", "team", "channel"}
    assert variables(board)["window"]["query"] == "30d,month,quarter"


def test_money_kept_in_cents_is_rebuilt_from_the_summed_currency_series() -> None:
    month = Selector("month", "all")
    mrr = f'{AGGREGATE} (kpimon_mrr{{window="month", scope="all"}})'
    at_start = kpi_query(CATALOG, KPIS["mrr_at_start"], month)
    assert at_start.exact and at_start.expr.startswith(f"((((((100 * {mrr}) - (100 * ")
    retention = kpi_query(CATALOG, KPIS["net_revenue_retention"], month)
    assert retention.exact
    assert f"(100 * {AGGREGATE} (kpimon_retained_customer_churns_mrr{{" in retention.expr


def test_the_gross_profit_is_the_margin_gauge_times_each_workers_mrr() -> None:
    """Not a series of its own (it reads the config's gross margin): each worker's margin x its own MRR, summed."""
    window = Selector("30d", "all")
    margin, mrr = 'kpimon_gross_margin_ratio{window="30d", scope="all"}', 'kpimon_mrr{window="30d", scope="all"}'
    weighted = f"{AGGREGATE} ({margin} * {mrr})"
    for kpi_id in ("gross_margin", "customer_lifetime_value", "ltv_to_cac", "cac_payback"):
        query = kpi_query(CATALOG, KPIS[kpi_id], window)
        assert query.exact and f"(100 * {weighted})" in query.expr, kpi_id
    clv = kpi_query(CATALOG, KPIS["customer_lifetime_value"], window).expr
    assert ">= 20)" in clv  # at_least(customers at the start, 20): no value for a smaller cohort


# --- goals and forecast (funnel dashboard) --------------------------------------------------------

FORECAST_TEST = REPO / "deploy/prometheus/tests/forecast.test.yml"


def _table(board: dict[str, Any], title: str) -> dict[str, Any]:
    (panel,) = [panel for panel in panels(board) if panel["title"] == title]
    return panel


def test_the_funnel_shows_every_goal_with_its_attainment_pace_and_both_projections() -> None:
    board = DASHBOARDS[f"{UIDS['funnel']}.json"]
    goals = _table(board, "Goals · attainment and forecast")
    stages = _table(board, "Forecast by stage · open pipeline weighted")
    text = "\n".join(target["expr"] for panel in (goals, stages) for target in panel["targets"])
    for series in (
        "kpimon_goal{",
        "kpimon_goal_expected{",
        "kpimon_goal_attainment_ratio{",
        'kpimon_goal_projection{method="run_rate"',
        'kpimon_goal_projection{method="weighted_pipeline"',
        'kpimon:win_rate_by_stage:ratio{scope="all", window="30d"}',
        "kpimon_open_deals_by_stage{",
        "kpimon_open_pipeline_value_by_stage{",
        'kpimon:open_deals_by_stage:weighted{scope="all"}',
        'kpimon:open_pipeline_value_by_stage:weighted{scope="all"}',
    ):
        assert series in text, series
    assert not [variable for variable in board["templating"]["list"] if "goal" in variable["name"]]  # from the config
    renamed = next(t for t in goals["transformations"] if t["id"] == "organize")["options"]["renameByName"]
    assert list(renamed.values()) == [
        "KPI", "Goal", "Period", "Scope", "Team", "Rep", "Channel", "Campaign",
        "Target", "Attainment", "Expected by now", "Projected · run rate", "Projected · weighted pipeline",
    ]  # fmt: skip


@needs_promtool
def test_the_goal_and_stage_tables_read_what_the_rules_record_from_two_workers(tmp_path: Path) -> None:
    """The forecast rules' hand-worked example (deploy/prometheus/tests/forecast.test.yml), through the tables.

    Team emea, this month: revenue 65,000 of a 250,000 goal (0.26), 100,000 expected by now (0.4), projected
    162,500 by run rate (0.65) and 110,000 by weighted pipeline (0.44); deals won 3 of 10 (0.3), 4 expected (0.4),
    7.5 (0.75) and 4.75 (0.475). Rep anna: 3 calls of 50 (0.06), 1 expected (0.02), too early for a run rate.
    Team apac: 5,000 of 40,000 (0.125), 10,000 expected (0.25), run rate 20,000 (0.5), no deal closed: no
    weighted projection. Per stage (the stages table, for team emea): win rates 0.75, 0.5 and 0 (none for
    unknown); one open deal in each stage, worth 40,000, 20,000, 30,000 and 10,000 (apac: 20,000 in proposal);
    weighted deals 0.75, 0.5, 0, 0.5 and pipeline 30,000, 10,000, 0, 5,000.
    """
    board = DASHBOARDS[f"{UIDS['funnel']}.json"]
    columns = {
        table_title: [_substituted(target["expr"], board) for target in _table(board, table_title)["targets"]]
        for table_title in ("Goals · attainment and forecast", "Forecast by stage · open pipeline weighted")
    }
    goals, stages = columns.values()
    stages = [expr.replace('scope="all"', 'scope="team"') for expr in stages]  # the example's scope
    goal_names = ("target", "attainment", "expected", "run_rate", "weighted")
    stage_names = ("win_rate", "open_deals", "open_value", "weighted_deals", "weighted_value")
    rules = [{"record": f"test:goal_{name}", "expr": expr} for name, expr in zip(goal_names, goals, strict=True)]
    rules += [{"record": f"test:stage_{name}", "expr": expr} for name, expr in zip(stage_names, stages, strict=True)]
    (tmp_path / "tables.yml").write_text(yaml.safe_dump({"groups": [{"name": "tables", "rules": rules}]}))
    (example,) = yaml.safe_load(FORECAST_TEST.read_text())["tests"]
    emea, apac = 'scope="team", team="emea"', 'scope="team", team="apac"'
    emea_goal, apac_goal = f'window="month", {emea}, period="month"', f'window="month", {apac}, period="month"'
    anna_goal = 'window="week", scope="rep", team="emea", rep="anna", period="week"'
    goal_rows = {  # the goal's labels: target, attainment, expected by now, run rate and weighted pipeline projections
        f'{emea_goal}, kpi="revenue", goal="emea-revenue"': (250_000, 0.26, 0.4, 0.65, 0.44),
        f'{emea_goal}, kpi="deals_won", goal="emea-deals"': (10, 0.3, 0.4, 0.75, 0.475),
        f'{anna_goal}, kpi="calls", goal="weekly-calls"': (50, 0.06, 0.02, None, None),
        f'{apac_goal}, kpi="revenue", goal="apac-revenue"': (40_000, 0.125, 0.25, 0.5, None),
    }
    stage_rows = {  # the stage's labels: win rate, open deals and value, weighted deals and value
        f'{emea}, stage="negotiation"': (0.75, 1, 40_000, 0.75, 30_000),
        f'{emea}, stage="proposal"': (0.5, 1, 20_000, 0.5, 10_000),
        f'{emea}, stage="discovery"': (0, 1, 30_000, 0, 0),
        f'{emea}, stage="unknown"': (None, 1, 10_000, 0.5, 5_000),
        f'{apac}, stage="proposal"': (None, None, 20_000, None, None),
    }
    expected = {
        f"{kind}_{name}": [(labels, row[index]) for labels, row in rows.items() if row[index] is not None]
        for kind, rows, column_names in (("goal", goal_rows, goal_names), ("stage", stage_rows, stage_names))
        for index, name in enumerate(column_names)
    }
    checks = [
        {
            "expr": f"test:{name}",
            "eval_time": "5m",
            "exp_samples": [{"labels": f"test:{name}{{{labels}}}", "value": value} for labels, value in samples],
        }
        for name, samples in expected.items()
    ]
    tests = [{"interval": "1m", "input_series": example["input_series"], "promql_expr_test": checks}]
    (tmp_path / "test.yml").write_text(
        yaml.safe_dump({"rule_files": [str(RULES_FILE), "tables.yml"], "evaluation_interval": "1m", "tests": tests})
    )
    command = ["promtool", "test", "rules", "test.yml"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
