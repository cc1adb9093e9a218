"""The Essentials screen: the KPIs of the ``essentials`` set, company-wide and per team. Pure.

Each KPI is read in its window (the last 30 days where the catalog keeps it, else its first
window) and rebuilt from its counters summed across workers, then its catalog formula: exact
whatever the number of workers (``KpiSpec.exported_counter``: a KPI's series gives its counter,
scaled back where the formula divides it by a number). A KPI whose formula reads a counter no
series gives (the customer lifetime value's configured margin, the cohort conversion) is shown
from its own gauge only where a single worker serves the scope, which then has the whole value;
where several do, no worker has it, and the cell says so instead of showing a wrong number. Every row
is marked leading or lagging (the catalog's ``indicator``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from schemas.catalog import Catalog, KpiSpec
from schemas.config import KpimonConfig
from schemas.kpi_sets import ESSENTIALS
from streams.board import formatting

ESSENTIALS_WINDOW = "30d"
INDICATOR_MARKS = {"leading": "▲ leading", "lagging": "● lagging"}
Results = Mapping[str, Sequence[tuple[Mapping[str, str], float]]]


@dataclass(frozen=True)
class EssentialKpi:
    """A KPI of the set, its window, and its counters' series (counter -> metric and factor); None: no sum rebuilds it.

    The factor turns the series' value into the counter (``kpimon_mrr`` is ``stock_mrr_cents / 100``: factor 100).
    """

    spec: KpiSpec
    window: str
    series: Mapping[str, tuple[str, float]] | None


def essential_kpis(config: KpimonConfig, catalog: Catalog) -> tuple[EssentialKpi, ...]:
    """The ``essentials`` set of the config (or the built-in one), as the catalog defines its KPIs."""
    exported = catalog.exported_counters()
    known = {kpi.id: kpi for kpi in catalog.kpis}
    kpis = []
    for kpi_id in config.all_kpi_sets()[ESSENTIALS]:
        spec = known.get(kpi_id)
        if spec is None:  # a set naming a KPI of a catalog extension the board was not given
            continue
        window = ESSENTIALS_WINDOW if ESSENTIALS_WINDOW in spec.windows else spec.windows[0]
        names = spec.formula.names
        series = {name: exported[name] for name in names} if all(name in exported for name in names) else None
        kpis.append(EssentialKpi(spec, window, series))
    return tuple(kpis)


def _short(metric: str) -> str:
    """A metric as ``split_samples`` keys it: without ``kpimon_``."""
    return metric.removeprefix("kpimon_")


def _sample(results: Results, key: str, team: str | None) -> float | None:
    for labels, value in results.get(key) or ():
        if team is None or labels.get("team") == team:
            return value
    return None


def _cell(kpi: EssentialKpi, results: Results, scope: str, team: str | None) -> tuple[float | None, str]:
    """The KPI's value in ``scope`` (``all``, or ``team`` with ``team``) and a note when it has none."""
    if scope not in kpi.spec.scopes:
        return None, f"not kept per {scope}"
    prefix = f"{kpi.window}:{scope}"
    if kpi.series is not None:
        found = {
            name: (_sample(results, f"essentials:{prefix}:{_short(metric)}", team), factor)
            for name, (metric, factor) in kpi.series.items()
        }
        if all(value is None for value, _ in found.values()):
            return None, "no data"
        counters = {name: (value or 0.0) * factor for name, (value, factor) in found.items()}
        return kpi.spec.formula.evaluate(counters), ""
    gauge = _short(kpi.spec.metric)
    workers = _sample(results, f"essentials_workers:{prefix}:{gauge}", team)
    if workers is None:
        return None, "no data"
    if workers > 1:
        return None, f"over {workers:.0f} workers"
    return _sample(results, f"essentials:{prefix}:{gauge}", team), ""


def value_text(value: float | None, unit: str, currency: str) -> str:
    """A value as the board shows it: rates in %, money with its sign, durations in days."""
    if value is None or not math.isfinite(value):
        return formatting.NO_VALUE
    if unit == "ratio":
        return formatting.percent(value)
    if unit == "currency":
        return formatting.money(value, currency)
    if unit == "currency_per_day":
        return f"{formatting.money(value, currency)}/day"
    if unit == "seconds":
        return f"{value / 86400:.1f} days"
    return formatting.count(value)


def essentials_tile(
    essentials: Sequence[EssentialKpi],
    results: Results,
    teams: Sequence[tuple[str, str]],
    currency: str,
    board_title: str,
) -> dict[str, Any]:
    """The set as a table: a row per KPI, a column for the company and one per team of ``teams`` (id, name)."""
    columns = [("all", None, "Company"), *(("team", team, name) for team, name in teams)]
    rows = []
    for kpi in essentials:
        cells = []
        for scope, team, _ in columns:
            value, note = _cell(kpi, results, scope, team)
            text = value_text(value, kpi.spec.unit, currency)
            cells.append({"key": f"{kpi.spec.id}:{team or 'all'}", "value": value, "text": text, "note": note})
        rows.append(
            {
                "kpi": kpi.spec.id,
                "name": kpi.spec.name,
                "indicator": kpi.spec.indicator,
                "mark": INDICATOR_MARKS[kpi.spec.indicator],
                "window": kpi.window,
                "cells": cells,
            }
        )
    return {
        "id": "essentials",
        "kind": "kpiset",
        "title": f"Essentials, {board_title}",
        "window": "each row in its window (30d: the last 30 days); every value over all workers",
        "columns": [{"key": team or "all", "label": label} for _, team, label in columns],
        "rows": rows,
    }
