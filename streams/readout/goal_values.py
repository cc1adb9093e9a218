"""The goals in force per scope at a time, with their pace: what /metrics exports as kpimon_goal*. Pure.

A goal covers every scope its selector matches: the scopes the config names (overall, its
teams, its reps, a pinned channel or campaign) and any other scope of that kind the worker has
state for (a channel, a campaign, a rep missing from the config). Each scope's period starts in
its own time zone (its team's, else the config's), so a weekly goal can already be in its next
week in Singapore while New York is still in the last one.

The target and the pace depend on the config and the clock only, never on a worker's share of
the data: every worker serves the same values (Prometheus takes ``max``, never ``sum``, across
workers), and the attainment, which needs the whole scope's value, is computed in Prometheus
(deploy/prometheus/generate_rules.py; docs/architecture.md, "Goals").
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from schemas.calendar import period_days
from schemas.config import KpimonConfig
from schemas.goals import Goal, entry_in_force, expected_by_now, goal_entries
from schemas.scopes import Scope


@dataclass(frozen=True)
class GoalValue:
    """The entry of a goal in force for one scope now, and the value expected by now on its pace."""

    scope: Scope
    goal: Goal
    expected: float


def _pinned_scope(goal: Goal) -> Scope | None:
    if goal.scope == "channel" and goal.channel is not None:
        return Scope(channel=goal.channel)
    if goal.scope == "campaign" and goal.campaign is not None:
        return Scope(campaign=goal.campaign)
    return None


def goal_values(
    config: KpimonConfig, seen: Iterable[Scope], now: float, scopes_per_step: int = 200
) -> Iterator[GoalValue | None]:
    """Every goal in force at ``now`` in every scope it covers, by goal name then scope key.

    ``seen``: the scopes the worker has state for. A ``None`` comes after every
    ``scopes_per_step`` scopes, so a caller can yield to the event loop there.
    """
    if not config.goals:
        return
    candidates = sorted({*config.scopes(), *seen}, key=lambda scope: scope.key)
    zones: dict[str, ZoneInfo] = {}
    looked_at = 0
    for entries in goal_entries(config.goals).values():
        selector = entries[0].selector
        pinned = _pinned_scope(entries[0])
        scopes = [pinned] if pinned is not None else [scope for scope in candidates if selector.matches(scope)]
        in_force: dict[str, tuple[Goal, float] | None] = {}  # per time zone: the same entry and pace
        for scope in scopes:
            zone = zones.get(scope.team)
            if zone is None:
                zone = zones[scope.team] = config.timezone_of(scope.team)
            if zone.key not in in_force:
                entry = entry_in_force(entries, period_days(entries[0].window, now, zone)[0])
                in_force[zone.key] = None if entry is None else (entry, expected_by_now(entry, now, zone))
            found = in_force[zone.key]
            if found is not None:
                yield GoalValue(scope, *found)
            looked_at += 1
            if looked_at % scopes_per_step == 0:
                yield None
