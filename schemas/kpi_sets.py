"""KPI sets: a few KPIs watched together, by name; the built-in ``essentials``. Pure.

The guide kpimon follows says to watch 5 to 10 KPIs, leading ones (activity that moves first)
beside the lagging ones (results that come later). A set names them once; a digest names the set
instead of listing KPIs, and the board's "Essentials" screen shows the ``essentials`` set. In the
config (``deploy/examples/kpimon.yaml``)::

    kpi_sets:
      weekly-review: [calls, meetings_held, opportunities_created, win_rate, revenue]
      essentials: [...]          # replaces the built-in set of that name

The built-in ``essentials`` set is the guide's six KPIs every team should track, as catalog ids:

=========================  ===========================  =========
the guide's KPI            catalog KPI                  indicator
=========================  ===========================  =========
conversion rate            ``lead_cohort_to_customer``  lagging
customer acquisition cost  ``customer_acquisition_cost``  lagging
customer lifetime value    ``customer_lifetime_value``  lagging
average deal size          ``average_deal_size``        lagging
sales cycle length         ``sales_cycle``              lagging
retention rate             ``customer_retention_rate``  lagging
=========================  ===========================  =========

All six are lagging, so the set adds two leading KPIs that move before them: the lead to
opportunity ratio (the early sign of the conversion rate) and the pipeline velocity (the revenue
the pipeline brings per day). A KPI of a set without a team scope (the CAC: spend has no team)
has a company value only: a team's digest leaves it out, the board shows it company-wide.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from pydantic import Field

from schemas.catalog import Catalog
from schemas.catalog import Identifier as KpiId
from schemas.yaml_source import Location

KpiSetName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=80)]
MAX_SET_SIZE = 20  # the guide says 5 to 10; a set longer than a screen helps nobody
KpiSetKpis = Annotated[tuple[KpiId, ...], Field(min_length=1, max_length=MAX_SET_SIZE)]
ESSENTIALS = "essentials"
BUILT_IN_SETS: dict[str, tuple[str, ...]] = {
    ESSENTIALS: (
        "lead_cohort_to_customer",
        "customer_acquisition_cost",
        "customer_lifetime_value",
        "average_deal_size",
        "sales_cycle",
        "customer_retention_rate",
        "lead_to_opportunity",
        "pipeline_velocity",
    ),
}


def kpi_sets(configured: Mapping[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    """The built-in sets and the config's (``kpi_sets:``), a config set replacing a built-in one of its name."""
    return {**BUILT_IN_SETS, **configured}


def kpi_set_problems(configured: Mapping[str, tuple[str, ...]], catalog: Catalog) -> list[tuple[Location, str]]:
    """KPIs of the config's sets that the catalog does not define, and KPIs listed twice in a set."""
    known = {kpi.id for kpi in catalog.kpis}
    problems: list[tuple[Location, str]] = []
    for name, kpis in configured.items():
        for position, kpi_id in enumerate(kpis):
            if kpi_id not in known:
                problems.append(
                    (
                        ("kpi_sets", name, position),
                        f"unknown KPI {kpi_id!r} in KPI set {name!r}: use a catalog id (`kpimon docs`, docs/kpis.md)",
                    )
                )
            elif kpi_id in kpis[:position]:
                problems.append((("kpi_sets", name, position), f"KPI {kpi_id!r} is twice in KPI set {name!r}"))
    return problems


def unknown_set_message(name: str, configured: Mapping[str, tuple[str, ...]]) -> str:
    """Why a set name is refused, with the names there are."""
    names = ", ".join(sorted(kpi_sets(configured)))
    return f"unknown KPI set {name!r}: the sets are {names} (add one under kpi_sets in the config)"
