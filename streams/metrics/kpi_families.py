"""The KPI families of /metrics: their names, help, labels, and their samples for one scope.

One definition serves both renderings of the same values: ``KpiCollector`` (prometheus-client
families, computed from the tables in one go) and ``KpiExposition`` (text cached per family and
scope, re-rendered where the totals changed). A family's samples for a scope depend only on that
scope's window totals (or its open deals, or Redis for unique visitors), and ``inputs`` and
``prefix`` name the counters they read, so a change of other counters leaves them as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from schemas.catalog import WINDOW_NAMES, Catalog, KpiSpec, WindowName
from schemas.scopes import SCOPE_KINDS, Scope, ScopeKind
from streams.entities.deals_leads import (
    CYCLE_SAMPLE_PREFIX,
    LOST_REASON_PREFIX,
    LOST_STAGE_PREFIX,
    UNKNOWN_STAGE,
    WON_STAGE_PREFIX,
)
from streams.readout.formula_code import Compiled, compiled
from streams.readout.kpis import cycle_quantiles
from streams.readout.open_pipeline import OpenPipeline

KPI_LABELS = ("window", "scope", "team", "rep", "channel", "campaign")
OPEN_LABELS = ("scope", "team", "rep", "channel", "campaign")
PER_WORKER = "Exact for the partitions of this worker; not additive across workers."
FUNNEL_DETAILS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "kpimon_sales_cycle_p50_seconds",
        f"Median sales cycle of the deals won in the window. {PER_WORKER}",
        KPI_LABELS,
    ),
    (
        "kpimon_sales_cycle_p90_seconds",
        f"90th percentile of the sales cycle of the deals won in the window. {PER_WORKER}",
        KPI_LABELS,
    ),
    ("kpimon_deals_lost_by_reason", "Deals lost in the window, per loss reason.", (*KPI_LABELS, "reason")),
    (
        "kpimon_deals_won_by_stage",
        f"Deals won in the window, per CRM stage they were won from (their last stage change before the win; "
        f"{UNKNOWN_STAGE}: none). Their sum is kpimon_deals_won.",
        (*KPI_LABELS, "stage"),
    ),
    (
        "kpimon_deals_lost_by_stage",
        f"Deals lost in the window, per CRM stage they were lost from ({UNKNOWN_STAGE}: no stage change before "
        f"the loss). Their sum is kpimon_deals_lost.",
        (*KPI_LABELS, "stage"),
    ),
    ("kpimon_open_deals", "Deals created and not (or no longer) won or lost.", OPEN_LABELS),
    (
        "kpimon_open_pipeline_value",
        "Value of the open deals (their opportunity amount), in the reporting currency.",
        OPEN_LABELS,
    ),
    (
        "kpimon_open_deals_by_stage",
        f"Open deals, per CRM stage they are in now (their latest stage change; {UNKNOWN_STAGE}: none yet).",
        (*OPEN_LABELS, "stage"),
    ),
    (
        "kpimon_open_pipeline_value_by_stage",
        "Value of the open deals, per CRM stage they are in now, in the reporting currency.",
        (*OPEN_LABELS, "stage"),
    ),
)
# The open families, by name: whether each gives the deals' count (else their value), and whether per stage.
OPEN_FAMILIES = {
    "kpimon_open_deals": (True, False),
    "kpimon_open_pipeline_value": (False, False),
    "kpimon_open_deals_by_stage": (True, True),
    "kpimon_open_pipeline_value_by_stage": (False, True),
}
UNIQUE_VISITORS = (
    "kpimon_web_unique_visitors",
    "Distinct visitors of the website sessions in the window, bots excluded: approximate (Redis HyperLogLog, "
    "standard error 0.81%), merged across workers, so every worker serves the same value (max, never sum, "
    "across workers). Absent while Redis is unreachable.",
)
SORTED_WINDOWS: tuple[WindowName, ...] = tuple(sorted(WINDOW_NAMES))  # the funnel details' order, as before

Source = Literal["windows", "open", "visitors"]
Sample = tuple[WindowName | None, tuple[str, ...], float]  # window (None: no window label), extra labels, value
WindowView = Callable[[WindowName], Mapping[str, float]]  # a scope's counter sums in a window


@dataclass(frozen=True)
class Family:
    """One gauge family of KPI values; ``labels`` in the order ``label_values`` gives them."""

    name: str
    help: str
    labels: tuple[str, ...]
    source: Source
    kinds: frozenset[ScopeKind] = frozenset(SCOPE_KINDS)
    kpi: KpiSpec | None = None
    quantile: str = ""  # a key of ``kpis.cycle_quantiles``
    inputs: frozenset[str] = frozenset()  # the counters its samples read
    prefix: str = ""  # and every counter named with this prefix
    formula: Compiled | None = field(default=None, compare=False)  # the KPI's formula, compiled

    def reads(self, counter: str) -> bool:
        return counter in self.inputs or bool(self.prefix and counter.startswith(self.prefix))


def kpi_families(catalog: Catalog) -> tuple[Family, ...]:
    """Every KPI family in the order /metrics serves them: the catalog's, the funnel details, unique visitors."""
    kpis = tuple(
        Family(
            kpi.metric,
            f"{kpi.name}: {kpi.description}",
            KPI_LABELS,
            "windows",
            kinds=frozenset(kpi.scopes),
            kpi=kpi,
            inputs=kpi.formula.names,
            formula=compiled(kpi.formula),
        )
        for kpi in catalog.kpis
    )
    # The funnel details from window totals: the counters they read (by prefix), and the quantile they give.
    reads = {
        "kpimon_sales_cycle_p50_seconds": (CYCLE_SAMPLE_PREFIX, "sales_cycle_p50_seconds"),
        "kpimon_sales_cycle_p90_seconds": (CYCLE_SAMPLE_PREFIX, "sales_cycle_p90_seconds"),
        "kpimon_deals_lost_by_reason": (LOST_REASON_PREFIX, ""),
        "kpimon_deals_won_by_stage": (WON_STAGE_PREFIX, ""),
        "kpimon_deals_lost_by_stage": (LOST_STAGE_PREFIX, ""),
    }
    details = tuple(
        Family(name, help_text, labels, "open")
        if name in OPEN_FAMILIES
        else Family(name, help_text, labels, "windows", prefix=reads[name][0], quantile=reads[name][1])
        for name, help_text, labels in FUNNEL_DETAILS
    )
    return (*kpis, *details, Family(*UNIQUE_VISITORS, KPI_LABELS, "visitors"))


def window_samples(family: Family, view: WindowView) -> list[Sample]:
    """The samples of a family computed from window totals, for the scope ``view`` reads."""
    if family.kpi is not None and family.formula is not None:
        formula = family.formula
        return [(window, (), value) for window in family.kpi.windows if (value := formula(view(window))) is not None]
    samples: list[Sample] = []
    for window in SORTED_WINDOWS:
        counters = _prefixed(view(window), family.prefix)
        if family.quantile:
            value = cycle_quantiles(counters).get(family.quantile)
            if value is not None:
                samples.append((window, (), value))
        else:
            for name, count in sorted(counters.items()):
                if count:
                    samples.append((window, (name.removeprefix(family.prefix),), count))
    return samples


def _prefixed(counters: Mapping[str, float], prefix: str) -> dict[str, float]:
    """The counters named with ``prefix`` (a window holds one per deal won: only those are read)."""
    return {name: counters[name] for name in counters if name.startswith(prefix)}


def open_samples(family: Family, pipeline: OpenPipeline, scope: Scope) -> list[tuple[tuple[str, ...], float]]:
    """The samples of an ``open`` family for ``scope``: (extra label values, value); none where nothing is open."""
    count, by_stage = OPEN_FAMILIES[family.name]
    deals = pipeline.open_deals(scope)
    if deals is None:
        return []
    if not by_stage:
        return [((), deals[0] if count else deals[1])]
    stages = pipeline.open_deals_by_stage(scope)
    return [((stage,), found[0] if count else found[1]) for stage, found in sorted(stages.items())]


def label_values(window: WindowName | None, scope_labels: tuple[str, ...], extra: tuple[str, ...]) -> list[str]:
    """A sample's label values in its family's ``labels`` order."""
    return [*((window,) if window else ()), *scope_labels, *extra]
