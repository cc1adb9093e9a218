"""Generate deploy/prometheus/rules/kpimon.rules.yml: KPI roll-ups across workers, from the KPI catalog.

Each worker exports the scopes of the partitions it owns (docs/architecture.md), so a
scope's value is spread over several workers. The only correct roll-up is the KPI's own
formula evaluated over the counters *summed* across workers, exactly what one worker owning
every partition would compute:

    win rate = sum(deals_won) / (sum(deals_won) + sum(deals_lost))

never the average (or sum) of each worker's ratio. A counter is on /metrics only as the
value of a KPI whose formula is exactly that counter (``kpimon_deals_won`` for
``deals_won``) or that counter over a number (``kpimon_mrr`` is ``stock_mrr_cents / 100``,
so the counter is ``100 * sum(kpimon_mrr)``), so a derived KPI gets a recording rule only
when every counter of its formula is exported that way; the others are listed, with the
missing counters, in the file's header.

One part of a formula that no series gives is rebuilt all the same: the numerator ``x`` of another
KPI's ``x / y``, ``y`` an exported counter (``Catalog.numerator_of``). Each worker's gauge of that
KPI times its own ``y`` is its own ``x``, so

    gross profit = 100 * sum(kpimon_gross_margin_ratio * kpimon_mrr)

is exact across workers, although the gross profit reads the config's ``gross_margin`` and the
costed stocks, which no series carries. The gross margin, CLV, LTV:CAC and CAC payback roll up so.

Rules:
- ``kpimon:<kpi id>:sum``    a single-counter KPI (or one counter over a number) summed across workers
- ``kpimon:<kpi id>:ratio``  a derived KPI whose formula is a division, over summed counters
- ``kpimon:<kpi id>:rollup`` any other derived KPI, over summed counters

A division by a sum that is 0 yields no series, as on /metrics (never NaN or +Inf).

Goal attainment (group ``kpimon-goal-attainment``): ``kpimon_goal_attainment_ratio`` is the KPI
summed across workers over the goal, which every worker serves alike (``max`` across workers):

    sum(kpimon_calls{rep="anna", window="week"}) / max(kpimon_goal{kpi="calls", goal="weekly-calls"})

one rule per KPI a goal can be set on (``schemas.goals``: counts and sums), labelled like
``kpimon_goal`` (the KPI labels, ``kpi``, ``goal`` and ``period``). A scope with a goal and no
series of the KPI yet has attainment 0. No worker can serve it: each has only its partitions' share.

Goal forecast (group ``kpimon-goal-forecast``): ``kpimon_goal_projection``, the period-end value
projected for each goal (``schemas.forecast``), labelled like ``kpimon_goal`` plus ``method``:

- ``method="run_rate"``: the summed KPI over the share of the period's counted time gone by
  (``kpimon_goal_expected / kpimon_goal``, the same on every worker); no series below
  ``MIN_ELAPSED_SHARE`` of the period;
- ``method="weighted_pipeline"`` (revenue and deals won): the summed KPI plus the open pipeline
  weighted by the 30-day win rate of each stage the open deals are in, every input summed across
  workers first:

  - ``kpimon:win_rate_by_stage:ratio`` (scope labels, ``window="30d"``, ``stage``): of the deals
    closed in 30 days from a stage (``kpimon_deals_won_by_stage`` and ``kpimon_deals_lost_by_stage``
    summed, as either can lack a stage), the share won;
  - ``kpimon:open_pipeline_value_by_stage:weighted`` and ``kpimon:open_deals_by_stage:weighted``
    (scope labels, ``stage``): the open pipeline of a stage times its win rate, or times the
    scope's overall 30-day win rate where no deal closed from the stage;
  - ``kpimon:open_pipeline_value:weighted`` and ``kpimon:open_deals:weighted`` (scope labels): their
    sum over the stages, 0 for a scope with a win rate and nothing open.

  No series where the scope closed no deal in 30 days.

    python deploy/prometheus/generate_rules.py            # rewrite the rules file
    python deploy/prometheus/generate_rules.py --check    # exit 1 if it is stale
    python deploy/prometheus/generate_rules.py --catalog my-catalog.yaml   # with a catalog extension
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from schemas.catalog import WINDOW_NAMES, Catalog, KpiSpec, load_catalog
from schemas.forecast import (
    GOAL_PROJECTION,
    MIN_ELAPSED_SHARE,
    PIPELINE_KPIS,
    STAGE_OUTCOMES,
    STAGE_WIN_RATE_RECORD,
    WIN_RATE_WINDOW,
    weighted_record,
)
from schemas.formula import guard_of
from schemas.scopes import SCOPE_KINDS

RULES_FILE = Path(__file__).resolve().parent / "rules" / "kpimon.rules.yml"
GROUP_NAME = "kpimon-kpi-rollups"
GOAL_GROUP_NAME = "kpimon-goal-attainment"
FORECAST_GROUP_NAME = "kpimon-goal-forecast"
GOAL_JOIN = "window, scope, team, rep, channel, campaign"  # a KPI series and the goal on it share these
SCOPE_JOIN = "scope, team, rep, channel, campaign"  # the open pipeline has no window
STAGE_JOIN = f"{SCOPE_JOIN}, stage"
# Labels that tell workers apart: the target's address, and the pod under Kubernetes.
WORKER_LABELS = ("instance", "pod")
SUM_WITHOUT = f"sum without ({', '.join(WORKER_LABELS)})"


@dataclass(frozen=True)
class RecordingRule:
    record: str
    expr: str
    kpi: KpiSpec
    kpi_label: bool = False  # one record name for many KPIs: a static ``kpi`` label tells the rules apart
    method: str | None = None  # a static ``method`` label (the goal forecasts)


@dataclass(frozen=True)
class Skipped:
    kpi: KpiSpec
    missing: tuple[str, ...]


def exported_counters(catalog: Catalog) -> dict[str, KpiSpec]:
    """Counter name -> the KPI that exports it as a series (its formula is the counter, or it over a number)."""
    by_metric = {kpi.metric: kpi for kpi in catalog.kpis}  # a metric is one KPI's (the catalog checks it)
    return {counter: by_metric[metric] for counter, (metric, _) in catalog.exported_counters().items()}


def scaled(source: KpiSpec, series: str) -> str:
    """The counter ``source`` exports, from ``series`` (its values): ``(100 * series)`` for ``counter / 100``."""
    given = source.exported_counter()
    factor = 1.0 if given is None else given[1]
    return series if factor == 1 else f"({_number(int(factor) if factor.is_integer() else factor)} * {series})"


def _alternatives(values: Sequence[str], every: Sequence[str]) -> str | None:
    """A regex matching ``values``, or None when they are all of ``every`` (no matcher needed)."""
    return None if set(every) <= set(values) else "|".join(value for value in every if value in values)


def _series(kpi: KpiSpec, source: KpiSpec, scopes: Sequence[str], windows: Sequence[str]) -> str:
    """``source``'s series, limited to the scopes and windows ``kpi`` has."""
    matchers = []
    scope_regex = None if set(source.scopes) <= set(scopes) else _alternatives(scopes, SCOPE_KINDS)
    window_regex = None if set(source.windows) <= set(windows) else _alternatives(windows, WINDOW_NAMES)
    if scope_regex is not None:
        matchers.append(f'scope=~"{scope_regex}"')
    if window_regex is not None:
        matchers.append(f'window=~"{window_regex}"')
    return source.metric + (f"{{{', '.join(matchers)}}}" if matchers else "")


def _selector(kpi: KpiSpec, source: KpiSpec, scopes: Sequence[str], windows: Sequence[str]) -> str:
    """``source``'s series summed across workers, limited to the scopes and windows ``kpi`` has."""
    return f"{SUM_WITHOUT} ({_series(kpi, source, scopes, windows)})"


def _has_series(node: ast.expr) -> bool:
    return any(isinstance(child, ast.Name) for child in ast.walk(node))


def _number(value: float) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def promql(node: ast.expr, operand: dict[str, str], top: bool = True, parts: Mapping[str, str] | None = None) -> str:
    """PromQL of a catalog formula (``+ - * /``, unary minus, ``at_least``, numbers, counters) over summed series.

    ``parts``: PromQL for whole subtrees (by ``ast.dump``), the numerators rebuilt from a gauge (``numerator_parts``).
    """
    parts = parts or {}
    if ast.dump(node) in parts:
        return parts[ast.dump(node)]
    if isinstance(node, ast.Name):
        return operand[node.id]
    if isinstance(node, ast.Constant):
        return _number(node.value)
    if isinstance(node, ast.UnaryOp):
        return f"-({promql(node.operand, operand, parts=parts)})"
    guard = guard_of(node)
    if guard is not None:  # a comparison keeps the series at or above the bound, with their values
        return f"({promql(guard[0], operand, top=False, parts=parts)} >= {_number(guard[1])})"
    assert isinstance(node, ast.BinOp)
    symbol = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}[type(node.op)]
    left = promql(node.left, operand, top=False, parts=parts)
    right = promql(node.right, operand, top=False, parts=parts)
    if isinstance(node.op, ast.Div) and _has_series(node.right):
        # x / 0 has no value (as on /metrics): keep only the series whose denominator is not 0.
        right = f"({promql(node.right, operand, top=False, parts=parts)} != 0)"
    text = f"{left} {symbol} {right}"
    return text if top else f"({text})"


def numerator_parts(
    catalog: Catalog, body: ast.expr, exported: Mapping[str, KpiSpec]
) -> dict[str, tuple[KpiSpec, str]]:
    """Subtrees of ``body`` reading a counter no series gives that are another KPI's numerator ``x`` of ``x / y``.

    By ``ast.dump``: (that KPI, ``y``). Summed across workers ``x`` is that KPI's gauge times ``y``, summed
    (``Catalog.numerator_of``): the gross profit is the gross margin times MRR (it reads the config's
    ``gross_margin`` and the costed stocks, which no series gives).
    """
    parts: dict[str, tuple[KpiSpec, str]] = {}
    for node in ast.walk(body):
        if not isinstance(node, ast.BinOp) or ast.dump(node) in parts:
            continue
        found = catalog.numerator_of(node) if names_outside(node, {}) - set(exported) else None
        if found is not None:
            parts[ast.dump(node)] = found
    return parts


def names_outside(node: ast.expr, parts: Mapping[str, object]) -> set[str]:
    """The counters ``node`` reads outside the subtrees in ``parts`` (a guard's function name is no counter)."""
    if ast.dump(node) in parts:
        return set()
    if isinstance(node, ast.Name):
        return {node.id}
    children = (
        node.args if isinstance(node, ast.Call) else [c for c in ast.iter_child_nodes(node) if isinstance(c, ast.expr)]
    )
    return {name for child in children for name in names_outside(child, parts)}


def recording_rules(catalog: Catalog) -> tuple[list[RecordingRule], list[Skipped]]:
    exported = exported_counters(catalog)
    rules: list[RecordingRule] = []
    skipped: list[Skipped] = []
    for kpi in catalog.kpis:
        body = kpi.formula.tree.body
        given = kpi.exported_counter()
        if given is not None and exported[given[0]] is kpi:
            rules.append(RecordingRule(f"kpimon:{kpi.id}:sum", f"{SUM_WITHOUT} ({kpi.metric})", kpi))
            continue
        if isinstance(body, ast.Name):
            continue
        parts = numerator_parts(catalog, body, exported)
        names = names_outside(body, parts)
        missing = tuple(sorted(name for name in names if name not in exported))
        if missing:
            skipped.append(Skipped(kpi, missing))
            continue
        sources = [exported[name] for name in sorted(names)]
        sources += [source for part, counter in parts.values() for source in (part, exported[counter])]
        scopes = [scope for scope in kpi.scopes if all(scope in source.scopes for source in sources)]
        windows = [window for window in kpi.windows if all(window in source.windows for source in sources)]
        if not scopes or not windows:
            skipped.append(Skipped(kpi, ()))
            continue
        operand = {name: scaled(exported[name], _selector(kpi, exported[name], scopes, windows)) for name in names}
        rebuilt = {
            shape: scaled(
                exported[counter],
                f"{SUM_WITHOUT} ({_series(kpi, part, scopes, windows)} * "
                f"{_series(kpi, exported[counter], scopes, windows)})",
            )
            for shape, (part, counter) in parts.items()
        }
        kind = "ratio" if isinstance(body, ast.BinOp) and isinstance(body.op, ast.Div) else "rollup"
        rules.append(RecordingRule(f"kpimon:{kpi.id}:{kind}", promql(body, operand, parts=rebuilt), kpi))
    return rules, skipped


def goal_rules(catalog: Catalog) -> list[RecordingRule]:
    """``kpimon_goal_attainment_ratio`` for each KPI that can have a goal (see the module text)."""
    rules = []
    for kpi in catalog.kpis:
        if not kpi.adds_up_over_time():
            continue
        expr = f"{_goal_value(kpi)} / on ({GOAL_JOIN}) group_right {_goal_series('kpimon_goal', kpi)}"
        rules.append(RecordingRule("kpimon_goal_attainment_ratio", expr, kpi, kpi_label=True))
    return rules


def _goal_value(kpi: KpiSpec) -> str:
    """The KPI summed across workers per goal scope and window, 0 where a goal has no series of it yet."""
    return f'(sum by ({GOAL_JOIN}) ({kpi.metric}) or max by ({GOAL_JOIN}) (kpimon_goal{{kpi="{kpi.id}"}}) * 0)'


def _goal_series(family: str, kpi: KpiSpec) -> str:
    return f'max by ({GOAL_JOIN}, kpi, goal, period) ({family}{{kpi="{kpi.id}"}})'


def _weighted_total(open_family: str) -> str:
    """``kpimon:open_deals:weighted``: the sum over stages of ``_weighted`` of a per-stage open family."""
    return weighted_record(open_family.removesuffix("_by_stage"))


def forecast_rules(catalog: Catalog) -> list[RecordingRule]:
    """``kpimon_goal_projection`` per goal KPI and method, and the weighted open pipelines (see the module text)."""
    by_id = {kpi.id: kpi for kpi in catalog.kpis}
    window = f'window="{WIN_RATE_WINDOW}"'
    won = f"sum by ({SCOPE_JOIN}) (kpimon_deals_won{{{window}}})"
    lost = f"sum by ({SCOPE_JOIN}) (kpimon_deals_lost{{{window}}})"
    rate = f"({won} / ({won} + {lost} != 0))"
    won_from = f"sum by (window, {STAGE_JOIN}) ({STAGE_OUTCOMES[0]}{{{window}}})"
    closed_from = f'sum by (window, {STAGE_JOIN}) ({{__name__=~"{"|".join(STAGE_OUTCOMES)}", {window}}})'
    rules = []
    kpis = [by_id[kpi_id] for kpi_id in PIPELINE_KPIS if kpi_id in by_id]
    if kpis:
        # A stage with losses and no win has no series of wins: 0 won.
        stage_rate = f"({won_from} or {closed_from} * 0) / ({closed_from} != 0)"
        rules.append(RecordingRule(STAGE_WIN_RATE_RECORD, stage_rate, by_id.get("win_rate", kpis[0])))
    for kpi in kpis:
        open_family = PIPELINE_KPIS[kpi.id]
        open_sum = f"sum by ({STAGE_JOIN}) ({open_family})"
        # The stage's own win rate, else (no deal closed from it) the scope's.
        own_rate = f"{open_sum} * on ({STAGE_JOIN}) {STAGE_WIN_RATE_RECORD}"
        by_stage = f"{own_rate} or {open_sum} * on ({SCOPE_JOIN}) group_left () {rate}"
        rules.append(RecordingRule(weighted_record(open_family), by_stage, kpi))
        # A scope with a win rate and nothing open weighs 0.
        expr = f"sum by ({SCOPE_JOIN}) ({weighted_record(open_family)}) or {rate} * 0"
        rules.append(RecordingRule(_weighted_total(open_family), expr, kpi))
    for kpi in catalog.kpis:
        if not kpi.adds_up_over_time():
            continue
        share = f"({_goal_series('kpimon_goal_expected', kpi)} / {_goal_series('kpimon_goal', kpi)})"
        expr = f"{_goal_value(kpi)} / on ({GOAL_JOIN}) group_right () ({share} >= {_number(MIN_ELAPSED_SHARE)})"
        rules.append(RecordingRule(GOAL_PROJECTION, expr, kpi, kpi_label=True, method="run_rate"))
        if kpi.id in PIPELINE_KPIS:
            weighted = _weighted_total(PIPELINE_KPIS[kpi.id])
            projected = f"{_goal_value(kpi)} + on ({SCOPE_JOIN}) group_left {weighted}"
            # Adding the goal times 0 puts the goal's labels on the projection.
            goal_labels = f"{_goal_series('kpimon_goal', kpi)} * 0"
            expr = f"({projected}) + on ({GOAL_JOIN}) group_right {goal_labels}"
            rules.append(RecordingRule(GOAL_PROJECTION, expr, kpi, kpi_label=True, method="weighted_pipeline"))
    return rules


def _rule_lines(rules: Sequence[RecordingRule]) -> list[str]:
    lines = []
    for rule in rules:
        lines += [
            f"      # {rule.kpi.name}: {rule.kpi.formula.source}",
            f"      - record: {rule.record}",
            "        expr: |-",
            f"          {rule.expr}",
        ]
        if rule.kpi_label or rule.method:
            lines.append("        labels:")
        if rule.kpi_label:
            lines.append(f"          kpi: {rule.kpi.id}")
        if rule.method:
            lines.append(f"          method: {rule.method}")
    return lines


def render(catalog: Catalog) -> str:
    rules, skipped = recording_rules(catalog)
    lines = [
        "# Generated by `python deploy/prometheus/generate_rules.py` from schemas/catalog.yaml: do not edit by hand.",
        "#",
        "# KPI values rolled up across kpimon workers. Each worker exports the scopes of its own partitions;",
        "# counts are summed across workers, and every derived KPI is its catalog formula over those sums",
        "# (sum the numerator and the denominator, then divide; never average the workers' ratios).",
        "# Labels kept: window, scope, team, rep, channel, campaign (and job); a division by 0 gives no series.",
    ]
    if skipped:
        lines += [
            "#",
            "# Derived KPIs without a roll-up (a counter of their formula is exported as no series, and is in no",
            "# numerator of another KPI that a series divides):",
        ]
        for item in skipped:
            why = f"needs {', '.join(item.missing)}" if item.missing else "no scope or window in common"
            lines.append(f"#   {item.kpi.id} ({item.kpi.metric} = {item.kpi.formula.source}): {why}")
    lines += ["", "groups:", f"  - name: {GROUP_NAME}", "    rules:", *_rule_lines(rules)]
    lines += [
        "  # Goal attainment: the KPI summed across workers over its goal (the same on every worker: max).",
        f"  - name: {GOAL_GROUP_NAME}",
        "    rules:",
        *_rule_lines(goal_rules(catalog)),
        "  # Goal forecast: the period-end projections of each goal's KPI, from sums across workers.",
        f"  - name: {FORECAST_GROUP_NAME}",
        "    rules:",
        *_rule_lines(forecast_rules(catalog)),
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=Path, help="a YAML file extending the built-in KPI catalog")
    parser.add_argument("--output", type=Path, default=RULES_FILE, help=f"default: {RULES_FILE}")
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is not what would be generated")
    args = parser.parse_args(argv)
    command = "python deploy/prometheus/generate_rules.py"
    return write_or_check(args.output, render(load_catalog(args.catalog)), args.check, command)


def write_or_check(output: Path, text: str, check: bool, command: str) -> int:
    """Write the generated ``text`` to ``output``; with ``check``, only say whether it is current (exit 1 if not)."""
    if check:
        current = output.read_text(encoding="utf-8") if output.exists() else ""
        if current != text:
            print(f"{output} is stale: run {command}", file=sys.stderr)
            return 1
        print(f"{output} is current")
        return 0
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
