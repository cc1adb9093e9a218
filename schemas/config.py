"""The config file: teams, their time zones and their reps.

Example (``deploy/examples/kpimon.yaml``)::

    timezone: Europe/Berlin        # for the overall and channel scopes
    teams:
      emea: {timezone: Europe/Berlin}
      amer: {timezone: America/New_York}
    reps:
      alice: {team: emea}
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from schemas.events import Label
from schemas.yaml_source import Location, load_yaml_model


def _known_time_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone {name!r} (use an IANA name such as 'Europe/Berlin')") from None
    return name


TimeZoneName = Annotated[str, AfterValidator(_known_time_zone)]


class TeamConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: TimeZoneName = "UTC"
    name: str | None = None


class RepConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    team: Label
    name: str | None = None


class KpimonConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: TimeZoneName = "UTC"
    teams: dict[Label, TeamConfig] = Field(default_factory=dict)
    reps: dict[Label, RepConfig] = Field(default_factory=dict)

    def cross_reference_problems(self) -> list[tuple[Location, str]]:
        """References between sections that field validation cannot see."""
        known = ", ".join(sorted(self.teams)) or "none defined"
        return [
            (("reps", rep_id, "team"), f"team {rep.team!r} is not defined under teams ({known})")
            for rep_id, rep in self.reps.items()
            if rep.team not in self.teams
        ]

    def team_of(self, rep_id: str) -> str | None:
        rep = self.reps.get(rep_id)
        return rep.team if rep else None

    def timezone_of(self, team: str) -> ZoneInfo:
        config = self.teams.get(team)
        return ZoneInfo(config.timezone if config else self.timezone)


def load_config(path: Path) -> KpimonConfig:
    """Read and validate a config file; raises ConfigFileError with line-precise problems."""
    return load_yaml_model(path, KpimonConfig, cross_check=KpimonConfig.cross_reference_problems)
