"""Links into the Grafana dashboards, for alert messages. Pure, and free of the dashboards SDK."""

from __future__ import annotations

from urllib.parse import urlencode

from schemas.catalog import KpiSpec
from schemas.scopes import Scope

UIDS = {
    "wallboard": "kpimon-wallboard",
    "funnel": "kpimon-funnel",
    "marketing": "kpimon-marketing",
    "customers": "kpimon-customers",
}


def dashboard_of(kpi: KpiSpec) -> str:
    """The dashboard that shows ``kpi``: rep activity on the wallboard, everything else on the funnel."""
    return "wallboard" if kpi.kind == "activity" else "funnel"


def grafana_link(grafana_url: str | None, kpi: KpiSpec, scope: Scope, window: str) -> str | None:
    """The dashboard of ``kpi`` filtered to ``scope``, or None without a Grafana URL."""
    if grafana_url is None:
        return None
    variables = {"var-window": window}
    for name in ("team", "rep", "channel"):
        value = getattr(scope, name)
        if value:
            variables[f"var-{name}"] = value
    return f"{grafana_url.rstrip('/')}/d/{UIDS[dashboard_of(kpi)]}?{urlencode(variables)}"
