"""Which board a URL shows: the whole company or one team, its reps and its time zone. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.config import KpimonConfig


@dataclass(frozen=True)
class BoardView:
    """One board: ``team`` None for the whole company (``/board``), else one team's (``/board/<team>``)."""

    team: str | None
    title: str
    timezone: str
    reps: tuple[tuple[str, str, str], ...]  # (rep id, display name, team id), in config order

    @property
    def key(self) -> str:
        return self.team or ""

    def rep_name(self, rep: str) -> str:
        return next((name for rep_id, name, _ in self.reps if rep_id == rep), rep)

    def team_of(self, rep: str) -> str:
        return next((team for rep_id, _, team in self.reps if rep_id == rep), "")


class UnknownTeam(LookupError):
    """A URL names a team the config does not define."""


def board_view(config: KpimonConfig, team: str | None) -> BoardView:
    """The board of ``team`` (None: the company's), from the config's teams and reps."""
    if team is None:
        reps = tuple((rep_id, rep.name or rep_id, rep.team) for rep_id, rep in config.reps.items())
        return BoardView(team=None, title="All teams", timezone=config.timezone, reps=reps)
    if team not in config.teams:
        known = ", ".join(sorted(config.teams)) or "none defined"
        raise UnknownTeam(f"no team {team!r} in the config (teams: {known})")
    settings = config.teams[team]
    reps = tuple((rep_id, rep.name or rep_id, rep.team) for rep_id, rep in config.reps.items() if rep.team == team)
    return BoardView(team=team, title=settings.name or team, timezone=settings.timezone, reps=reps)


def team_names(config: KpimonConfig) -> dict[str, str]:
    return {team_id: team.name or team_id for team_id, team in config.teams.items()}
