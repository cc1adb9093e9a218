"""Grafana dashboards as code, generated from the KPI catalog.

``kpimon dashboards`` writes ``deploy/grafana/dashboards/*.json``; a unit test fails
when the checked-in files are stale (the same pattern as ``kpimon docs``). Three
dashboards, linked to each other (a dashboard link by tag, and panel links):

* **Sales wallboard** (``kpimon-wallboard``) for a TV in kiosk mode (``?kiosk``), 5 s
  refresh: today's activity per rep as % of pace to a daily goal, a leaderboard,
  revenue month to date against a target, win rate and lead -> opportunity for the
  week, pipeline velocity over 30 days, and whether the numbers are live.
* **Funnel** (``kpimon-funnel``): stage volumes, conversion ratios, sales cycle,
  average deal size, revenue and velocity for a chosen window, by team, channel and rep.
* **Marketing** (``kpimon-marketing``): the marketing activity the worker exports
  today, and a text panel naming the panels that come with the marketing KPIs.

Design choices:

* The panels are built with grafana-foundation-sdk (Grafana's own typed builders, generated
  from Grafana's schemas), so this module only decides *what* is shown. It emits the classic
  dashboard model (schema version 42), which Grafana 11 and 12 import as is; the v2 schema
  still needs feature toggles. Every panel uses the ``datasource`` variable: no data source
  uid is baked in. The module is pure: ``dashboards`` returns dicts, ``dashboard_files``
  their text (sorted keys, 2-space indent); only ``write_dashboards`` touches the disk.
* **Aggregation across workers.** Every worker exports the scopes of the partitions it
  owns, so the same series comes once per worker. Every metric in a panel query is
  wrapped in ``sum without (instance, pod, job) (...)``, which keeps the KPI labels
  (``window``, ``scope``, ``team``, ``rep``, ``channel``) and adds up the workers.
  That is exact for counts and money. A ratio gauge is never summed nor averaged:
  ``kpi_query`` translates the KPI's catalog formula into PromQL over the summed
  series of its counters, so ``deals_won / (deals_won + deals_lost)`` becomes
  ``sum(won) / ((sum(won) + sum(lost)) > 0)``, exact whatever the number of workers
  (``> 0`` keeps the catalog's rule that a ratio over zero has no value). A counter
  has a series only where a KPI's formula is that counter alone (``kpimon_revenue`` is
  the ``revenue`` counter), so average deal size (``revenue / deals_won``) is exact too.
  Where a part of a formula uses a counter without a series, that part is another
  KPI's gauge (``cycle_seconds / deals_won_timed`` is the sales cycle): it is taken
  per worker weighted by its denominator, ``sum(gauge * weight) / sum(weight)``, which
  is exact for one worker, and across workers exact when the weight counts what the
  denominator counts. ``deals_won_timed`` has no series; ``deals_won`` stands in for it
  (equal whenever every won deal's opening time is known). So pipeline velocity is
  rebuilt from summed counts and this weighted sales cycle. A KPI that cannot be
  rebuilt at all falls back to the summed gauge, and its panel says it is exact for
  one worker only. Each panel's description states which case applies.
* **Units and colours from the catalog.** The catalog unit gives the Grafana unit
  (``GRAFANA_UNITS``); ``good: up/down`` gives the colour order: red -> amber -> green
  thresholds upwards when up is good (reversed when down is good), the gradient of
  bar gauges comparing teams, reps or channels, and the colour of a stat's change.
* **Goals and targets are not metrics yet.** Daily goals per rep
  (``daily_goal_<kpi id>``) and the monthly revenue target (``revenue_target_month``)
  are text-box variables with defaults, to be fed by targets later; they can be set per
  TV in the URL (``&var-daily_goal_calls=50``). Bars are coloured by *pace*: the share of
  the goal expected by now, given the office's working hours (``workday_start_hour``,
  ``workday_end_hour``, ``utc_offset_hours``), under 80 % red, under 100 % amber, else green.
* Headline stats are for the whole organisation (``scope="all"``, which also counts
  events without a team); ``$team``, ``$rep`` and ``$channel`` filter the breakdowns.
* Only metrics a worker exports are queried (``docs/metrics.md``): no panel refers to
  the marketing KPIs of a later issue (cost per lead, CAC, ROMI, open rate, CTR, web
  sessions); a text panel names the panels that will come with them.
"""

from __future__ import annotations

import ast
import json
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import orjson

from schemas.catalog import WINDOW_NAMES, Catalog, KpiSpec, ScopeKind
from schemas.config import KpimonConfig

with warnings.catch_warnings():
    # The SDK marks the classic dashboard model deprecated (in favour of the v2 schema) as its classes are
    # defined; the classic model is what Grafana 11 and 12 import as they are (v2 needs feature toggles).
    warnings.simplefilter("ignore", DeprecationWarning)
    from grafana_foundation_sdk.builders import bargauge, prometheus, stat, table, text, timeseries
    from grafana_foundation_sdk.builders import common as common_builders
    from grafana_foundation_sdk.builders import dashboard as builders
    from grafana_foundation_sdk.cog.builder import Builder
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models import common
    from grafana_foundation_sdk.models import dashboard as models
    from grafana_foundation_sdk.models.prometheus import PromQueryFormat
    from grafana_foundation_sdk.models.text import TextMode

DASHBOARD_DIR = Path("deploy/grafana/dashboards")
CURRENCY = KpimonConfig().reporting_currency  # the default reporting currency: Grafana's money unit
TAG = "kpimon"
AGGREGATE = "sum without (instance, pod, job)"
DATASOURCE = common.DataSourceRef(type_val="prometheus", uid="${datasource}")
GRAFANA_UNITS: Mapping[str, str] = {
    "count": "short",
    "seconds": "s",
    "ratio": "percentunit",
    "currency": "currency{currency}",
    "currency_per_day": "currency{currency}",  # Grafana has no money-per-day unit: titles say "per day"
}
# Counters without a series: the exported counter that counts the same things, and when it does.
MEAN_WEIGHTS: Mapping[str, tuple[str, str]] = {
    "deals_won_timed": ("deals_won", "every won deal's opening time is known"),
}
# Defaults of the goal variables, until targets feed them.
DAILY_GOALS: Mapping[str, int] = {
    "calls": 40,
    "emails_sent": 30,
    "meetings_booked": 4,
    "meetings_held": 3,
    "demos_completed": 2,
}
MONTHLY_REVENUE_TARGET = 100_000
PACE_AMBER, PACE_GREEN = 0.8, 1.0
WORKDAY = {"workday_start_hour": "9", "workday_end_hour": "17", "utc_offset_hours": "0"}
UIDS = {"wallboard": "kpimon-wallboard", "funnel": "kpimon-funnel", "marketing": "kpimon-marketing"}
COMING_WITH_MARKETING_KPIS = (
    "Cost per lead (CPL)",
    "Customer acquisition cost (CAC)",
    "Return on marketing investment (ROMI)",
    "Email open rate",
    "Click-through rate (CTR)",
    "Web sessions",
)

PanelBuilder = Builder[models.Panel]
_OPERATORS: Mapping[type[ast.operator], str] = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}


# --- PromQL from the catalog -------------------------------------------------------------------


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


@dataclass(frozen=True)
class KpiQuery:
    expr: str
    exact: bool  # exact whatever the number of workers
    note: str  # how the value is aggregated across workers, for the panel description


class _NoSeries(Exception):
    """A formula part that summed series cannot rebuild."""


def counter_series(catalog: Catalog) -> dict[str, str]:
    """Counters exported as a series: those a KPI's formula is alone (counter -> metric)."""
    return {kpi.formula.tree.body.id: kpi.metric for kpi in catalog.kpis if isinstance(kpi.formula.tree.body, ast.Name)}


def total(metric: str, selector: Selector) -> str:
    return f"{AGGREGATE} ({selector.render(metric)})"


def _number(value: object) -> str:
    number = float(cast(float, value))
    return str(int(number)) if number.is_integer() else repr(number)


class _Translator:
    def __init__(self, catalog: Catalog, selector: Selector) -> None:
        self._catalog = catalog
        self._series = counter_series(catalog)
        self._selector = selector
        self.notes: list[str] = []

    def translate(self, node: ast.expr) -> str:
        if isinstance(node, ast.Name):
            if node.id not in self._series:
                raise _NoSeries(node.id)
            return total(self._series[node.id], self._selector)
        if isinstance(node, ast.Constant):
            return _number(node.value)
        if isinstance(node, ast.UnaryOp):
            return f"-({self.translate(node.operand)})"
        assert isinstance(node, ast.BinOp)
        try:
            left, right = self.translate(node.left), self.translate(node.right)
        except _NoSeries:
            return self._weighted_gauge(node)
        if isinstance(node.op, ast.Div) and not isinstance(node.right, ast.Constant):
            right = f"({right} > 0)"  # a ratio over zero has no value (catalog rule), not +Inf
        return f"({left} {_OPERATORS[type(node.op)]} {right})"

    def _weighted_gauge(self, node: ast.BinOp) -> str:
        """``x / y`` that is another KPI's formula: its per-worker gauge, weighted by ``y``."""
        shape = ast.dump(node)
        kpi = next((k for k in self._catalog.kpis if ast.dump(k.formula.tree.body) == shape), None)
        if kpi is None or not isinstance(node.op, ast.Div) or not isinstance(node.right, ast.Name):
            raise _NoSeries(ast.unparse(node))
        denominator = node.right.id
        weight, when = (denominator, "") if denominator in self._series else MEAN_WEIGHTS.get(denominator, ("", ""))
        if weight not in self._series:
            raise _NoSeries(denominator)
        gauge = self._selector.render(kpi.metric)
        weights = self._selector.render(self._series[weight])
        if weight == denominator:
            self.notes.append(
                f"{kpi.name} is the per-worker gauge weighted by {weight} (sum of gauge x {weight} over sum of "
                f"{weight}): exact for one worker; across workers exact unless a worker counted "
                f"{ast.unparse(node.left)} without any {denominator} in the window."
            )
        else:
            self.notes.append(
                f"{kpi.name} is the per-worker gauge weighted by {weight} ({denominator} has no series): exact for "
                f"one worker; across workers exact when {weight} equals {denominator} ({when})."
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
    return KpiQuery(expr, exact=True, note=note)


def grafana_unit(kpi: KpiSpec, currency: str) -> str:
    return GRAFANA_UNITS[kpi.unit].format(currency=currency)


def threshold_steps(good: Literal["up", "down"], amber: float, green: float) -> list[models.Threshold]:
    """Red / amber / green in the order ``good`` says: upwards when up is good, downwards otherwise."""
    if good == "up":
        return [models.Threshold(None, "red"), models.Threshold(amber, "orange"), models.Threshold(green, "green")]
    return [models.Threshold(None, "green"), models.Threshold(amber, "orange"), models.Threshold(green, "red")]


def gradient(good: Literal["up", "down"]) -> models.FieldColorModeId:
    """The colour scheme of a comparison (reps, teams, channels): the best end is green."""
    return models.FieldColorModeId.CONTINUOUS_RD_YL_GR if good == "up" else models.FieldColorModeId.CONTINUOUS_GR_YL_RD


# --- panels ---------------------------------------------------------------------------------------


def _neutral() -> builders.ThresholdsConfig:
    return builders.ThresholdsConfig().mode(models.ThresholdsMode.ABSOLUTE).steps([models.Threshold(None, "blue")])


def _pace_thresholds(kpi: KpiSpec) -> builders.ThresholdsConfig:
    steps = threshold_steps(kpi.good, PACE_AMBER, PACE_GREEN)
    return builders.ThresholdsConfig().mode(models.ThresholdsMode.ABSOLUTE).steps(steps)


def _target(
    expr: str, ref_id: str, legend: str = "", *, instant: bool = False, table: bool = False
) -> prometheus.Dataquery:
    """A query over the time range (stats' sparklines), or an instant one (bars, tables: the value now)."""
    query = prometheus.Dataquery().expr(expr).ref_id(ref_id).datasource(DATASOURCE)
    if legend:
        query = query.legend_format(legend)
    query = query.instant() if instant else query.range()
    return query.format(PromQueryFormat.TABLE) if table else query


def _reduce_last() -> common_builders.ReduceDataOptions:
    return common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False)


def _link(title: str, dashboard: str, *variables: str) -> builders.DashboardLink:
    query = "&".join(["${__url_time_range}", *(f"${{{name}:queryparam}}" for name in variables)])
    return builders.DashboardLink(title).type(models.DashboardLinkType.LINK).url(f"/d/{UIDS[dashboard]}?{query}")


def _description(*parts: str) -> str:
    return " ".join(part for part in parts if part)


def _ref(index: int) -> str:
    return chr(ord("A") + index)


class _Panels:
    """Panel factories that share the catalog, the currency and the panel conventions."""

    def __init__(self, catalog: Catalog, currency: str) -> None:
        self.catalog = catalog
        self.currency = currency
        self.kpis = {kpi.id: kpi for kpi in catalog.kpis}

    def kpi(self, kpi_id: str) -> KpiSpec:
        return self.kpis[kpi_id]

    def unit(self, kpi_id: str) -> str:
        return grafana_unit(self.kpi(kpi_id), self.currency)

    def query(self, kpi_id: str, selector: Selector) -> KpiQuery:
        return kpi_query(self.catalog, self.kpi(kpi_id), selector)

    def one_unit(self, title: str, kpi_ids: Sequence[str]) -> str:
        """The Grafana unit shared by ``kpi_ids``, shown together in one panel."""
        units = {self.unit(kpi_id) for kpi_id in kpi_ids}
        if len(units) != 1:
            raise ValueError(f"{title}: KPIs of different units {sorted(units)}")
        return units.pop()

    def kpi_stat(
        self, kpi_id: str, selector: Selector, title: str, *, links: Sequence[Builder[models.DashboardLink]] = ()
    ) -> stat.Panel:
        """One KPI as a big number with its sparkline; a ratio's change is coloured by ``good``."""
        kpi, query = self.kpi(kpi_id), self.query(kpi_id, selector)
        panel = (
            stat.Panel()
            .title(title)
            .description(_description(kpi.description, query.note))
            .datasource(DATASOURCE)
            .with_target(_target(query.expr, "A", kpi.name))
            .unit(self.unit(kpi_id))
            .thresholds(_neutral())
            .reduce_options(_reduce_last())
            .color_mode(common.BigValueColorMode.VALUE)
            .graph_mode(common.BigValueGraphMode.AREA)
            .text_mode(common.BigValueTextMode.VALUE)
        )
        if not isinstance(kpi.formula.tree.body, ast.Name):
            mode = (
                common.PercentChangeColorMode.STANDARD if kpi.good == "up" else common.PercentChangeColorMode.INVERTED
            )
            panel = panel.show_percent_change(True).percent_change_color_mode(mode)
        if kpi.unit == "ratio":
            panel = panel.decimals(1)
        return panel.links(list(links)) if links else panel

    def multi_stat(self, title: str, kpi_ids: Sequence[str], selector: Selector, description: str) -> stat.Panel:
        """Several KPIs of one unit side by side, each named."""
        queries = [self.query(kpi_id, selector) for kpi_id in kpi_ids]
        notes = sorted({q.note for q in queries})
        panel = (
            stat.Panel()
            .title(title)
            .description(_description(description, *notes))
            .datasource(DATASOURCE)
            .unit(self.one_unit(title, kpi_ids))
            .thresholds(_neutral())
            .reduce_options(_reduce_last())
            .color_mode(common.BigValueColorMode.VALUE)
            .graph_mode(common.BigValueGraphMode.AREA)
            .text_mode(common.BigValueTextMode.VALUE_AND_NAME)
            .orientation(common.VizOrientation.HORIZONTAL)
        )
        for index, (kpi_id, query) in enumerate(zip(kpi_ids, queries, strict=True)):
            panel = panel.with_target(_target(query.expr, _ref(index), self.kpi(kpi_id).name))
        if self.kpi(kpi_ids[0]).unit == "ratio":
            panel = panel.decimals(1)
        return panel

    def comparison(self, kpi_id: str, selector: Selector, title: str, legend: str) -> bargauge.Panel:
        """One KPI across teams, reps or channels, as bars coloured from worst (red) to best (green)."""
        kpi, query = self.kpi(kpi_id), self.query(kpi_id, selector)
        return (
            bargauge.Panel()
            .title(title)
            .description(_description(kpi.description, query.note))
            .datasource(DATASOURCE)
            .with_target(_target(query.expr, "A", legend, instant=True))
            .unit(self.unit(kpi_id))
            .min(0)
            .color_scheme(builders.FieldColor().mode(gradient(kpi.good)))
            .reduce_options(_reduce_last())
            .display_mode(common.BarGaugeDisplayMode.GRADIENT)
            .orientation(common.VizOrientation.HORIZONTAL)
            .name_placement(common.BarGaugeNamePlacement.LEFT)
            .show_unfilled(True)
        )

    def pace_bars(self, kpi_id: str, selector: Selector, title: str) -> bargauge.Panel:
        """Today's count per rep as a share of the pace to the daily goal, red / amber / green."""
        kpi, query = self.kpi(kpi_id), self.query(kpi_id, selector)
        if not query.exact:
            raise ValueError(f"{kpi_id}: pace bars need an exact count")
        goal = f"daily_goal_{kpi_id}"
        expr = f"{query.expr} / (${goal} * scalar({DAY_PACE}))"
        return (
            bargauge.Panel()
            .title(title)
            .description(
                _description(
                    f"{kpi.name} today per rep, as a share of the goal expected by now: ${goal} a day (a dashboard "
                    "variable until targets feed it) times the share of the working day gone "
                    "($workday_start_hour to $workday_end_hour at UTC offset $utc_offset_hours). 100% is on pace; "
                    f"under {PACE_AMBER:.0%} red, under {PACE_GREEN:.0%} amber.",
                    query.note,
                )
            )
            .datasource(DATASOURCE)
            .with_target(_target(expr, "A", "{{rep}}", instant=True))
            .unit("percentunit")
            .decimals(0)
            .min(0)
            .max(1.5)
            .thresholds(_pace_thresholds(kpi))
            .reduce_options(_reduce_last())
            .display_mode(common.BarGaugeDisplayMode.BASIC)
            .orientation(common.VizOrientation.HORIZONTAL)
            .name_placement(common.BarGaugeNamePlacement.LEFT)
            .show_unfilled(True)
        )

    def breakdown_table(
        self, title: str, kpi_ids: Sequence[str], selector: Selector, keys: Sequence[tuple[str, str]], *, sort: str = ""
    ) -> table.Panel:
        """One row per team, rep or channel (``keys``: label -> column), one column per KPI."""
        queries = [self.query(kpi_id, selector) for kpi_id in kpi_ids]
        refs = [_ref(index) for index in range(len(kpi_ids))]
        columns = {f"Value #{ref}": self.kpi(kpi_id).name for ref, kpi_id in zip(refs, kpi_ids, strict=True)}
        rename = {**dict(keys), **columns}
        order = {name: index for index, name in enumerate(rename)}
        panel = (
            table.Panel()
            .title(title)
            .description(_description(*sorted({query.note for query in queries})))
            .datasource(DATASOURCE)
            .cell_height(common.TableCellHeight.MD)
            .with_transformation(models.DataTransformerConfig(id_val="merge", options={}))
            .with_transformation(
                models.DataTransformerConfig(id_val="filterFieldsByName", options={"include": {"names": list(rename)}})
            )
            .with_transformation(
                models.DataTransformerConfig(
                    id_val="organize", options={"excludeByName": {}, "indexByName": order, "renameByName": rename}
                )
            )
        )
        for ref, kpi_id, query in zip(refs, kpi_ids, queries, strict=True):
            panel = panel.with_target(_target(query.expr, ref, instant=True, table=True))
            unit = [models.DynamicConfigValue(id_val="unit", value=self.unit(kpi_id))]
            if self.kpi(kpi_id).unit == "ratio":
                unit.append(models.DynamicConfigValue(id_val="decimals", value=1))
            panel = panel.override_by_name(self.kpi(kpi_id).name, unit)
        if sort:
            panel = panel.sort_by([common_builders.TableSortByFieldState().display_name(sort).desc(True)])
        return panel

    def trend(self, title: str, kpi_ids: Sequence[str], selector: Selector, description: str) -> timeseries.Panel:
        queries = [self.query(kpi_id, selector) for kpi_id in kpi_ids]
        panel = (
            timeseries.Panel()
            .title(title)
            .description(_description(description, *sorted({q.note for q in queries})))
            .datasource(DATASOURCE)
            .unit(self.one_unit(title, kpi_ids))
            .min(0)
        )
        for index, (kpi_id, query) in enumerate(zip(kpi_ids, queries, strict=True)):
            panel = panel.with_target(_target(query.expr, _ref(index), self.kpi(kpi_id).name))
        return panel.decimals(1) if self.kpi(kpi_ids[0]).unit == "ratio" else panel


# Share of the working day gone, in the office's hours (5 % at least, so an early call is no infinite pace).
DAY_PACE = (
    "clamp(vector(((time() / 3600 + $utc_offset_hours) % 24 - $workday_start_hour)"
    " / ($workday_end_hour - $workday_start_hour)), 0.05, 1)"
)
# Share of the calendar month gone (UTC), 1 % at least.
MONTH_PACE = "clamp((day_of_month() - 1 + hour() / 24) / days_in_month(), 0.01, 1)"


# --- variables and dashboards -------------------------------------------------------------------


def _option(value: str, *, selected: bool = False) -> models.VariableOption:
    return models.VariableOption(selected=selected or None, text=value, value=value)


def _datasource_variable() -> builders.DatasourceVariable:
    return builders.DatasourceVariable("datasource").label("Prometheus").type("prometheus")


def _label_variable(name: str, label: str, series: str) -> builders.QueryVariable:
    """A multi-value variable of the values of ``name`` in ``series``, with All matching every value."""
    query = f"label_values({series}, {name})"
    return (
        builders.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(query)
        .definition(query)
        .refresh(models.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(models.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(models.VariableOption(selected=True, text=["All"], value=["$__all"]))
    )


def _window_variable(kpis: Iterable[KpiSpec], default: str) -> builders.CustomVariable:
    windows = [window for window in WINDOW_NAMES if all(window in kpi.windows for kpi in kpis)]
    if default not in windows:
        default = windows[0]
    return (
        builders.CustomVariable("window")
        .label("Window")
        .description("The KPI window: rolling (1h, 24h, 7d, 30d) or calendar (today, week, month, quarter).")
        .values(",".join(windows))
        .options([_option(window, selected=window == default) for window in windows])
        .current(_option(default, selected=True))
    )


def _textbox(name: str, label: str, default: str, description: str) -> builders.TextBoxVariable:
    return (
        builders.TextBoxVariable(name)
        .label(label)
        .description(description)
        .default_value(default)
        .current(_option(default, selected=True))
    )


def _dashboard(key: str, title: str, description: str, refresh: str, time_from: str) -> builders.Dashboard:
    return (
        builders.Dashboard(title)
        .uid(UIDS[key])
        .description(description)
        .tags([TAG, key])
        .refresh(refresh)
        .time(time_from, "now")
        .timezone("browser")
        .timepicker(builders.TimePicker().refresh_intervals(["5s", "10s", "30s", "1m", "5m", "15m"]))
        .tooltip(models.DashboardCursorSync.CROSSHAIR)
        .annotation(
            builders.AnnotationQuery()
            .name("Annotations & Alerts")
            .datasource(common.DataSourceRef(type_val="grafana", uid="-- Grafana --"))
            .enable(True)
            .hide(True)
            .icon_color("rgba(0, 211, 255, 1)")
            .type("dashboard")
            .built_in(1)
        )
        .with_variable(_datasource_variable())
        .link(
            builders.DashboardLink("kpimon dashboards")
            .type(models.DashboardLinkType.DASHBOARDS)
            .tags([TAG])
            .as_dropdown(False)
            .include_vars(True)
            .keep_time(True)
        )
    )


def _lay_out(
    dashboard: builders.Dashboard, rows: Sequence[tuple[str, int, Sequence[tuple[int, PanelBuilder]]]]
) -> None:
    """Rows of (width, panel) cells of one height; a row with a title gets a row header."""
    for title, height, cells in rows:
        if sum(width for width, _ in cells) != 24:
            raise ValueError(f"row {title!r}: widths must add up to 24")
        if title:
            dashboard.with_row(builders.Row(title))
        for width, panel in cells:
            dashboard.with_panel(_sized(panel, width, height))


def _sized(panel: PanelBuilder, width: int, height: int) -> PanelBuilder:
    built = panel.build()
    built.grid_pos = models.GridPos(h=height, w=width)
    return _Built(built)


class _Built(Builder[models.Panel]):
    def __init__(self, panel: models.Panel) -> None:
        self._panel = panel

    def build(self) -> models.Panel:
        return self._panel


def _to_dict(dashboard: builders.Dashboard) -> dict[str, Any]:
    """The dashboard as plain JSON data, panels numbered in order."""
    model = dashboard.build()
    for number, panel in enumerate(model.panels or [], start=1):
        panel.id_val = number
    data = cast(dict[str, Any], json.loads(json.dumps(model, cls=JSONEncoder)))
    # The SDK always sets placement "inControlsMenu", which Grafana 12 reads as "hide in the controls menu".
    for holder in [data, *data.get("panels", [])]:
        for link in holder.get("links", []):
            link.pop("placement", None)
    for annotation in data.get("annotations", {}).get("list", []):
        annotation.pop("placement", None)
    return data


def wallboard(catalog: Catalog, currency: str = CURRENCY) -> dict[str, Any]:
    panels = _Panels(catalog, currency)
    month, week, last_30d = Selector("month", "all"), Selector("week", "all"), Selector("30d", "all")
    reps = Selector("today", "rep", (("team", "$team"), ("rep", "$rep")))
    calls = panels.kpi("calls").metric
    dashboard = _dashboard(
        "wallboard",
        "kpimon · Sales wallboard",
        "For a TV: open with ?kiosk. Today's activity per rep against daily goals, revenue, win rate, velocity.",
        "5s",
        "now-24h",
    )
    dashboard.with_variable(_label_variable("team", "Team", f'{calls}{{scope="team"}}'))
    dashboard.with_variable(_label_variable("rep", "Rep", f'{calls}{{scope="rep", team=~"$team"}}'))
    for kpi_id, goal in DAILY_GOALS.items():
        dashboard.with_variable(
            _textbox(
                f"daily_goal_{kpi_id}",
                f"Daily goal: {panels.kpi(kpi_id).name.lower()}",
                str(goal),
                "Per rep and day. A dashboard setting until targets feed it (set per TV with &var-NAME=VALUE).",
            )
        )
    dashboard.with_variable(
        _textbox(
            "revenue_target_month",
            "Revenue target (month)",
            str(MONTHLY_REVENUE_TARGET),
            "The month's revenue target, in the reporting currency. A dashboard setting until targets feed it.",
        )
    )
    for name, default in WORKDAY.items():
        dashboard.with_variable(
            _textbox(name, name.replace("_", " ").capitalize(), default, "The office's working day, for the pace.")
        )

    revenue = panels.query("revenue", month)
    revenue_pace = (
        stat.Panel()
        .title("Revenue vs target · % of pace")
        .description(
            _description(
                "Revenue month to date as a share of the target expected by now: $revenue_target_month times the "
                f"share of the calendar month gone (UTC). Under {PACE_AMBER:.0%} red, under {PACE_GREEN:.0%} amber.",
                revenue.note,
            )
        )
        .datasource(DATASOURCE)
        .with_target(_target(f"{revenue.expr} / ($revenue_target_month * scalar({MONTH_PACE}))", "A", "pace"))
        .unit("percentunit")
        .decimals(0)
        .thresholds(_pace_thresholds(panels.kpi("revenue")))
        .reduce_options(_reduce_last())
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.NONE)
        .text_mode(common.BigValueTextMode.VALUE)
    )
    to_funnel: list[Builder[models.DashboardLink]] = [_link("Funnel", "funnel", "team", "rep")]
    pace_bars = [
        (width, panels.pace_bars(kpi_id, reps, f"{panels.kpi(kpi_id).name} today · % of pace"))
        for width, kpi_id in zip((5, 5, 5, 5, 4), DAILY_GOALS, strict=True)
    ]
    health_panels: list[PanelBuilder] = [
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .with_target(_target(expr, "A", title))
        .unit("short")
        .decimals(decimals)
        .thresholds(_neutral())
        .reduce_options(_reduce_last())
        .graph_mode(common.BigValueGraphMode.AREA)
        for title, expr, decimals, description in (
            (
                "Events / s",
                "sum without (instance, pod, job, type) (rate(kpimon_events_total[5m]))",
                1,
                "Valid events counted per second, all types: 0 means no new data reaches the wallboard. "
                "Summed over workers: exact.",
            ),
            (
                "Consumer lag",
                "sum without (instance, pod, job, topic, partition) (kpimon_faust_consumer_lag_messages)",
                0,
                "Messages not yet processed, over every source partition: the numbers lag behind by that much. "
                "Summed over workers and partitions: exact.",
            ),
        )
    ]
    _lay_out(
        dashboard,
        [
            (
                "",
                6,
                [
                    (5, panels.kpi_stat("revenue", month, "Revenue · month to date")),
                    (5, revenue_pace),
                    (5, panels.kpi_stat("win_rate", week, "Win rate · this week", links=to_funnel)),
                    (
                        5,
                        panels.kpi_stat("lead_to_opportunity", week, "Lead → opportunity · this week", links=to_funnel),
                    ),
                    (
                        4,
                        panels.kpi_stat(
                            "pipeline_velocity", last_30d, "Pipeline velocity · 30 d, per day", links=to_funnel
                        ),
                    ),
                ],
            ),
            ("", 12, pace_bars),
            (
                "",
                10,
                [
                    (
                        18,
                        panels.breakdown_table(
                            "Leaderboard · today",
                            list(DAILY_GOALS),
                            reps,
                            (("rep", "Rep"), ("team", "Team")),
                            sort=panels.kpi("calls").name,
                        ),
                    ),
                    (3, health_panels[0]),
                    (3, health_panels[1]),
                ],
            ),
        ],
    )
    return _to_dict(dashboard)


FUNNEL_STAGES = ("leads", "mqls", "sqls", "opportunities_created", "deals_won", "deals_lost")
CONVERSIONS = ("lead_to_mql", "mql_to_sql", "lead_to_opportunity", "opportunity_to_customer", "win_rate")
DEAL_ECONOMICS = ("revenue", "average_deal_size", "sales_cycle", "pipeline_velocity")
FUNNEL_COLUMNS = (*FUNNEL_STAGES, "lead_to_opportunity", "win_rate", "revenue", "average_deal_size", "sales_cycle")
MARKETING_ACTIVITY = ("content_published", "social_posts", "campaigns_launched", "email_campaign_sends")
MARKETING_LEADS = ("leads", "mqls", "lead_to_mql")


def _series_of(panels: _Panels, kpi_ids: Sequence[str], scope: ScopeKind) -> str:
    """A series selector over the metrics of ``kpi_ids`` that have ``scope``, for a label_values variable."""
    metrics = [panels.kpi(kpi_id).metric for kpi_id in kpi_ids if scope in panels.kpi(kpi_id).scopes]
    if len(metrics) == 1:
        return f'{metrics[0]}{{scope="{scope}"}}'
    return f'{{__name__=~"{"|".join(metrics)}", scope="{scope}"}}'


def funnel(catalog: Catalog, currency: str = CURRENCY) -> dict[str, Any]:
    panels = _Panels(catalog, currency)
    used = [panels.kpi(kpi_id) for kpi_id in (*FUNNEL_STAGES, *CONVERSIONS, *DEAL_ECONOMICS)]
    dashboard = _dashboard(
        "funnel",
        "kpimon · Funnel",
        "Lead -> MQL -> SQL -> opportunity -> won/lost: volumes, conversion, cycle and deal size per window.",
        "30s",
        "now-7d",
    )
    dashboard.with_variable(_window_variable(used, "month"))
    dashboard.with_variable(_label_variable("team", "Team", _series_of(panels, FUNNEL_STAGES, "team")))
    dashboard.with_variable(
        _label_variable("rep", "Rep", f'{panels.kpi("leads").metric}{{scope="rep", team=~"$team"}}')
    )
    dashboard.with_variable(_label_variable("channel", "Channel", _series_of(panels, FUNNEL_STAGES, "channel")))
    overall = Selector("$window", "all")
    stage_queries = [panels.query(kpi_id, overall) for kpi_id in FUNNEL_STAGES]
    stages = (
        bargauge.Panel()
        .title("Stage volumes · $window")
        .description(
            _description("Each stage counted in the window (a period view, not a cohort).", stage_queries[0].note)
        )
        .datasource(DATASOURCE)
        .unit(panels.unit(FUNNEL_STAGES[0]))
        .min(0)
        .color_scheme(builders.FieldColor().mode(models.FieldColorModeId.FIXED).fixed_color("blue"))
        .reduce_options(_reduce_last())
        .display_mode(common.BarGaugeDisplayMode.BASIC)
        .orientation(common.VizOrientation.HORIZONTAL)
        .name_placement(common.BarGaugeNamePlacement.LEFT)
        .links([_link("Marketing: where the leads come from", "marketing", "team", "channel")])
    )
    for index, (kpi_id, query) in enumerate(zip(FUNNEL_STAGES, stage_queries, strict=True)):
        stages = stages.with_target(_target(query.expr, _ref(index), panels.kpi(kpi_id).name, instant=True))
    team = Selector("$window", "team", (("team", "$team"),))
    channel = Selector("$window", "channel", (("channel", "$channel"),))
    rep = Selector("$window", "rep", (("team", "$team"), ("rep", "$rep")))
    _lay_out(
        dashboard,
        [
            (
                "Overall · $window",
                8,
                [
                    (10, stages),
                    (
                        14,
                        panels.multi_stat(
                            "Conversion · $window",
                            CONVERSIONS,
                            overall,
                            "Period ratios: each stage over the one before it, in the same window.",
                        ),
                    ),
                ],
            ),
            (
                "",
                5,
                [
                    (6, panels.kpi_stat("revenue", overall, "Revenue · $window")),
                    (6, panels.kpi_stat("average_deal_size", overall, "Average deal size · $window")),
                    (6, panels.kpi_stat("sales_cycle", overall, "Sales cycle (mean) · $window")),
                    (6, panels.kpi_stat("pipeline_velocity", overall, "Pipeline velocity · $window, per day")),
                ],
            ),
            (
                "By team",
                8,
                [(24, panels.breakdown_table("Funnel by team · $window", FUNNEL_COLUMNS, team, (("team", "Team"),)))],
            ),
            (
                "By channel",
                8,
                [
                    (
                        24,
                        panels.breakdown_table(
                            "Funnel by channel · $window", FUNNEL_COLUMNS, channel, (("channel", "Channel"),)
                        ),
                    )
                ],
            ),
            (
                "By rep",
                10,
                [
                    (
                        24,
                        panels.breakdown_table(
                            "Funnel by rep · $window",
                            FUNNEL_COLUMNS,
                            rep,
                            (("rep", "Rep"), ("team", "Team")),
                            sort=panels.kpi("revenue").name,
                        ),
                    )
                ],
            ),
            (
                "Over time",
                8,
                [
                    (
                        12,
                        panels.trend(
                            "Stage volumes over time · $window",
                            FUNNEL_STAGES,
                            overall,
                            "Each point is the window's value at that time.",
                        ),
                    ),
                    (
                        12,
                        panels.trend(
                            "Conversion over time · $window",
                            CONVERSIONS,
                            overall,
                            "Each point is the window's value at that time.",
                        ),
                    ),
                ],
            ),
        ],
    )
    return _to_dict(dashboard)


def marketing(catalog: Catalog, currency: str = CURRENCY) -> dict[str, Any]:
    panels = _Panels(catalog, currency)
    used = [panels.kpi(kpi_id) for kpi_id in (*MARKETING_ACTIVITY, *MARKETING_LEADS)]
    everything = (*MARKETING_ACTIVITY, *MARKETING_LEADS[:2])
    dashboard = _dashboard(
        "marketing",
        "kpimon · Marketing",
        "Marketing activity and the leads it brings, per channel and team.",
        "1m",
        "now-7d",
    )
    dashboard.with_variable(_window_variable(used, "month"))
    dashboard.with_variable(_label_variable("team", "Team", _series_of(panels, everything, "team")))
    dashboard.with_variable(_label_variable("channel", "Channel", _series_of(panels, everything, "channel")))
    overall = Selector("$window", "all")
    channel = Selector("$window", "channel", (("channel", "$channel"),))
    team = Selector("$window", "team", (("team", "$team"),))
    by_channel = [kpi_id for kpi_id in MARKETING_ACTIVITY if "channel" in panels.kpi(kpi_id).scopes]
    coming = "\n".join(f"- {name}" for name in COMING_WITH_MARKETING_KPIS)
    note = (
        text.Panel()
        .title("Coming with the marketing KPIs")
        .mode(TextMode.MARKDOWN)
        .content(
            "The worker does not export these yet. Their panels come here with the marketing KPIs, once they are "
            "in the catalog and `kpimon dashboards` has regenerated this dashboard:\n\n"
            f"{coming}\n\n"
            "Until then this dashboard shows only what `/metrics` serves today (see docs/metrics.md)."
        )
    )
    to_funnel: list[Builder[models.DashboardLink]] = [_link("Funnel", "funnel", "team", "channel")]
    _lay_out(
        dashboard,
        [
            (
                "Overall · $window",
                6,
                [
                    (
                        12,
                        panels.multi_stat(
                            "Marketing activity · $window",
                            MARKETING_ACTIVITY,
                            overall,
                            "Content pieces, social posts and campaigns, and the recipients of email campaigns.",
                        ),
                    ),
                    (
                        6,
                        panels.multi_stat(
                            "Leads · $window", MARKETING_LEADS[:2], overall, "Leads created and leads that became MQLs."
                        ),
                    ),
                    (6, panels.kpi_stat("lead_to_mql", overall, "Lead → MQL · $window", links=to_funnel)),
                ],
            ),
            (
                "By channel",
                9,
                [
                    (8, panels.comparison(kpi_id, channel, f"{panels.kpi(kpi_id).name} by channel", "{{channel}}"))
                    for kpi_id in by_channel
                ],
            ),
            (
                "",
                9,
                [
                    (
                        12,
                        panels.breakdown_table(
                            "Leads and MQLs by channel · $window",
                            MARKETING_LEADS,
                            channel,
                            (("channel", "Channel"),),
                            sort=panels.kpi("leads").name,
                        ).links(to_funnel),
                    ),
                    (
                        12,
                        panels.breakdown_table(
                            "Marketing activity by team · $window", MARKETING_ACTIVITY, team, (("team", "Team"),)
                        ),
                    ),
                ],
            ),
            ("Marketing KPIs", 6, [(24, note)]),
        ],
    )
    return _to_dict(dashboard)


def dashboards(catalog: Catalog, currency: str = CURRENCY) -> dict[str, dict[str, Any]]:
    """Every dashboard by file name; ``currency`` is the reporting currency (the Grafana unit of money)."""
    return {
        f"{UIDS['wallboard']}.json": wallboard(catalog, currency),
        f"{UIDS['funnel']}.json": funnel(catalog, currency),
        f"{UIDS['marketing']}.json": marketing(catalog, currency),
    }


def dashboard_files(catalog: Catalog, currency: str = CURRENCY) -> dict[Path, str]:
    """The checked-in files: sorted keys, 2-space indent, a final newline."""
    return {
        DASHBOARD_DIR / name: orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n"
        for name, data in dashboards(catalog, currency).items()
    }


def write_dashboards(root: Path, catalog: Catalog, *, check: bool = False, currency: str = CURRENCY) -> list[Path]:
    """Write the dashboards under ``root``; with ``check``, write nothing and return the stale files."""
    changed = []
    for path, text_ in dashboard_files(catalog, currency).items():
        target = root / path
        if check:
            if not target.exists() or target.read_text(encoding="utf-8") != text_:
                changed.append(path)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text_, encoding="utf-8")
        changed.append(path)
    return changed
