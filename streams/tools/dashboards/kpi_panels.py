"""Panel factories for the KPIs of the catalog: stats, bars, tables and trends."""

from __future__ import annotations

import ast
from collections.abc import Sequence

from schemas.catalog import Catalog, KpiSpec
from streams.tools.dashboards._sdk import (
    Builder,
    bargauge,
    builders,
    common,
    models,
    stat,
    table,
    timeseries,
)
from streams.tools.dashboards.panels import (
    DATASOURCE,
    PACE_AMBER,
    PACE_GREEN,
    TableColumn,
    describe,
    gradient,
    grafana_unit,
    merged_table,
    neutral_thresholds,
    pace_thresholds,
    panel_target,
    reduce_last,
    ref_letter,
)
from streams.tools.dashboards.queries import KpiQuery, Selector, goal_expected_query, kpi_query


class KpiPanels:
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
            .description(describe(kpi.description, query.note))
            .datasource(DATASOURCE)
            .with_target(panel_target(query.expr, "A", kpi.name))
            .unit(self.unit(kpi_id))
            .thresholds(neutral_thresholds())
            .reduce_options(reduce_last())
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
            .description(describe(description, *notes))
            .datasource(DATASOURCE)
            .unit(self.one_unit(title, kpi_ids))
            .thresholds(neutral_thresholds())
            .reduce_options(reduce_last())
            .color_mode(common.BigValueColorMode.VALUE)
            .graph_mode(common.BigValueGraphMode.AREA)
            .text_mode(common.BigValueTextMode.VALUE_AND_NAME)
            .orientation(common.VizOrientation.HORIZONTAL)
        )
        for index, (kpi_id, query) in enumerate(zip(kpi_ids, queries, strict=True)):
            panel = panel.with_target(panel_target(query.expr, ref_letter(index), self.kpi(kpi_id).name))
        if self.kpi(kpi_ids[0]).unit == "ratio":
            panel = panel.decimals(1)
        return panel

    def comparison(self, kpi_id: str, selector: Selector, title: str, legend: str) -> bargauge.Panel:
        """One KPI across teams, reps or channels, as bars coloured from worst (red) to best (green)."""
        kpi, query = self.kpi(kpi_id), self.query(kpi_id, selector)
        return (
            bargauge.Panel()
            .title(title)
            .description(describe(kpi.description, query.note))
            .datasource(DATASOURCE)
            .with_target(panel_target(query.expr, "A", legend, instant=True))
            .unit(self.unit(kpi_id))
            .min(0)
            .color_scheme(builders.FieldColor().mode(gradient(kpi.good)))
            .reduce_options(reduce_last())
            .display_mode(common.BarGaugeDisplayMode.GRADIENT)
            .orientation(common.VizOrientation.HORIZONTAL)
            .name_placement(common.BarGaugeNamePlacement.LEFT)
            .show_unfilled(True)
        )

    def pace_bars(self, kpi_id: str, selector: Selector, title: str) -> bargauge.Panel:
        """Today's count per rep as a share of the pace to the rep's daily goal of the config, red / amber / green."""
        kpi, query = self.kpi(kpi_id), self.query(kpi_id, selector)
        if not query.exact:
            raise ValueError(f"{kpi_id}: pace bars need an exact count")
        expr = f"{query.expr} / ({goal_expected_query(kpi_id, 'day', selector)} > 0)"
        return (
            bargauge.Panel()
            .title(title)
            .description(
                describe(
                    f"{kpi.name} today per rep, as a share of the value expected by now on the pace to the rep's "
                    "daily goal (the config's goals: kpimon_goal_expected, the target times the share of the "
                    "working time gone, in the team's time zone). 100% is on pace; "
                    f"under {PACE_AMBER:.0%} red, under {PACE_GREEN:.0%} amber. No bar: no daily goal on "
                    f"{kpi.name.lower()} for the rep, or the working day has not started. The goal is the same on "
                    "every worker (max, exact).",
                    query.note,
                )
            )
            .datasource(DATASOURCE)
            .with_target(panel_target(expr, "A", "{{rep}}", instant=True))
            .unit("percentunit")
            .decimals(0)
            .min(0)
            .max(1.5)
            .thresholds(pace_thresholds(kpi))
            .reduce_options(reduce_last())
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
        columns = [
            TableColumn(
                query.expr, self.kpi(kpi_id).name, self.unit(kpi_id), 1 if self.kpi(kpi_id).unit == "ratio" else None
            )
            for kpi_id, query in zip(kpi_ids, queries, strict=True)
        ]
        return merged_table(title, describe(*sorted({query.note for query in queries})), keys, columns, sort=sort)

    def trend(self, title: str, kpi_ids: Sequence[str], selector: Selector, description: str) -> timeseries.Panel:
        queries = [self.query(kpi_id, selector) for kpi_id in kpi_ids]
        panel = (
            timeseries.Panel()
            .title(title)
            .description(describe(description, *sorted({q.note for q in queries})))
            .datasource(DATASOURCE)
            .unit(self.one_unit(title, kpi_ids))
            .min(0)
        )
        for index, (kpi_id, query) in enumerate(zip(kpi_ids, queries, strict=True)):
            panel = panel.with_target(panel_target(query.expr, ref_letter(index), self.kpi(kpi_id).name))
        return panel.decimals(1) if self.kpi(kpi_ids[0]).unit == "ratio" else panel
