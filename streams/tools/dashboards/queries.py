"""PromQL for the KPIs, built from the catalog: pure, no Grafana.

**Aggregation across workers.** Every worker exports the scopes of the partitions it
owns, so the same series comes once per worker. Every metric in a panel query is
wrapped in ``sum without (instance, pod, job) (...)``, which keeps the KPI labels
(``window``, ``scope``, ``team``, ``rep``, ``channel``, ``campaign``) and adds up the workers.
That is exact for counts and money. A ratio gauge is never summed nor averaged:
``kpi_query`` translates the KPI's catalog formula into PromQL over the summed
series of its counters, so ``deals_won / (deals_won + deals_lost)`` becomes
``sum(won) / ((sum(won) + sum(lost)) > 0)``, exact whatever the number of workers
(``> 0`` keeps the catalog's rule that a ratio over zero has no value). A counter
has a series only where a KPI's formula is that counter alone (``kpimon_revenue`` is
the ``revenue`` counter), so average deal size (``revenue / deals_won``) is exact too.
Where a part of a formula uses a counter without a series, that part is another
KPI's gauge (``calls_connected / calls`` is the call connect rate): it is taken per
worker weighted by its denominator, ``sum(gauge * weight) / sum(weight)``, which is
exact for one worker, and across workers exact unless a worker counted the numerator
without its denominator. The sales cycle and pipeline velocity are rebuilt from the
summed ``kpimon_sales_cycle_total_seconds`` and ``kpimon_deals_won_timed``. A KPI that is a
counter over a number gives that counter too: ``kpimon_mrr`` is ``stock_mrr_cents / 100``, so
the counter is ``100 * sum(kpimon_mrr)`` and MRR at the window's start or the net revenue
retention are rebuilt exactly. A part that is the numerator of another KPI's ``x / y``
(the gross profit of the gross margin) is that KPI's gauge times ``y``, summed: each worker's
gauge times its own ``y`` is its own ``x``, so the CLV and LTV:CAC are exact too. A KPI
that cannot be rebuilt at all falls back to the summed gauge, and its panel says it
is exact for one worker only. Each panel's description states which case applies.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

from schemas.catalog import Catalog, KpiSpec
from schemas.formula import guard_of
from schemas.scopes import ScopeKind

AGGREGATE = "sum without (instance, pod, job)"
# kpimon_goal and kpimon_goal_expected come from the config and the clock: every worker serves the same value,
# so they are taken once (max), never summed; the goal's name, KPI and period go too (the selector pins them).
GOAL_AGGREGATE = "max without (instance, pod, job, kpi, goal, period)"
# Counters without a series: the exported counter that counts the same things, and when it does.
_OPERATORS: Mapping[type[ast.operator], str] = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}


@dataclass(frozen=True)
class Selector:
    """The label matchers of one panel: a window, a scope, and ``label=~"$variable"`` filters."""

    window: str
    scope: ScopeKind
    filters: tuple[tuple[str, str], ...] = ()

    def render(self, metric: str) -> str:
        matchers = [f'window="{self.window}"', f'scope="{self.scope}"']
        matchers += [f'{label}=~"{pattern}"' for label, pattern in self.filters]
        return f"{metric}{{{', '.join(matchers)}}}"


def goal_expected_query(kpi_id: str, period: str, selector: Selector) -> str:
    """The pace to the config's goals of ``period`` on ``kpi_id`` in the selector's scopes: the value expected by now.

    A scope under several such goals takes the highest pace. Label sets are the KPI series' own, so a KPI query
    divides by it series by series.
    """
    matchers = [f'window="{selector.window}"', f'scope="{selector.scope}"', f'kpi="{kpi_id}"', f'period="{period}"']
    matchers += [f'{label}=~"{pattern}"' for label, pattern in selector.filters]
    return f"{GOAL_AGGREGATE} (kpimon_goal_expected{{{', '.join(matchers)}}})"


@dataclass(frozen=True)
class KpiQuery:
    expr: str
    exact: bool  # exact whatever the number of workers
    note: str  # how the value is aggregated across workers, for the panel description


class _NoSeries(Exception):
    """A formula part that summed series cannot rebuild."""


def counter_series(catalog: Catalog) -> dict[str, str]:
    """Counters exported as a series: those a KPI's formula is alone, or over a number (counter -> metric)."""
    return {counter: metric for counter, (metric, _) in catalog.exported_counters().items()}


def total(metric: str, selector: Selector) -> str:
    return f"{AGGREGATE} ({selector.render(metric)})"


def _number(value: object) -> str:
    number = float(cast(float, value))
    return str(int(number)) if number.is_integer() else repr(number)


class _Translator:
    def __init__(self, catalog: Catalog, selector: Selector) -> None:
        self._catalog = catalog
        self._series = catalog.exported_counters()
        self._selector = selector
        self.notes: list[str] = []
        self.notes_exact: list[str] = []  # parts rebuilt from a gauge times its denominator: still exact

    def translate(self, node: ast.expr) -> str:
        if isinstance(node, ast.Name):
            if node.id not in self._series:
                raise _NoSeries(node.id)
            metric, factor = self._series[node.id]
            summed = total(metric, self._selector)
            return summed if factor == 1 else f"({_number(factor)} * {summed})"
        if isinstance(node, ast.Constant):
            return _number(node.value)
        if isinstance(node, ast.UnaryOp):
            return f"-({self.translate(node.operand)})"
        guard = guard_of(node)
        if guard is not None:  # at_least(x, n): the series of x at or above n, with their values
            return f"({self.translate(guard[0])} >= {_number(guard[1])})"
        assert isinstance(node, ast.BinOp)
        try:
            left, right = self.translate(node.left), self.translate(node.right)
        except _NoSeries:
            numerator = self._numerator(node)
            return numerator if numerator is not None else self._weighted_gauge(node)
        if isinstance(node.op, ast.Div) and not isinstance(node.right, ast.Constant):
            right = f"({right} > 0)"  # a ratio over zero has no value (catalog rule), not +Inf
        return f"({left} {_OPERATORS[type(node.op)]} {right})"

    def _numerator(self, node: ast.BinOp) -> str | None:
        """``x`` that is the numerator of another KPI's ``x / y``, ``y`` a series: the sum of that gauge x ``y``.

        Exact (``Catalog.numerator_of``): the gross margin gauge weighted by MRR gives the gross profit.
        """
        found = self._catalog.numerator_of(node)
        if found is None:
            return None
        kpi, denominator = found
        metric, factor = self._series[denominator]
        product = f"{AGGREGATE} ({self._selector.render(kpi.metric)} * {self._selector.render(metric)})"
        self.notes_exact.append(f"{ast.unparse(node)} is {kpi.metric} x {metric} summed over workers")
        return product if factor == 1 else f"({_number(factor)} * {product})"

    def _weighted_gauge(self, node: ast.BinOp) -> str:
        """``x / y`` that is another KPI's formula: its per-worker gauge, weighted by ``y``."""
        shape = ast.dump(node)
        kpi = next((k for k in self._catalog.kpis if ast.dump(k.formula.tree.body) == shape), None)
        if kpi is None or not isinstance(node.op, ast.Div) or not isinstance(node.right, ast.Name):
            raise _NoSeries(ast.unparse(node))
        denominator = node.right.id
        if denominator not in self._series:  # a scaled series weighs alike: the factor cancels out
            raise _NoSeries(denominator)
        gauge = self._selector.render(kpi.metric)
        weights = self._selector.render(self._series[denominator][0])
        self.notes.append(
            f"{kpi.name} is the per-worker gauge weighted by {denominator} (sum of gauge x {denominator} over sum "
            f"of {denominator}): exact for one worker; across workers exact unless a worker counted "
            f"{ast.unparse(node.left)} without any {denominator} in the window."
        )
        return f"({AGGREGATE} ({gauge} * {weights}) / ({AGGREGATE} ({weights} and {gauge}) > 0))"


def kpi_query(catalog: Catalog, kpi: KpiSpec, selector: Selector) -> KpiQuery:
    """PromQL for ``kpi`` that aggregates the workers' series correctly (see the module docstring)."""
    if selector.scope not in kpi.scopes:
        raise ValueError(f"KPI {kpi.id!r} has no {selector.scope!r} scope (it has {', '.join(kpi.scopes)})")
    if selector.window not in kpi.windows and not selector.window.startswith("$"):
        raise ValueError(f"KPI {kpi.id!r} has no {selector.window!r} window")
    body = kpi.formula.tree.body
    translator = _Translator(catalog, selector)
    try:
        expr = translator.translate(body)
    except _NoSeries:
        note = f"Sum of the per-worker {kpi.metric} gauge: exact for one worker only."
        return KpiQuery(total(kpi.metric, selector), exact=False, note=note)
    if isinstance(body, ast.BinOp) and expr.startswith("(") and expr.endswith(")"):
        expr = expr[1:-1]
    if translator.notes:
        return KpiQuery(expr, exact=False, note=" ".join(translator.notes))
    if isinstance(body, ast.Name):
        note = "Summed over workers: exact."
    else:
        note = f"Each count summed over workers, then `{kpi.formula.source}`: exact."
    if translator.notes_exact:
        note += f" ({'; '.join(translator.notes_exact)}: each worker's own part, so exact too.)"
    return KpiQuery(expr, exact=True, note=note)
