"""Dashboard variables: the data source, label filters, the KPI window, text boxes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from schemas.catalog import WINDOW_NAMES, KpiSpec
from schemas.scopes import ScopeKind
from streams.tools.dashboards._sdk import builders, models
from streams.tools.dashboards.kpi_panels import KpiPanels
from streams.tools.dashboards.panels import DATASOURCE


def variable_option(value: str, *, selected: bool = False) -> models.VariableOption:
    return models.VariableOption(selected=selected or None, text=value, value=value)


def datasource_variable() -> builders.DatasourceVariable:
    return builders.DatasourceVariable("datasource").label("Prometheus").type("prometheus")


def label_variable(name: str, label: str, series: str) -> builders.QueryVariable:
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


def window_variable(kpis: Iterable[KpiSpec], default: str) -> builders.CustomVariable:
    windows = [window for window in WINDOW_NAMES if all(window in kpi.windows for kpi in kpis)]
    if default not in windows:
        default = windows[0]
    return (
        builders.CustomVariable("window")
        .label("Window")
        .description("The KPI window: rolling (1h, 24h, 7d, 30d) or calendar (today, week, month, quarter).")
        .values(",".join(windows))
        .options([variable_option(window, selected=window == default) for window in windows])
        .current(variable_option(default, selected=True))
    )


def series_of(panels: KpiPanels, kpi_ids: Sequence[str], scope: ScopeKind) -> str:
    """A series selector over the metrics of ``kpi_ids`` that have ``scope``, for a label_values variable."""
    metrics = [panels.kpi(kpi_id).metric for kpi_id in kpi_ids if scope in panels.kpi(kpi_id).scopes]
    if len(metrics) == 1:
        return f'{metrics[0]}{{scope="{scope}"}}'
    return f'{{__name__=~"{"|".join(metrics)}", scope="{scope}"}}'
