"""alerts.rules and alerts.rule_checks: the rules file, its models, and `file:line:col` for every kind of mistake."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from alerts.routes import SlackRoute, WebhookRoute
from alerts.rules import AlertRule, RulesFile, load_rules
from schemas.catalog import Catalog, load_catalog
from schemas.config import KpimonConfig, load_config
from schemas.hours import QuietHours
from schemas.scopes import Scope, ScopeSelector
from schemas.yaml_source import ConfigFileError

REPO = Path(__file__).resolve().parents[3]
EXAMPLE_RULES = REPO / "deploy" / "examples" / "alerts.yaml"
EXAMPLE_CONFIG = REPO / "deploy" / "examples" / "kpimon.yaml"

VALID = """\
grafana_url: http://grafana.example:3000
routes:
  sales-slack: {type: slack, webhook_url_env: SLACK_SALES_WEBHOOK_URL}
  ops-hook: {type: webhook, url_env: OPS_WEBHOOK_URL}
rules:
  - id: emea-lead-conversion
    name: EMEA lead to opportunity conversion is low
    kpi: lead_to_opportunity
    window: 7d
    scope: {kind: team, team: emea}
    condition: {below: 0.2}
    min_sample: 20
    confidence: 0.95
    for: 10m
    recovery_margin: 0.02
    repeat_interval: 4h
    quiet_hours: {start: "20:00", end: "08:00"}
    business_days: [mon, tue, wed, thu, fri]
    timezone: Europe/Berlin
    severity: warning
    routes: [sales-slack, ops-hook]
  - id: calls-pace
    kpi: calls
    window: today
    scope: {kind: rep, team: emea}
    condition: {pace: {goal: rep-daily-calls}}
    routes: [sales-slack]
digests:
  - team: emea
    cadence: weekly
    at: "08:30"
    weekday: mon
    kpis: [calls, deals_won, revenue, lead_to_opportunity]
    route: sales-slack
"""

# A rules file's first lines in the problem cases below: one route, and the rules from line 4.
ROUTES = "routes:\n  sales-slack: {type: slack, webhook_url_env: SLACK_SALES_WEBHOOK_URL}\n"
HEAD = ROUTES + "rules:\n"

EXTENSION = """\
kpis:
  - id: calls_calendar
    metric: kpimon_calls_calendar
    name: Calls in calendar windows
    kind: activity
    indicator: leading
    formula: calls
    unit: count
    good: up
    windows: [today, week]
    scopes: [team, rep]
    description: Calls, in calendar windows only.
  - id: channel_posts
    metric: kpimon_channel_posts
    name: Posts per channel
    kind: activity
    indicator: leading
    formula: social_posts
    unit: count
    good: up
    scopes: [channel]
    description: Social posts, per channel only.
"""


def write(tmp_path: Path, text: str, name: str = "alerts.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    return load_catalog(write(tmp_path_factory.mktemp("catalog"), EXTENSION, "extension.yaml"))


@pytest.fixture(scope="module")
def config() -> KpimonConfig:
    return load_config(EXAMPLE_CONFIG)


def rule(extra: str = "", kpi: str = "win_rate", window: str = "7d", condition: str = "{below: 0.2}") -> str:
    """HEAD and one rule on lines 4-8 (id, kpi, window, condition, routes); ``extra`` lines from line 9."""
    return (
        f"{HEAD}  - id: r1\n    kpi: {kpi}\n    window: {window}\n    condition: {condition}\n"
        f"    routes: [sales-slack]\n{extra}"
    )


def problems_of(path: Path, catalog: Catalog, config: KpimonConfig | None = None) -> list[str]:
    with pytest.raises(ConfigFileError) as info:
        load_rules(path, catalog, config)
    return info.value.problems


def test_valid_file(tmp_path: Path, catalog: Catalog, config: KpimonConfig) -> None:
    rules = load_rules(write(tmp_path, VALID), catalog, config)
    assert rules.grafana_url == "http://grafana.example:3000"
    assert rules.routes == {
        "sales-slack": SlackRoute.model_validate({"type": "slack", "webhook_url_env": "SLACK_SALES_WEBHOOK_URL"}),
        "ops-hook": WebhookRoute.model_validate({"type": "webhook", "url_env": "OPS_WEBHOOK_URL"}),
    }
    first, second = rules.rules
    assert first.name == "EMEA lead to opportunity conversion is low"
    assert (first.kpi, first.window, first.severity) == ("lead_to_opportunity", "7d", "warning")
    assert first.scope == ScopeSelector(kind="team", team="emea")
    assert (first.condition.kind, first.condition.below, first.condition.breached_above) == ("below", 0.2, False)
    assert (first.min_sample, first.confidence, first.recovery_margin) == (20, 0.95, 0.02)
    assert (first.for_seconds, first.repeat_interval_seconds) == (600.0, 14400.0)
    assert first.quiet_hours == QuietHours.model_validate({"start": "20:00", "end": "08:00"})
    assert first.business_days == ("mon", "tue", "wed", "thu", "fri")
    assert first.routes == ("sales-slack", "ops-hook")
    # defaults
    assert second.name == "Calls pace"
    assert second.condition.pace is not None
    assert second.condition.pace.goal == "rep-daily-calls"
    assert (second.for_seconds, second.repeat_interval_seconds, second.min_sample, second.confidence) == (
        0.0,
        None,
        0.0,
        None,
    )
    assert (second.quiet_hours, second.business_days, second.timezone, second.recovery_margin) == (None, None, None, 0)
    (digest,) = rules.digests
    assert (digest.team, digest.cadence, f"{digest.at:%H:%M}", digest.weekday) == ("emea", "weekly", "08:30", "mon")


def test_example_file_loads_against_the_builtin_catalog_and_example_config(config: KpimonConfig) -> None:
    rules = load_rules(EXAMPLE_RULES, load_catalog(), config)
    by_id = {rule.id: rule for rule in rules.rules}
    assert {rule.condition.kind for rule in rules.rules} == {"drop", "below", "pace"}
    win_rate = next(rule for rule in rules.rules if rule.kpi == "win_rate")
    assert win_rate.min_sample > 0 and win_rate.confidence is not None
    pace = next(rule for rule in rules.rules if rule.condition.kind == "pace")
    assert (pace.kpi, pace.scope) == ("calls", ScopeSelector(kind="rep"))
    assert any(rule.kpi == "lead_to_opportunity" and rule.condition.drop is not None for rule in rules.rules)
    assert all(rule.quiet_hours is not None for rule in by_id.values())
    assert {digest.team for digest in rules.digests} <= set(config.teams)


@pytest.mark.parametrize("text", ["", "# nothing yet\n", "routes: {}\nrules: []\ndigests: []\n"])
def test_empty_file_has_no_rules(tmp_path: Path, catalog: Catalog, text: str) -> None:
    assert load_rules(write(tmp_path, text), catalog) == RulesFile()


def test_missing_file(tmp_path: Path, catalog: Catalog) -> None:
    path = tmp_path / "nope.yaml"
    assert problems_of(path, catalog) == [f"{path}: cannot read: No such file or directory"]


SYNTAX = [
    # field validation: each points at the value to fix
    (
        rule("    for: 10x\n"),
        "9:10: rules.0.for: '10x' is not a duration (use seconds or a number with s, m, h or d: 30s, 5m, 2h, 1d)",
    ),
    (
        rule("    repeat_interval: 0\n"),
        "9:22: rules.0.repeat_interval: repeat_interval must be more than 0 (leave it out to notify once per episode)",
    ),
    (
        rule("    quiet_hours: {start: 20:00, end: '08:00'}\n"),
        "9:26: rules.0.quiet_hours.start: a time of day must be quoted, as in '20:00' "
        "(unquoted, YAML reads 20:00 as a number: got 1200)",
    ),
    (
        rule("    quiet_hours: {start: '8am', end: '08:00'}\n"),
        "9:26: rules.0.quiet_hours.start: '8am' is not a time of day: write 'HH:MM' from '00:00' to '23:59'",
    ),
    (
        rule("    quiet_hours: {start: '08:00', end: '08:00'}\n"),
        "9:18: rules.0.quiet_hours: quiet hours start and end at the same time: give two different times",
    ),
    (rule("    quiet_hours: {start: '20:00'}\n"), "9:18: rules.0.quiet_hours.end: Field required"),
    (rule("    business_days: [mon, mon]\n"), "9:20: rules.0.business_days: a day is listed twice"),
    (
        rule("    business_days: [monday]\n"),
        "9:21: rules.0.business_days.0: Input should be 'mon', 'tue', 'wed', 'thu', 'fri', 'sat' or 'sun'",
    ),
    (
        rule("    business_days: []\n"),
        "9:20: rules.0.business_days: no business days: list the days that count, or leave business_days out",
    ),
    (
        rule("    timezone: Europe/Berln\n"),
        "9:15: rules.0.timezone: unknown time zone 'Europe/Berln' (use an IANA name such as 'Europe/Berlin')",
    ),
    (rule("    severity: urgent\n"), "9:15: rules.0.severity: Input should be 'info', 'warning' or 'critical'"),
    (rule("    recovery: 0.1\n"), "9:15: rules.0.recovery: Extra inputs are not permitted"),
    (rule("    confidence: 95\n"), "9:17: rules.0.confidence: Input should be less than 1"),
    (rule("    min_sample: -1\n"), "9:17: rules.0.min_sample: Input should be greater than or equal to 0"),
    (
        rule("    scope: {kind: all, team: emea}\n"),
        "9:12: rules.0.scope: a scope of kind 'all' has no team label (kind 'all' takes no labels)",
    ),
    (
        rule("    scope: {kind: team, rep: emea-anna}\n"),
        "9:12: rules.0.scope: a scope of kind 'team' has no rep label (kind 'team' takes only team)",
    ),
    (
        rule("    scope: {kind: region}\n"),
        "9:19: rules.0.scope.kind: Input should be 'all', 'team', 'rep', 'channel' or 'campaign'",
    ),
    (
        rule("", window="2d"),
        "6:13: rules.0.window: Input should be '1h', '24h', '7d', '30d', 'today', 'week', 'month' or 'quarter'",
    ),
    (
        rule("", condition="{below: 0.2, above: 0.5}"),
        "7:16: rules.0.condition: a condition is exactly one of below, above, drop or pace (got below, above)",
    ),
    (
        rule("", condition="{}"),
        "7:16: rules.0.condition: a condition is exactly one of below, above, drop or pace (got none)",
    ),
    (rule("", condition="{under: 0.2}"), "7:24: rules.0.condition.under: Extra inputs are not permitted"),
    (rule("", condition="{below: .nan}"), "7:24: rules.0.condition.below: Input should be a finite number"),
    (
        rule("", condition="{drop: {percent: 130}}"),
        "7:33: rules.0.condition.drop.percent: Input should be less than 100",
    ),
    (
        rule("", condition="{drop: {percent: 30, baseline: yesterday}}"),
        "7:47: rules.0.condition.drop.baseline: Input should be 'previous_period' or 'same_hour_last_week'",
    ),
    (
        rule("", condition="{pace: {goal: 50, hours: '09:00-18:00'}}"),
        "7:23: rules.0.condition.pace: pace names a goal of the config, it no longer takes a number (got goal: 50): "
        "add the goal to the config's goals, e.g. {name: rep-daily-calls, kpi: calls, scope: rep, period: day, "
        "target: 50, hours: '09:00-18:00'}, and write pace: {goal: rep-daily-calls} (docs/alerts.md)",
    ),
    (
        rule("", condition="{pace: {goal: 'a b'}}"),
        "7:30: rules.0.condition.pace.goal: String should match pattern '^[A-Za-z0-9][A-Za-z0-9_.-]*$'",
    ),
    (
        HEAD + "  - {id: Bad_Id, kpi: calls, window: today, condition: {above: 1}, routes: [sales-slack]}\n",
        "4:10: rules.0.id: String should match pattern '^[a-z0-9][a-z0-9-]*$'",
    ),
    (
        HEAD + "  - {id: r1, kpi: calls, window: today, condition: {above: 1}, routes: []}\n",
        "4:72: rules.0.routes: Tuple should have at least 1 item after validation, not 0",
    ),
    (
        HEAD + "  - {id: r1, kpi: calls, window: today, routes: [sales-slack]}\n",
        "4:5: rules.0.condition: Field required",
    ),
    (
        "routes:\n  chat: {type: email, to: a@b.c}\n",
        "2:9: routes.chat: Input tag 'email' found using 'type' does not match any of the expected tags: "
        "'slack', 'webhook'",
    ),
    ("grafana_url: grafana:3000\n", "1:14: grafana_url: 'grafana:3000' is not an http:// or https:// address"),
    ("grafana_url: 'http:// x'\n", "1:14: grafana_url: 'http:// x' is not an http:// or https:// address"),
    # digests
    (
        "digests:\n  - {team: emea, cadence: weekly, at: '08:30', kpis: [calls], route: r}\n",
        "2:5: digests.0: a weekly digest needs a weekday (mon ... sun)",
    ),
    (
        "digests:\n  - {team: emea, cadence: daily, weekday: mon, at: '08:30', kpis: [calls], route: r}\n",
        "2:5: digests.0: a daily digest has no weekday: remove it or make the cadence weekly",
    ),
    (
        "digests:\n  - {team: emea, cadence: daily, at: 8, kpis: [calls], route: r}\n",
        "2:38: digests.0.at: a time of day must be quoted, as in '20:00' "
        "(unquoted, YAML reads 20:00 as a number: got 8)",
    ),
    (
        "digests:\n  - {team: emea, cadence: daily, at: '08:30', kpis: [], route: r}\n",
        "2:53: digests.0.kpis: Tuple should have at least 1 item after validation, not 0",
    ),
    (
        "digests:\n  - {team: emea, cadence: hourly, at: '08:30', kpis: [calls], route: r}\n",
        "2:27: digests.0.cadence: Input should be 'daily' or 'weekly'",
    ),
]


@pytest.mark.parametrize(("text", "problem"), SYNTAX)
def test_field_mistakes_reported_with_line_and_column(
    tmp_path: Path, catalog: Catalog, text: str, problem: str
) -> None:
    path = write(tmp_path, text)
    assert problems_of(path, catalog) == [f"{path}:{problem}"]


BUILTIN_KPI_COUNT = len(load_catalog().kpis)
UNKNOWN_WIN_RATE = (
    "unknown KPI 'win_ratio': did you mean 'win_rate'? known KPIs: calls, call_connect_rate, call_duration, "
    "emails_sent, email_replies, email_response_rate, meetings_booked, meetings_held "
    f"and {BUILTIN_KPI_COUNT + 2 - 8} more (all in docs/kpis.md)"
)
REFERENCES = [
    # the catalog
    (rule("", kpi="win_ratio"), [f"5:10: rules.0.kpi: {UNKNOWN_WIN_RATE}"]),
    (
        rule("    scope: {kind: team}\n", kpi="calls_calendar", window="7d", condition="{above: 5}"),
        ["6:13: rules.0.window: KPI 'calls_calendar' has no window '7d' (its windows: today, week)"],
    ),
    (
        rule("    scope: {kind: channel}\n", kpi="calls", condition="{above: 5}"),
        ["9:19: rules.0.scope.kind: KPI 'calls' is not kept per channel (its scopes: all, team, rep)"],
    ),
    (
        rule("", kpi="calls_calendar", window="today", condition="{above: 5}"),  # the default scope: all
        ["4:5: rules.0.scope.kind: KPI 'calls_calendar' is not kept per all (its scopes: team, rep)"],
    ),
    (
        rule("    scope: {kind: campaign}\n", kpi="calls", condition="{above: 5}"),
        ["9:19: rules.0.scope.kind: KPI 'calls' is not kept per campaign (its scopes: all, team, rep)"],
    ),
    (
        rule("    min_sample: 5\n    confidence: 0.9\n", kpi="calls", condition="{above: 5}"),
        [
            "9:17: rules.0.min_sample: min_sample applies to ratio KPIs only; 'calls' is a count KPI",
            "10:17: rules.0.confidence: confidence applies to ratio KPIs only; 'calls' is a count KPI",
        ],
    ),
    (
        rule("    min_sample: 0\n", kpi="sales_cycle", condition="{above: 5}"),
        [
            "9:17: rules.0.min_sample: min_sample applies to ratio KPIs only; 'sales_cycle' is a seconds KPI",
        ],
    ),
    (
        rule("", condition="{below: 20}"),
        ["7:24: rules.0.condition.below: 'win_rate' is a ratio from 0 to 1 (got 20): write 0.2 for 20%"],
    ),
    (
        rule("", condition="{above: -0.5}"),
        ["7:24: rules.0.condition.above: 'win_rate' is a ratio from 0 to 1 (got -0.5)"],
    ),
    (
        rule("", window="7d", condition="{drop: {percent: 20, baseline: same_hour_last_week}}"),
        [
            "7:47: rules.0.condition.drop.baseline: same_hour_last_week is kept for the windows 1h, 24h, today "
            "only, not '7d': use previous_period",
        ],
    ),
    # routes and ids
    (
        rule(
            "  - id: r1\n    kpi: calls\n    window: today\n    condition: {above: 1}\n"
            "    routes: [sales-slak, sales-slack, sales-slack]\n"
        ),
        [
            "9:9: rules.1.id: duplicate rule id 'r1' (rules.0 has it too)",
            "13:14: rules.1.routes.0: route 'sales-slak' is not defined under routes (sales-slack)",
            "13:39: rules.1.routes.2: route 'sales-slack' is listed twice",
        ],
    ),
    (
        "rules:\n  - {id: r1, kpi: calls, window: today, condition: {above: 1}, routes: [slack]}\n",
        ["2:73: rules.0.routes.0: route 'slack' is not defined under routes (none defined)"],
    ),
    # digests
    (
        ROUTES + "digests:\n  - team: emea\n    cadence: daily\n    at: '08:30'\n"
        "    kpis: [calls, win_ratio, channel_posts]\n    route: sales-slak\n",
        [
            f"7:19: digests.0.kpis.1: {UNKNOWN_WIN_RATE}",
            "7:30: digests.0.kpis.2: KPI 'channel_posts' is not kept per team (its scopes: channel)",
            "8:12: digests.0.route: route 'sales-slak' is not defined under routes (sales-slack)",
        ],
    ),
]


@pytest.mark.parametrize(("text", "problems"), REFERENCES)
def test_broken_references_reported_with_line_and_column(
    tmp_path: Path, catalog: Catalog, text: str, problems: list[str]
) -> None:
    path = write(tmp_path, text)
    assert problems_of(path, catalog) == [f"{path}:{problem}" for problem in problems]


CONFIG_REFERENCES = [
    (
        rule("    scope: {kind: team, team: emae}\n"),
        ["9:31: rules.0.scope.team: team 'emae' is not defined in the config (amer, apac, emea)"],
    ),
    (
        rule("    scope: {kind: rep, rep: emea-nobody}\n", kpi="calls", window="today", condition="{above: 1}"),
        ["9:29: rules.0.scope.rep: rep 'emea-nobody' is not defined in the config"],
    ),
    (
        rule("    scope: {kind: rep, team: emea, rep: amer-mike}\n"),
        ["9:41: rules.0.scope.rep: rep 'amer-mike' is in team 'amer', not 'emea'"],
    ),
    (
        ROUTES + "digests:\n  - {team: emeaa, cadence: daily, at: '08:30', kpis: [calls], route: sales-slack}\n",
        ["4:12: digests.0.team: team 'emeaa' is not defined in the config (amer, apac, emea)"],
    ),
    (
        rule("", kpi="revenue", window="7d", condition="{pace: {goal: rep-daily-calls}}"),
        [
            "5:10: rules.0.kpi: goal 'rep-daily-calls' is set on kpi 'calls': write calls here (got 'revenue')",
            "6:13: rules.0.window: goal 'rep-daily-calls' is set on window 'today': write today here (got '7d')",
            "4:5: rules.0.scope.kind: goal 'rep-daily-calls' is set on scope 'rep': write rep here (got 'all')",
        ],
    ),
    (
        rule("", kpi="calls", window="today", condition="{pace: {goal: rep-calls}}"),
        [
            "7:30: rules.0.condition.pace.goal: goal 'rep-calls' is not defined under goals in the config "
            "(company-monthly-revenue, rep-daily-calls, rep-daily-demos, rep-daily-emails, rep-daily-meetings-booked, "
            "rep-daily-meetings-held, rep-weekly-calls, rep-weekly-meetings, team-monthly-revenue, team-weekly-calls, "
            "team-weekly-deals, weekly-leads)",
        ],
    ),
]


@pytest.mark.parametrize(("text", "problems"), CONFIG_REFERENCES)
def test_teams_and_reps_checked_against_the_config(
    tmp_path: Path, catalog: Catalog, config: KpimonConfig, text: str, problems: list[str]
) -> None:
    path = write(tmp_path, text)
    assert problems_of(path, catalog, config) == [f"{path}:{problem}" for problem in problems]
    load_rules(path, catalog)  # without a config, team and rep names are not checked


def test_every_problem_of_a_file_is_reported(tmp_path: Path, catalog: Catalog) -> None:
    text = rule("    scope: {kind: channel}\n    min_sample: 3\n", kpi="calls", window="today", condition="{above: 5}")
    path = write(tmp_path, text.replace("routes: [sales-slack]", "routes: [nowhere]"))
    assert problems_of(path, catalog) == [
        f"{path}:9:19: rules.0.scope.kind: KPI 'calls' is not kept per channel (its scopes: all, team, rep)",
        f"{path}:10:17: rules.0.min_sample: min_sample applies to ratio KPIs only; 'calls' is a count KPI",
        f"{path}:8:14: rules.0.routes.0: route 'nowhere' is not defined under routes (sales-slack)",
    ]


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ({"kind": "all"}, Scope(), True),
        ({"kind": "all"}, Scope(team="emea"), False),
        ({}, Scope(), True),  # the default: overall
        ({"kind": "team"}, Scope(team="emea"), True),
        ({"kind": "team"}, Scope(team="amer"), True),
        ({"kind": "team"}, Scope(team="emea", rep="emea-anna"), False),
        ({"kind": "team", "team": "emea"}, Scope(team="emea"), True),
        ({"kind": "team", "team": "emea"}, Scope(team="amer"), False),
        ({"kind": "rep"}, Scope(team="amer", rep="amer-mike"), True),
        ({"kind": "rep", "team": "emea"}, Scope(team="emea", rep="emea-anna"), True),
        ({"kind": "rep", "team": "emea"}, Scope(team="amer", rep="amer-mike"), False),
        ({"kind": "rep", "team": "emea"}, Scope(team="emea"), False),
        ({"kind": "rep", "rep": "emea-anna"}, Scope(team="emea", rep="emea-anna"), True),
        ({"kind": "rep", "rep": "emea-anna"}, Scope(team="emea", rep="emea-jan"), False),
        ({"kind": "channel"}, Scope(channel="web"), True),
        ({"kind": "channel", "channel": "web"}, Scope(channel="email"), False),
        ({"kind": "campaign", "campaign": "spring|26"}, Scope(campaign="spring|26"), True),
        ({"kind": "campaign"}, Scope(channel="web"), False),
    ],
)
def test_scope_selector_matches(selector: dict[str, str], labels: Scope, expected: bool) -> None:
    assert ScopeSelector.model_validate(selector).matches(labels) is expected


def make_rule(**fields: object) -> AlertRule:
    base: dict[str, object] = {"id": "r", "kpi": "calls", "window": "today", "condition": {"above": 1}, "routes": ["x"]}
    return AlertRule.model_validate(base | fields)


@pytest.mark.parametrize(
    ("fields", "labels", "zone"),
    [
        ({}, Scope(team="amer"), "America/New_York"),
        ({}, Scope(team="apac", rep="apac-wei"), "Asia/Singapore"),
        ({}, Scope(), "UTC"),  # overall: the config's default zone
        ({}, Scope(channel="web"), "UTC"),
        ({}, Scope(team="platform"), "UTC"),  # not a team of the config: the default
        ({"timezone": "Europe/Berlin"}, Scope(team="amer"), "Europe/Berlin"),
    ],
)
def test_zone_for(config: KpimonConfig, fields: dict[str, object], labels: Scope, zone: str) -> None:
    assert make_rule(**fields).zone_for(labels, config) == ZoneInfo(zone)


def test_is_quiet_uses_quiet_hours_and_business_days() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    quiet = make_rule(quiet_hours={"start": "20:00", "end": "08:00"}, business_days=["mon", "tue", "wed", "thu", "fri"])
    friday_noon, friday_night = 1774609200.0, 1774645200.0  # 2026-03-27 12:00 and 22:00 CET
    saturday_noon = friday_noon + 86400
    assert [quiet.is_quiet(at, berlin) for at in (friday_noon, friday_night, saturday_noon)] == [False, True, True]
    assert not make_rule().is_quiet(friday_night, berlin)


@pytest.mark.parametrize(
    ("rule_id", "name"), [("emea-lead-conversion", "Emea lead conversion"), ("r", "R"), ("7d-calls", "7d calls")]
)
def test_name_defaults_to_the_id_in_words(rule_id: str, name: str) -> None:
    assert make_rule(id=rule_id).name == name
