"""The dashboard shell (uid, tags, links, annotations), its grid of panels, and its JSON."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, cast

from schemas.catalog import KpiSpec
from streams.readout.links import UIDS
from streams.tools.dashboards._sdk import Builder, JSONEncoder, builders, common, models
from streams.tools.dashboards.panels import PanelBuilder
from streams.tools.dashboards.variables import datasource_variable, window_variable

TAG = "kpimon"


def dashboard_link(title: str, dashboard: str, *variables: str) -> builders.DashboardLink:
    query = "&".join(["${__url_time_range}", *(f"${{{name}:queryparam}}" for name in variables)])
    return builders.DashboardLink(title).type(models.DashboardLinkType.LINK).url(f"/d/{UIDS[dashboard]}?{query}")


def dashboard_shell(key: str, title: str, description: str, refresh: str, time_from: str) -> builders.Dashboard:
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
        .with_variable(datasource_variable())
        .link(
            builders.DashboardLink("kpimon dashboards")
            .type(models.DashboardLinkType.DASHBOARDS)
            .tags([TAG])
            .as_dropdown(False)
            .include_vars(True)
            .keep_time(True)
        )
    )


def windowed_dashboard(
    key: str, title: str, description: str, refresh: str, kpis: Iterable[KpiSpec]
) -> builders.Dashboard:
    """A dashboard over the last 7 days, with a ``window`` variable (month by default) valid for every KPI shown."""
    dashboard = dashboard_shell(key, title, description, refresh, "now-7d")
    dashboard.with_variable(window_variable(kpis, "month"))
    return dashboard


def lay_out(dashboard: builders.Dashboard, rows: Sequence[tuple[str, int, Sequence[tuple[int, PanelBuilder]]]]) -> None:
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


def to_dict(dashboard: builders.Dashboard) -> dict[str, Any]:
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
