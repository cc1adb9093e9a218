"""Shared panel conventions: the data source, units, colours, queries and descriptions.

**Units and colours from the catalog.** The catalog unit gives the Grafana unit
(``GRAFANA_UNITS``); ``good: up/down`` gives the colour order: red -> amber -> green
thresholds upwards when up is good (reversed when down is good), the gradient of
bar gauges comparing teams, reps or channels, and the colour of a stat's change.
Every panel uses the ``datasource`` variable: no data source uid is baked in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from schemas.catalog import KpiSpec
from schemas.config import KpimonConfig
from streams.tools.dashboards._sdk import (
    Builder,
    PromQueryFormat,
    builders,
    common,
    common_builders,
    models,
    prometheus,
    table,
)

CURRENCY = KpimonConfig().reporting_currency  # the default reporting currency: Grafana's money unit
DATASOURCE = common.DataSourceRef(type_val="prometheus", uid="${datasource}")
GRAFANA_UNITS: Mapping[str, str] = {
    "count": "short",
    "seconds": "s",
    "ratio": "percentunit",
    "currency": "currency{currency}",
    "currency_per_day": "currency{currency}",  # Grafana has no money-per-day unit: titles say "per day"
    "score": "none",
}
PACE_AMBER, PACE_GREEN = 0.8, 1.0

PanelBuilder = Builder[models.Panel]


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


def neutral_thresholds() -> builders.ThresholdsConfig:
    return builders.ThresholdsConfig().mode(models.ThresholdsMode.ABSOLUTE).steps([models.Threshold(None, "blue")])


def pace_thresholds(kpi: KpiSpec) -> builders.ThresholdsConfig:
    steps = threshold_steps(kpi.good, PACE_AMBER, PACE_GREEN)
    return builders.ThresholdsConfig().mode(models.ThresholdsMode.ABSOLUTE).steps(steps)


def panel_target(
    expr: str, ref_id: str, legend: str = "", *, instant: bool = False, table: bool = False
) -> prometheus.Dataquery:
    """A query over the time range (stats' sparklines), or an instant one (bars, tables: the value now)."""
    query = prometheus.Dataquery().expr(expr).ref_id(ref_id).datasource(DATASOURCE)
    if legend:
        query = query.legend_format(legend)
    query = query.instant() if instant else query.range()
    return query.format(PromQueryFormat.TABLE) if table else query


def reduce_last() -> common_builders.ReduceDataOptions:
    return common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False)


def describe(*parts: str) -> str:
    return " ".join(part for part in parts if part)


def ref_letter(index: int) -> str:
    return chr(ord("A") + index)


@dataclass(frozen=True)
class TableColumn:
    """A value column of a table: its query (instant, one row per label set), its name, unit and decimals."""

    expr: str
    name: str
    unit: str
    decimals: int | None = None


def merged_table(
    title: str,
    description: str,
    keys: Sequence[tuple[str, str]],
    columns: Sequence[TableColumn],
    *,
    sort: str = "",
) -> table.Panel:
    """One row per label set of ``keys`` (label -> column name), one column per query, merged by Grafana."""
    refs = [ref_letter(index) for index in range(len(columns))]
    rename = {**dict(keys), **{f"Value #{ref}": column.name for ref, column in zip(refs, columns, strict=True)}}
    order = {name: index for index, name in enumerate(rename)}
    panel = (
        table.Panel()
        .title(title)
        .description(description)
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
    for ref, column in zip(refs, columns, strict=True):
        panel = panel.with_target(panel_target(column.expr, ref, instant=True, table=True))
        unit = [models.DynamicConfigValue(id_val="unit", value=column.unit)]
        if column.decimals is not None:
            unit.append(models.DynamicConfigValue(id_val="decimals", value=column.decimals))
        panel = panel.override_by_name(column.name, unit)
    if sort:
        panel = panel.sort_by([common_builders.TableSortByFieldState().display_name(sort).desc(True)])
    return panel
