"""The KPI catalog: counters the stream keeps and KPIs derived from them.

Defined once in YAML (``catalog.yaml`` beside this module, optionally extended
by a user file); computation, /metrics and the generated docs all read it.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.formula import Formula, FormulaError
from schemas.yaml_source import ConfigFileError, Location, load_yaml_model

WindowName = Literal["1h", "24h", "7d", "today"]
ScopeKind = Literal["all", "team", "rep", "channel"]
WINDOW_NAMES: tuple[WindowName, ...] = ("1h", "24h", "7d", "today")
SCOPE_KINDS: tuple[ScopeKind, ...] = ("all", "team", "rep", "channel")

Identifier = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=60)]
UNIT_SUFFIXES = {"count": "", "seconds": "_seconds", "ratio": "_ratio"}


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
    unit: Literal["count", "seconds", "ratio"]
    good: Literal["up", "down"]
    windows: tuple[WindowName, ...] = WINDOW_NAMES
    scopes: tuple[ScopeKind, ...] = SCOPE_KINDS
    description: str

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


class Catalog(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    counters: dict[Identifier, CounterSpec]
    kpis: tuple[KpiSpec, ...]

    def cross_reference_problems(self) -> list[tuple[Location, str]]:
        problems: list[tuple[Location, str]] = []
        seen_ids: set[str] = set()
        seen_metrics: set[str] = set()
        for index, kpi in enumerate(self.kpis):
            if kpi.id in seen_ids:
                problems.append((("kpis", index, "id"), f"duplicate KPI id {kpi.id!r}"))
            if kpi.metric in seen_metrics:
                problems.append((("kpis", index, "id"), f"metric {kpi.metric!r} is already defined"))
            seen_ids.add(kpi.id)
            seen_metrics.add(kpi.metric)
            for name in sorted(kpi.formula.names - self.counters.keys()):
                problems.append((("kpis", index, "formula"), f"unknown counter {name!r} in formula"))
        return problems

    def extended(self, other: Catalog) -> Catalog:
        """This catalog plus another's counters and KPIs (ids must stay unique)."""
        return Catalog(counters={**self.counters, **other.counters}, kpis=self.kpis + other.kpis)


BUILTIN_CATALOG = Path(str(files("schemas").joinpath("catalog.yaml")))


def load_catalog(extra: Path | None = None) -> Catalog:
    """The built-in catalog, extended by the user's file when given."""
    catalog = load_yaml_model(BUILTIN_CATALOG, Catalog)
    if extra is None:
        return catalog
    combined = catalog.extended(load_yaml_model(extra, Catalog))
    problems = combined.cross_reference_problems()
    if problems:
        raise ConfigFileError([f"{extra}: {'.'.join(map(str, loc))}: {message}" for loc, message in problems])
    return combined
