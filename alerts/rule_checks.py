"""References in a rules file that field validation cannot see: KPIs, windows, scopes, routes, teams.

Each problem is a (location, message) pair; ``schemas.yaml_source`` turns the
location into the ``file:line:col`` of the value to fix.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from schemas.catalog import Catalog, KpiSpec
from schemas.config import KpimonConfig
from schemas.yaml_source import Location

if TYPE_CHECKING:
    from alerts.rules import AlertRule, Digest, RulesFile

Problem = tuple[Location, str]
_LISTED = 8  # known KPI ids named in an "unknown KPI" message


def _listing(names: Sequence[str], most: int | None = None) -> str:
    if not names:
        return "none defined"
    if most is None or len(names) <= most:
        return ", ".join(names)
    return f"{', '.join(names[:most])} and {len(names) - most} more"


def unknown_kpi_message(kpi_id: str, catalog: Catalog) -> str:
    known = [kpi.id for kpi in catalog.kpis]
    close = difflib.get_close_matches(kpi_id, known, n=3)
    hint = f"did you mean {' or '.join(repr(name) for name in close)}? " if close else ""
    return f"unknown KPI {kpi_id!r}: {hint}known KPIs: {_listing(known, _LISTED)} (all in docs/kpis.md)"


def rules_file_problems(rules: RulesFile, catalog: Catalog, config: KpimonConfig | None) -> list[Problem]:
    """Every broken reference of the file, in file order."""
    kpis = {kpi.id: kpi for kpi in catalog.kpis}
    problems: list[Problem] = []
    first_of: dict[str, int] = {}
    for index, rule in enumerate(rules.rules):
        at: Location = ("rules", index)
        if rule.id in first_of:
            problems.append(((*at, "id"), f"duplicate rule id {rule.id!r} (rules.{first_of[rule.id]} has it too)"))
        first_of.setdefault(rule.id, index)
        kpi = kpis.get(rule.kpi)
        if kpi is None:
            problems.append(((*at, "kpi"), unknown_kpi_message(rule.kpi, catalog)))
        else:
            problems.extend((((*at, *loc), message) for loc, message in _rule_kpi_problems(rule, kpi)))
        problems.extend(_route_problems(at, rule.routes, rules))
        if config is not None:
            problems.extend(_scope_label_problems(at, rule, config))
            problems.extend(_pace_goal_problems(at, rule, config))
    for index, digest in enumerate(rules.digests):
        problems.extend(_digest_problems(("digests", index), digest, rules, kpis, catalog, config))
    return problems


def _scope_message(kpi: KpiSpec, kind: str) -> str:
    return f"KPI {kpi.id!r} is not kept per {kind} (its scopes: {', '.join(kpi.scopes)})"


def _rule_kpi_problems(rule: AlertRule, kpi: KpiSpec) -> Iterator[Problem]:
    """What the rule asks of its KPI that the KPI does not have (locations relative to the rule)."""
    if rule.window not in kpi.windows:
        yield ("window",), f"KPI {kpi.id!r} has no window {rule.window!r} (its windows: {', '.join(kpi.windows)})"
    if rule.scope.kind not in kpi.scopes:
        yield ("scope", "kind"), _scope_message(kpi, rule.scope.kind)
    is_ratio = kpi.unit == "ratio"
    for field in ("min_sample", "confidence"):
        if field in rule.model_fields_set and not is_ratio:
            yield (field,), f"{field} applies to ratio KPIs only; {kpi.id!r} is a {kpi.unit} KPI"
    condition = rule.condition
    for name, threshold in (("below", condition.below), ("above", condition.above)):
        if is_ratio and threshold is not None and not 0 <= threshold <= 1:
            hint = f": write {threshold / 100:g} for {threshold:g}%" if 1 < threshold <= 100 else ""
            yield ("condition", name), f"{kpi.id!r} is a ratio from 0 to 1 (got {threshold:g}){hint}"
    drop = condition.drop
    if drop is not None and drop.baseline == "same_hour_last_week" and rule.window not in SAME_HOUR_LAST_WEEK_WINDOWS:
        yield (
            ("condition", "drop", "baseline"),
            (
                f"same_hour_last_week is kept for the windows {', '.join(SAME_HOUR_LAST_WEEK_WINDOWS)} only, "
                f"not {rule.window!r}: use previous_period"
            ),
        )


# Hourly buckets are kept 8 days and daily ones 100: last week's same hours exist for these windows.
SAME_HOUR_LAST_WEEK_WINDOWS = ("1h", "24h", "today")


def _undefined_route(name: str, rules: RulesFile) -> str | None:
    if name in rules.routes:
        return None
    return f"route {name!r} is not defined under routes ({_listing(sorted(rules.routes))})"


def _route_problems(at: Location, names: Sequence[str], rules: RulesFile) -> Iterator[Problem]:
    for position, name in enumerate(names):
        if message := _undefined_route(name, rules):
            yield (*at, "routes", position), message
        elif name in names[:position]:
            yield (*at, "routes", position), f"route {name!r} is listed twice"


def _team_problem(team: str, config: KpimonConfig) -> str | None:
    if team in config.teams:
        return None
    return f"team {team!r} is not defined in the config ({_listing(sorted(config.teams))})"


def _scope_label_problems(at: Location, rule: AlertRule, config: KpimonConfig) -> Iterator[Problem]:
    scope = rule.scope
    if scope.team is not None and (message := _team_problem(scope.team, config)):
        yield (*at, "scope", "team"), message
    if scope.rep is not None:
        team = config.team_of(scope.rep)
        if team is None:
            yield (*at, "scope", "rep"), f"rep {scope.rep!r} is not defined in the config"
        elif scope.team is not None and scope.team != team:
            yield (*at, "scope", "rep"), f"rep {scope.rep!r} is in team {team!r}, not {scope.team!r}"


def _pace_goal_problems(at: Location, rule: AlertRule, config: KpimonConfig) -> Iterator[Problem]:
    """A pace rule's goal: defined in the config, on the rule's KPI, window and kind of scope."""
    pace = rule.condition.pace
    if pace is None:
        return
    goal = next((goal for goal in config.goals if goal.name == pace.goal), None)
    if goal is None:
        known = _listing(sorted({goal.name for goal in config.goals}))
        yield (
            (*at, "condition", "pace", "goal"),
            f"goal {pace.goal!r} is not defined under goals in the config ({known})",
        )
        return
    for field, ours, theirs in (
        ("kpi", rule.kpi, goal.kpi),
        ("window", rule.window, goal.window),
        ("scope", rule.scope.kind, goal.scope),
    ):
        if ours != theirs:
            where = (*at, field, "kind") if field == "scope" else (*at, field)
            yield where, f"goal {goal.name!r} is set on {field} {theirs!r}: write {theirs} here (got {ours!r})"


def _digest_problems(
    at: Location,
    digest: Digest,
    rules: RulesFile,
    kpis: dict[str, KpiSpec],
    catalog: Catalog,
    config: KpimonConfig | None,
) -> Iterator[Problem]:
    if config is not None and (message := _team_problem(digest.team, config)):
        yield (*at, "team"), message
    for position, kpi_id in enumerate(digest.kpis):
        kpi = kpis.get(kpi_id)
        if kpi is None:
            yield (*at, "kpis", position), unknown_kpi_message(kpi_id, catalog)
        elif "team" not in kpi.scopes:
            yield (*at, "kpis", position), _scope_message(kpi, "team")
    if message := _undefined_route(digest.route, rules):
        yield (*at, "route"), message
