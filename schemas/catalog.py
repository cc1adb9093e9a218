"""The KPI catalog: counters the stream keeps and KPIs derived from them.

Defined once in YAML (``catalog.yaml`` beside this module, optionally extended
by a user file); computation, /metrics and the generated docs all read it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.formula import Formula, FormulaError
from schemas.scopes import SCOPE_KINDS, ScopeKind
from schemas.yaml_source import Location, load_yaml_model

WindowName = Literal["1h", "24h", "7d", "30d", "today", "week", "month", "quarter"]
WINDOW_NAMES: tuple[WindowName, ...] = ("1h", "24h", "7d", "30d", "today", "week", "month", "quarter")
# Not a window of its own on /metrics: every retained bucket, from which every window reads its stocks
# (counters named ``stock_...``: the customers and MRR after every event, see streams/entities/accounts.py).
LIFETIME: Literal["lifetime"] = "lifetime"
SpanName = WindowName | Literal["lifetime"]
KEPT_SPANS: tuple[SpanName, ...] = (*WINDOW_NAMES, LIFETIME)
STOCK_PREFIX = "stock_"

Identifier = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=60)]
UNIT_SUFFIXES = {
    "count": "",
    "seconds": "_seconds",
    "ratio": "_ratio",
    "currency": "",
    "currency_per_day": "_per_day",
    "score": "",  # a score on its own scale (NPS -100..100, CES 1..7)
}


class CounterSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    unit: str
    source: str
    help: str


class KpiSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    id: Identifier
    name: str
    kind: Literal["activity", "efficiency", "result", "qualitative"]
    indicator: Literal["leading", "lagging"]
    metric: Annotated[str, Field(pattern=r"^kpimon_[a-z0-9_]+$")]
    formula: Formula
    unit: Literal["count", "seconds", "ratio", "currency", "currency_per_day", "score"]
    good: Literal["up", "down"]
    windows: tuple[WindowName, ...] = WINDOW_NAMES
    scopes: tuple[ScopeKind, ...] = SCOPE_KINDS
    description: str

    def adds_up_over_time(self) -> bool:
        """A count or sum of the window's events (``Formula.is_additive``) that reads no stock: it can have a goal.

        A stock (``stock_...``, the customers and MRR now) is a level, the same in every window: no sum over time.
        """
        return self.formula.is_additive() and not any(name.startswith(STOCK_PREFIX) for name in self.formula.names)

    def exported_counter(self) -> tuple[str, float] | None:
        """The counter this KPI's series gives, and the factor from the series' value to it; None if it gives none.

        A KPI whose formula is one counter exports it as is (``revenue``: factor 1); one whose formula is a counter
        over a number exports it scaled (``stock_mrr_cents / 100``: the counter is 100 x ``kpimon_mrr``). A sum of
        such series across workers is the counter's sum, so roll-ups and dashboards rebuild formulas from it.
        """
        body = self.formula.tree.body
        if isinstance(body, ast.Name):
            return body.id, 1.0
        if (
            isinstance(body, ast.BinOp)
            and isinstance(body.op, ast.Div)
            and isinstance(body.left, ast.Name)
            and isinstance(body.right, ast.Constant)
            and isinstance(body.right.value, int | float)
            and body.right.value > 0
        ):
            return body.left.id, float(body.right.value)
        return None

    @field_validator("formula", mode="before")
    @classmethod
    def _parse_formula(cls, value: object) -> Formula:
        if isinstance(value, Formula):
            return value
        if not isinstance(value, str):
            raise ValueError("formula must be a string such as 'email_replies / emails_sent'")
        try:
            return Formula.parse(value)
        except FormulaError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _metric_follows_prometheus_naming(self) -> KpiSpec:
        suffix = UNIT_SUFFIXES[self.unit]
        if suffix and not self.metric.endswith(suffix):
            raise ValueError(f"metric {self.metric!r} of a {self.unit} KPI must end with {suffix!r}")
        if self.metric.endswith("_total"):
            raise ValueError(f"metric {self.metric!r}: windowed values are gauges, drop '_total'")
        return self


def _kpi_problems(
    kpis: tuple[KpiSpec, ...], counters: Iterable[str], taken_ids: Iterable[str] = (), taken_metrics: Iterable[str] = ()
) -> list[tuple[Location, str]]:
    """Duplicate ids or metrics, and formulas over unknown counters."""
    problems: list[tuple[Location, str]] = []
    known_counters = set(counters)
    seen_ids, seen_metrics = set(taken_ids), set(taken_metrics)
    for index, kpi in enumerate(kpis):
        if kpi.id in seen_ids:
            problems.append((("kpis", index, "id"), f"duplicate KPI id {kpi.id!r}"))
        if kpi.metric in seen_metrics:
            problems.append((("kpis", index, "metric"), f"metric {kpi.metric!r} is already defined"))
        seen_ids.add(kpi.id)
        seen_metrics.add(kpi.metric)
        for name in sorted(kpi.formula.names - known_counters):
            problems.append((("kpis", index, "formula"), f"unknown counter {name!r} in formula"))
    return problems


class Catalog(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    counters: dict[Identifier, CounterSpec]
    kpis: tuple[KpiSpec, ...]

    def cross_reference_problems(self) -> list[tuple[Location, str]]:
        return _kpi_problems(self.kpis, self.counters)

    def exported_counters(self) -> dict[str, tuple[str, float]]:
        """Counter -> (the metric exporting it, the factor from the metric's value to the counter), the first KPI's.

        See ``KpiSpec.exported_counter``: the counters whose sum across workers a formula can be rebuilt from.
        """
        exported: dict[str, tuple[str, float]] = {}
        for kpi in self.kpis:
            given = kpi.exported_counter()
            if given is not None and given[0] not in exported:
                exported[given[0]] = (kpi.metric, given[1])
        return exported

    def numerator_of(self, node: ast.expr) -> tuple[KpiSpec, str] | None:
        """The first KPI whose formula is ``node / y``, ``y`` a counter a KPI exports, and ``y``; None if none is.

        ``node`` summed across workers is then that KPI's gauge times ``y``'s series, summed: each worker's gauge
        times its own ``y`` is its own ``node``. Where a worker's ``y`` is 0 its gauge has no value, so this is exact
        when ``node`` is 0 there too: the gross profit (the gross margin's numerator) is, without MRR, as only
        subscriptions with a price count their cost (streams/entities/accounts.py).
        """
        shape, exported = ast.dump(node), self.exported_counters()
        for kpi in self.kpis:
            body = kpi.formula.tree.body
            if (
                isinstance(body, ast.BinOp)
                and isinstance(body.op, ast.Div)
                and ast.dump(body.left) == shape
                and isinstance(body.right, ast.Name)
                and body.right.id in exported
            ):
                return kpi, body.right.id
        return None

    def kpi(self, kpi_id: str) -> KpiSpec:
        """The KPI with id ``kpi_id``; KeyError when the catalog has none."""
        for kpi in self.kpis:
            if kpi.id == kpi_id:
                return kpi
        raise KeyError(kpi_id)


class CatalogExtension(BaseModel):
    """A user's file adding counters and KPIs to the built-in catalog."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    counters: dict[Identifier, CounterSpec] = Field(default_factory=dict)
    kpis: tuple[KpiSpec, ...] = ()

    def problems_with(self, base: Catalog) -> list[tuple[Location, str]]:
        redefined = [
            (("counters", name), f"counter {name!r} is already defined by the built-in catalog")
            for name in self.counters
            if name in base.counters
        ]
        taken_ids = [kpi.id for kpi in base.kpis]
        taken_metrics = [kpi.metric for kpi in base.kpis]
        return redefined + _kpi_problems(self.kpis, [*base.counters, *self.counters], taken_ids, taken_metrics)

    def merged_into(self, base: Catalog) -> Catalog:
        return Catalog(counters={**base.counters, **self.counters}, kpis=base.kpis + self.kpis)


BUILTIN_CATALOG = Path(str(files("schemas").joinpath("catalog.yaml")))


def load_catalog(extra: Path | None = None) -> Catalog:
    """The built-in catalog, extended by the user's file when given."""
    catalog = load_yaml_model(BUILTIN_CATALOG, Catalog, cross_check=Catalog.cross_reference_problems)
    if extra is None:
        return catalog
    extension = load_yaml_model(extra, CatalogExtension, cross_check=lambda ext: ext.problems_with(catalog))
    return extension.merged_into(catalog)
