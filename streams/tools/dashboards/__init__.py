"""Grafana dashboards as code, generated from the KPI catalog.

``kpimon dashboards`` writes ``deploy/grafana/dashboards/*.json``; a unit test fails
when the checked-in files are stale (the same pattern as ``kpimon docs``). Four
dashboards, linked to each other (a dashboard link by tag, and panel links):

* **Sales wallboard** (``kpimon-wallboard``) for a TV in kiosk mode (``?kiosk``), 5 s
  refresh: today's activity per rep as % of pace to the rep's daily goal, a leaderboard,
  the teams' revenue month to date against the pace to their monthly goals (goals from the
  config, through the workers' ``kpimon_goal_expected``), win rate and lead -> opportunity for
  the week, pipeline velocity over 30 days, and whether the numbers are live.
* **Funnel** (``kpimon-funnel``): stage volumes, conversion ratios, sales cycle,
  average deal size, revenue and velocity for a chosen window, by team, channel and rep; every
  goal of the config with its attainment, pace and period-end projections (run rate, weighted
  pipeline), and the open pipeline per CRM stage weighted by the stage's win rate.
* **Marketing** (``kpimon-marketing``): the marketing activity the worker exports
  today, and a text panel naming the panels that come with the marketing KPIs.
* **Customers** (``kpimon-customers``): active customers, MRR and its movements, ARR,
  retention and churn, revenue retention, unit economics and survey scores, by team and channel.

Design choices:

* The panels are built with grafana-foundation-sdk (Grafana's own typed builders, generated
  from Grafana's schemas), so this package only decides *what* is shown. It emits the classic
  dashboard model (schema version 42), which Grafana 11 and 12 import as is; the v2 schema
  still needs feature toggles. Every panel uses the ``datasource`` variable: no data source
  uid is baked in. The package is pure: ``dashboards`` returns dicts, ``dashboard_files``
  their text (sorted keys, 2-space indent); only ``write_dashboards`` touches the disk.
* **Aggregation across workers** (``queries``): every query sums the workers' series, and a
  ratio is rebuilt from summed counts, never summed nor averaged.
* **Units and colours from the catalog** (``panels``): the catalog unit gives the Grafana
  unit; ``good: up/down`` gives the colour order.
* **Goals come from the config** (``wallboard``, ``goals``): the workers serve them (``kpimon_goal``,
  ``kpimon_goal_expected``) and Prometheus records their attainment and projections; no dashboard
  variable holds a goal, and a goal added to the config shows without regenerating anything.
* Headline stats are for the whole organisation (``scope="all"``, which also counts
  events without a team); ``$team``, ``$rep`` and ``$channel`` filter the breakdowns.
* Only metrics a worker exports are queried (``docs/metrics.md``); the integration test
  runs every panel's query against a real Prometheus scraping a real worker.

Modules: ``queries`` (PromQL from the catalog), ``panels`` (shared panel conventions),
``kpi_panels`` (panel factories), ``goals`` (goals and forecast tables), ``variables``, ``layout``
(dashboard shell, grid, JSON), and one module a dashboard: ``wallboard``, ``funnel``, ``marketing``,
``customers``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from schemas.catalog import Catalog
from streams.readout.links import UIDS
from streams.tools.dashboards.customers import customers
from streams.tools.dashboards.funnel import funnel
from streams.tools.dashboards.marketing import marketing
from streams.tools.dashboards.panels import CURRENCY, GRAFANA_UNITS, threshold_steps
from streams.tools.dashboards.queries import AGGREGATE, Selector, counter_series, kpi_query
from streams.tools.dashboards.wallboard import ACTIVITY_KPIS, wallboard

__all__ = [
    "ACTIVITY_KPIS",
    "AGGREGATE",
    "CURRENCY",
    "DASHBOARD_DIR",
    "GRAFANA_UNITS",
    "UIDS",
    "Selector",
    "counter_series",
    "dashboard_files",
    "dashboards",
    "kpi_query",
    "threshold_steps",
    "write_dashboards",
]

DASHBOARD_DIR = Path("deploy/grafana/dashboards")


def dashboards(catalog: Catalog, currency: str = CURRENCY) -> dict[str, dict[str, Any]]:
    """Every dashboard by file name; ``currency`` is the reporting currency (the Grafana unit of money)."""
    return {
        f"{UIDS['wallboard']}.json": wallboard(catalog, currency),
        f"{UIDS['funnel']}.json": funnel(catalog, currency),
        f"{UIDS['marketing']}.json": marketing(catalog, currency),
        f"{UIDS['customers']}.json": customers(catalog, currency),
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
