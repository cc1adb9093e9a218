"""The config file: teams, their time zones and their reps; the reporting currency and its rates.

Example (``deploy/examples/kpimon.yaml``)::

    timezone: Europe/Berlin        # for the overall, channel and campaign scopes
    teams:
      emea: {timezone: Europe/Berlin}
      amer: {timezone: America/New_York}
    reps:
      alice: {team: emea}
    reporting_currency: EUR        # every money KPI is reported in it
    currency_rates:                # EUR per 1 unit of each currency
      USD: 0.92
      GBP: 1.17
    gross_margin: 0.8              # of subscriptions whose events carry no cost (CLV)
    goals:                         # targets per KPI, scope and period: schemas/goals.py
      - {name: rep-daily-calls, kpi: calls, scope: rep, period: day, target: 20}

Money in a currency that is neither the reporting currency (rate 1) nor listed
under ``currency_rates`` has no rate: the worker rejects such events
(``unknown_currency``) rather than count them at a made-up rate.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from schemas.catalog import Catalog
from schemas.events import Currency, Label
from schemas.goals import Goal, goal_problems
from schemas.kpi_sets import KpiSetKpis, KpiSetName, kpi_set_problems, kpi_sets
from schemas.scopes import OVERALL, Scope
from schemas.yaml_source import Location, load_yaml_model


def _known_time_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone {name!r} (use an IANA name such as 'Europe/Berlin')") from None
    return name


TimeZoneName = Annotated[str, AfterValidator(_known_time_zone)]
PositiveDecimal = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]


class TeamConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: TimeZoneName = "UTC"
    name: str | None = None


class RepConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    team: Label
    name: str | None = None


UnknownLabelPolicy = Literal["admit", "fold", "deadletter"]
MAX_LABEL_LENGTH = 100  # characters of any label value (longer: folded into ``other``)


class LabelRule(BaseModel):
    """What becomes of one dimension's label values (see ``streams.core.labels``).

    ``known`` values are always labels (reps and teams: those of the config's ``reps`` and
    ``teams``). Any other value follows ``unknown``: ``admit`` the first ``max_unknown`` seen
    in each partition and fold the rest into ``other``; ``fold`` them all into ``other``;
    ``deadletter`` the event (reason ``unknown_<dimension>``; reps and teams only).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    known: tuple[Label, ...] = ()
    unknown: UnknownLabelPolicy = "admit"
    max_unknown: int = Field(100, ge=0, le=100_000)


class LabelsConfig(BaseModel):
    """Bounds on the label values of /metrics: per dimension, the known values and what happens to others."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    teams: LabelRule = LabelRule(max_unknown=20)
    reps: LabelRule = LabelRule(max_unknown=200)
    channels: LabelRule = LabelRule(max_unknown=50)
    campaigns: LabelRule = LabelRule(max_unknown=200)
    lost_reasons: LabelRule = LabelRule(max_unknown=30)
    stages: LabelRule = LabelRule(max_unknown=20)  # the CRM's deal stages (``opportunity.stage_changed`` to_stage)


class KpimonConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: TimeZoneName = "UTC"
    teams: dict[Label, TeamConfig] = Field(default_factory=dict)
    reps: dict[Label, RepConfig] = Field(default_factory=dict)
    reporting_currency: Currency = "USD"
    # units of the reporting currency per 1 unit of each currency (the reporting currency itself is always 1)
    currency_rates: dict[Currency, PositiveDecimal] = Field(default_factory=dict)
    # the share of a subscription's revenue left after the cost of serving it, where its events give no cost
    # (the gross margin of CLV); the default 1 counts such revenue whole
    gross_margin: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = 1.0
    labels: LabelsConfig = LabelsConfig()
    goals: tuple[Goal, ...] = ()
    kpi_sets: dict[KpiSetName, KpiSetKpis] = Field(default_factory=dict)  # with the built-in ones: ``all_kpi_sets``

    def all_kpi_sets(self) -> dict[str, tuple[str, ...]]:
        """The named KPI sets: the built-in ``essentials`` and the config's (``schemas.kpi_sets``)."""
        return kpi_sets(self.kpi_sets)

    def constants(self) -> dict[str, float]:
        """The config's values formulas read beside the counters (catalog counters with source ``config``)."""
        return {"configured_gross_margin": self.gross_margin}

    def cross_reference_problems(self) -> list[tuple[Location, str]]:
        """References between sections that field validation cannot see."""
        known = ", ".join(sorted(self.teams)) or "none defined"
        problems: list[tuple[Location, str]] = [
            (("reps", rep_id, "team"), f"team {rep.team!r} is not defined under teams ({known})")
            for rep_id, rep in self.reps.items()
            if rep.team not in self.teams
        ]
        reporting = self.reporting_currency
        if reporting in self.currency_rates and self.currency_rates[reporting] != 1:
            problems.append(
                (
                    ("currency_rates", reporting),
                    f"{reporting} is the reporting_currency, its rate is always 1 "
                    f"(got {self.currency_rates[reporting]}): remove it or set it to 1",
                )
            )
        return problems + self._label_problems() + self._goal_scope_problems()

    def _label_problems(self) -> list[tuple[Location, str]]:
        """Label rules the config's own sections contradict, or that cannot apply."""
        problems: list[tuple[Location, str]] = []
        for dimension in ("teams", "reps"):
            rule: LabelRule = getattr(self.labels, dimension)
            if rule.known:
                problems.append(
                    (
                        ("labels", dimension, "known"),
                        f"known {dimension} are those defined under {dimension}: remove labels.{dimension}.known",
                    )
                )
        for dimension in ("channels", "campaigns", "lost_reasons", "stages"):
            if getattr(self.labels, dimension).unknown == "deadletter":
                problems.append(
                    (
                        ("labels", dimension, "unknown"),
                        f"unknown {dimension} can be admitted or folded, not dead-lettered: use admit or fold",
                    )
                )
        return problems

    def _goal_scope_problems(self) -> list[tuple[Location, str]]:
        """Goals pinned to a team or rep the config does not define, or to a rep of another team."""
        problems: list[tuple[Location, str]] = []
        for index, goal in enumerate(self.goals):
            if goal.team is not None and goal.team not in self.teams:
                known = ", ".join(sorted(self.teams)) or "none defined"
                problems.append((("goals", index, "team"), f"team {goal.team!r} is not defined under teams ({known})"))
            if goal.rep is not None and goal.rep not in self.reps:
                problems.append((("goals", index, "rep"), f"rep {goal.rep!r} is not defined under reps"))
            elif goal.rep is not None and goal.team is not None and self.reps[goal.rep].team != goal.team:
                problems.append(
                    (
                        ("goals", index, "team"),
                        f"rep {goal.rep!r} is in team {self.reps[goal.rep].team!r}, not {goal.team!r}",
                    )
                )
        return problems

    def scopes(self) -> list[Scope]:
        """The scopes that exist without any event: overall, every team and every rep (within its team)."""
        teams = [Scope(team=team) for team in self.teams]
        return [OVERALL, *teams, *(Scope(team=rep.team, rep=rep_id) for rep_id, rep in self.reps.items())]

    def team_of(self, rep_id: str) -> str | None:
        rep = self.reps.get(rep_id)
        return rep.team if rep else None

    def timezone_of(self, team: str) -> ZoneInfo:
        config = self.teams.get(team)
        return ZoneInfo(config.timezone if config else self.timezone)

    def rate_of(self, currency: str) -> Decimal | None:
        """Units of the reporting currency per 1 unit of ``currency``; None when it has no rate."""
        if currency == self.reporting_currency:
            return Decimal(1)
        return self.currency_rates.get(currency)

    def known_currencies(self) -> frozenset[str]:
        """The currencies with a rate: the reporting currency and those under ``currency_rates``."""
        return frozenset((self.reporting_currency, *self.currency_rates))


def load_config(path: Path, catalog: Catalog | None = None) -> KpimonConfig:
    """Read and validate a config file; raises ConfigFileError with line-precise problems.

    With ``catalog``, its goals are checked against the KPIs too (unknown KPIs, ratios, scopes and windows).
    """

    def problems(config: KpimonConfig) -> list[tuple[Location, str]]:
        found = config.cross_reference_problems()
        if catalog is None:
            return found
        return found + goal_problems(config.goals, catalog) + kpi_set_problems(config.kpi_sets, catalog)

    return load_yaml_model(path, KpimonConfig, cross_check=problems)
