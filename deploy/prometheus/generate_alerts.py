"""Generate deploy/prometheus/rules/kpimon.generated-alerts.yml: Prometheus alerts from kpimon's alert rules.

For teams that send alerts through Alertmanager rather than kpimon's own alert engine
(docs/alerts.md). Each rule of a kpimon rules file (deploy/examples/alerts.yaml by default)
becomes one Prometheus alerting rule over the recording rules of generate_rules.py, where
PromQL can say the same thing:

- ``below: X`` / ``above: X``       ``kpimon:<kpi>:<sum|ratio|rollup>{window=..., scope=..., team=...} < X``
- ``pace: {goal: G}``               the KPI summed across workers (0 where a scope has no series yet) under
                                    ``kpimon_goal_expected{goal="G"}``, the pace the workers serve (max)
- ``drop: {percent: P}``            the value under (1 - P/100) times the same series ``offset`` by the
                                    baseline: the window's own length for ``previous_period`` of the
                                    rolling windows 1h, 24h, 7d, 30d; ``1w`` for ``same_hour_last_week``
                                    of 1h and 24h. A baseline that is missing or 0 gives no alert, as
                                    in kpimon's engine.
- ``min_sample: N``                 ``and`` the ratio's denominator, summed across workers from the
                                    counters' ``kpimon:<counter kpi>:sum`` series, ``>= N``
- ``for``, ``severity``             ``for:`` and the ``severity`` label; the series' labels (team, rep,
                                    channel, campaign) stay on the alert for Alertmanager's routing
- ``grafana_url``                   a ``dashboard`` annotation, the link kpimon's messages carry

Not expressible, so left out, each listed with the reason in the generated file's header: a whole
rule for ``drop`` against a calendar window's previous period or today's same day last week (a whole local
day, week, month or quarter: no fixed offset reaches it), for a KPI without a recording rule
and for a ``min_sample`` whose denominator is not exported; the part of a rule for ``confidence``
(the Wilson gate), ``recovery_margin``, ``quiet_hours``, ``business_days`` and ``repeat_interval``
(the last three are Alertmanager's business: time intervals and the route's repeat interval, see
deploy/README.md).

    python deploy/prometheus/generate_alerts.py            # rewrite the alerts file
    python deploy/prometheus/generate_alerts.py --check    # exit 1 if it is stale
    python deploy/prometheus/generate_alerts.py --rules my-alerts.yaml --output my-alerts.yml
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# generate_rules.py is beside this script (on sys.path when it runs; the unit tests load it first).
from generate_rules import (
    GOAL_JOIN,
    RecordingRule,
    Skipped,
    exported_counters,
    promql,
    recording_rules,
    scaled,
    write_or_check,
)

from alerts.conditions import format_number
from alerts.rules import AlertRule, RulesFile, load_rules
from schemas.catalog import Catalog, KpiSpec, load_catalog
from schemas.scopes import SCOPE_KIND_LABELS as SCOPE_LABELS
from schemas.scopes import SCOPE_LABEL_NAMES
from streams.readout.links import UIDS, dashboard_of

REPO = Path(__file__).resolve().parents[2]
RULES_FILE = REPO / "deploy" / "examples" / "alerts.yaml"
ALERTS_FILE = Path(__file__).resolve().parent / "rules" / "kpimon.generated-alerts.yml"
GROUP_NAME = "kpimon-generated-alerts"

# The offset of the baseline of a drop, where a fixed duration reaches it (see the module docstring), and in words.
BASELINES: dict[tuple[str, str], tuple[str, str]] = {
    ("previous_period", "1h"): ("1h", "the hour before"),
    ("previous_period", "24h"): ("24h", "the 24 hours before"),
    ("previous_period", "7d"): ("7d", "the 7 days before"),
    ("previous_period", "30d"): ("30d", "the 30 days before"),
    ("same_hour_last_week", "1h"): ("1w", "the same hour last week"),
    ("same_hour_last_week", "24h"): ("1w", "the same 24 hours last week"),
}
WINDOW_WORDS = {
    "1h": "in the last hour",
    "24h": "in the last 24 hours",
    "7d": "over 7 days",
    "30d": "over 30 days",
    "today": "today",
    "week": "this week",
    "month": "this month",
    "quarter": "this quarter",
}
# The labels a scope of each kind carries (schemas.scopes.SCOPE_KIND_LABELS), as words in the alert's text.
SCOPE_WORDS = {
    "all": "overall",
    "team": "of team {{ $labels.team }}",
    "rep": "of rep {{ $labels.rep }} ({{ $labels.team }})",
    "channel": "of channel {{ $labels.channel }}",
    "campaign": "of campaign {{ $labels.campaign }}",
}
VALUE_FORMAT = {"ratio": "humanizePercentage", "seconds": "humanizeDuration"}  # others: humanize
NOT_TRANSLATED = {
    "confidence": "the Wilson gate is left out, the alert fires on the value (and min_sample) alone",
    "recovery_margin": "no hysteresis, an alert resolves as soon as its condition no longer holds",
    "quiet_hours": "Alertmanager's time_intervals, muting a route (mute_time_intervals)",
    "business_days": "Alertmanager's time_intervals (weekdays), muting a route",
    "repeat_interval": "the repeat_interval of Alertmanager's route",
    "timezone": "read by quiet hours and business days only (a pace follows its goal, in the scope's zone); "
    "Alertmanager's time_intervals have a location",
}


@dataclass(frozen=True)
class AlertingRule:
    source: AlertRule
    kpi: KpiSpec
    alert: str
    expr: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    left_out: tuple[str, ...]  # the rule's settings that are not translated, as "name value"


@dataclass(frozen=True)
class Untranslated:
    source: AlertRule
    reason: str


def alert_name(rule_id: str) -> str:
    """``lead-conversion-drop`` -> ``KpimonLeadConversionDrop``."""
    return "Kpimon" + "".join(part[:1].upper() + part[1:] for part in rule_id.split("-"))


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _number(value: float) -> str:
    return format(value, ".12g")


def duration(seconds: float) -> str:
    """A Prometheus duration: 1800 -> ``30m``, 5400 -> ``1h30m``, 1.5 -> ``1s500ms``."""
    left = round(seconds * 1000)
    parts = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        if left >= size:
            parts.append(f"{left // size}{unit}")
            left %= size
    return "".join(parts) or "0s"


def _selector(rule: AlertRule, goal: str | None = None) -> str:
    matchers = [f"window={_quote(rule.window)}", f"scope={_quote(rule.scope.kind)}"]
    if goal is not None:
        matchers.append(f"goal={_quote(goal)}")
    for name in SCOPE_LABEL_NAMES:
        value = getattr(rule.scope, name)
        if value is not None:
            matchers.append(f"{name}={_quote(value)}")
    return "{" + ", ".join(matchers) + "}"


def _covers(kpis: Sequence[KpiSpec], rule: AlertRule) -> bool:
    """Whether every one of ``kpis`` is kept in the rule's window and scope kind (so the roll-up has it)."""
    return all(rule.window in kpi.windows and rule.scope.kind in kpi.scopes for kpi in kpis)


def _series(
    rule: AlertRule,
    kpi: KpiSpec,
    rollups: Mapping[str, RecordingRule],
    skipped: Mapping[str, Skipped],
    exported: Mapping[str, KpiSpec],
) -> str:
    """The recording rule of ``kpi``, narrowed to the rule's window and scope; raises ValueError when there is none."""
    record = rollups.get(kpi.id)
    if record is None:
        missing = skipped[kpi.id].missing if kpi.id in skipped else ()
        if missing:
            raise ValueError(f"no recording rule for {kpi.id}: {', '.join(missing)} is not exported as a series")
        raise ValueError(f"no recording rule for {kpi.id} in kpimon.rules.yml")
    if not _covers([exported[name] for name in kpi.formula.names], rule):
        raise ValueError(f"the roll-up of {kpi.id} has no {rule.scope.kind} scope in the {rule.window} window")
    return record.record + _selector(rule)


def _denominator(rule: AlertRule, kpi: KpiSpec, exported: Mapping[str, KpiSpec]) -> tuple[str, str]:
    """``min_sample``: the ratio's denominator over the summed counters ``>= N``, and in words.

    Raises ValueError when the KPI has no denominator or a counter of it is not exported as a series.
    """
    parts = kpi.formula.ratio_parts()
    if parts is None:
        raise ValueError(f"min_sample: {kpi.id} ({kpi.formula.source}) is not one division, so it has no denominator")
    denominator = parts[1]
    missing = sorted(name for name in denominator.names if name not in exported)
    if missing:
        raise ValueError(f"min_sample: the denominator's {', '.join(missing)} is not exported as a series")
    sources = {name: exported[name] for name in denominator.names}
    if not _covers(list(sources.values()), rule):
        raise ValueError(f"min_sample: {denominator.source} has no {rule.scope.kind} scope in the {rule.window} window")
    operand = {name: scaled(source, f"kpimon:{source.id}:sum{_selector(rule)}") for name, source in sources.items()}
    body = denominator.tree.body
    text = promql(body, operand) if isinstance(body, ast.Name) else f"({promql(body, operand)})"
    return f"{text} >= {_number(rule.min_sample)}", f" (with {denominator.source} >= {format_number(rule.min_sample)})"


def _in_words(kpi: KpiSpec, value: float) -> str:
    return f"{value * 100:.4g}%" if kpi.unit == "ratio" else format_number(value)


def _condition(rule: AlertRule, kpi: KpiSpec, series: str) -> tuple[str, str]:
    """The comparison and the condition in words; raises ValueError when PromQL cannot express it."""
    condition = rule.condition
    if condition.below is not None:
        return f"{series} < {_number(condition.below)}", f"below {_in_words(kpi, condition.below)}"
    if condition.above is not None:
        return f"{series} > {_number(condition.above)}", f"above {_in_words(kpi, condition.above)}"
    if condition.drop is not None:
        drop = condition.drop
        baseline = BASELINES.get((drop.baseline, rule.window))
        if baseline is None:
            if drop.baseline == "previous_period":
                raise ValueError(
                    f"drop against the previous period of the calendar window {rule.window}: that is the whole "
                    "previous local period, which no fixed offset reaches (an offset gives it to the same time only)"
                )
            raise ValueError(
                f"drop against the same hour last week of {rule.window}: kpimon compares the whole day a week "
                "before, which no fixed offset reaches"
            )
        offset, before = baseline
        factor = _number(round(1 - drop.percent / 100, 12))
        words = f"more than {format_number(drop.percent)}% below {before}"
        return f"{series} < {factor} * ({series} offset {offset} > 0)", words
    assert condition.pace is not None
    # kpimon_goal_expected: the pace every worker serves alike (max); a scope without the KPI's series counts 0
    expected = f"max by ({GOAL_JOIN}) (kpimon_goal_expected{_selector(rule, goal=condition.pace.goal)})"
    value = f"sum by ({GOAL_JOIN}) ({series}) or {expected} * 0"
    return f"({value}) < on ({GOAL_JOIN}) {expected}", f"behind the pace to goal {condition.pace.goal}"


def _dashboard(grafana_url: str, rule: AlertRule, kpi: KpiSpec) -> str:
    """The link kpimon's messages carry (``streams.readout.links.grafana_link``), labels filled in by Prometheus."""
    query = [f"var-window={rule.window}"]
    for name in ("team", "rep", "channel"):
        if name in SCOPE_LABELS[rule.scope.kind]:
            query.append(f"var-{name}={{{{ $labels.{name} | urlquery }}}}")
    return f"{grafana_url.rstrip('/')}/d/{UIDS[dashboard_of(kpi)]}?{'&'.join(query)}"


def _left_out(rule: AlertRule) -> tuple[str, ...]:
    settings = {
        "confidence": None if rule.confidence is None else format_number(rule.confidence),
        "recovery_margin": format_number(rule.recovery_margin) if rule.recovery_margin else None,
        "quiet_hours": None
        if rule.quiet_hours is None
        else f"{rule.quiet_hours.start:%H:%M}-{rule.quiet_hours.end:%H:%M}",
        "business_days": None if rule.business_days is None else ",".join(rule.business_days),
        "repeat_interval": None if rule.repeat_interval_seconds is None else duration(rule.repeat_interval_seconds),
        "timezone": rule.timezone,
    }
    return tuple(f"{name} {value}" for name, value in settings.items() if value is not None)


def translate(rules: RulesFile, catalog: Catalog) -> tuple[list[AlertingRule], list[Untranslated]]:
    """Each rule of ``rules`` as a Prometheus alerting rule, or the reason it cannot be one."""
    kpis = {kpi.id: kpi for kpi in catalog.kpis}
    exported = exported_counters(catalog)
    recorded, no_rollup = recording_rules(catalog)
    rollups = {rule.kpi.id: rule for rule in recorded}
    skipped = {item.kpi.id: item for item in no_rollup}
    translated: list[AlertingRule] = []
    untranslated: list[Untranslated] = []
    for rule in rules.rules:
        kpi = kpis[rule.kpi]
        try:
            series = _series(rule, kpi, rollups, skipped, exported)
            expr, words = _condition(rule, kpi, series)
            sample = ""
            if rule.min_sample > 0:
                enough, sample = _denominator(rule, kpi, exported)
                expr += f"\nand {enough}"
        except ValueError as exc:
            untranslated.append(Untranslated(rule, str(exc)))
            continue
        value = f"{{{{ $value | {VALUE_FORMAT.get(kpi.unit, 'humanize')} }}}}"
        scope = SCOPE_WORDS[rule.scope.kind]
        annotations = {
            "summary": f"{kpi.name} {scope} is {value} {WINDOW_WORDS[rule.window]}",
            "description": f"{rule.name}: {kpi.name} {scope} {WINDOW_WORDS[rule.window]} is {words}{sample}. "
            f"From kpimon rule {rule.id}.",
        }
        if rules.grafana_url is not None:
            annotations["dashboard"] = _dashboard(rules.grafana_url, rule, kpi)
        labels = {"severity": rule.severity, "kpimon_rule": rule.id}
        translated.append(AlertingRule(rule, kpi, alert_name(rule.id), expr, labels, annotations, _left_out(rule)))
    return translated, untranslated


def _comment(text: str, indent: str = "#   ") -> list[str]:
    """``text`` as comment lines of at most 120 characters, continuation lines indented."""
    return textwrap.wrap(text, 120, initial_indent=indent, subsequent_indent=indent + "  ", break_on_hyphens=False)


def command(source: str) -> str:
    """The command that generates the alerts of the rules file ``source``."""
    default = RULES_FILE.relative_to(REPO).as_posix()
    return "python deploy/prometheus/generate_alerts.py" + ("" if source == default else f" --rules {source}")


def render(rules: RulesFile, catalog: Catalog, source: str) -> str:
    translated, untranslated = translate(rules, catalog)
    lines = [
        f"# Generated by `{command(source)}` from {source}: do not edit by hand.",
        "#",
        "# kpimon's alert rules as Prometheus alerting rules, for teams that send alerts through Alertmanager",
        "# instead of kpimon's engine (deploy/README.md). They read the recording rules of kpimon.rules.yml and keep",
        "# the series' labels (window, scope, team, rep, channel, campaign, job): Alertmanager routes on team and",
        "# severity (deploy/alertmanager/alertmanager.yml). kpimon_rule names the rule translated.",
        "# Translated: below, above; pace (under the goal's kpimon_goal_expected); drop against the previous 1h, 24h,",
        "# 7d or 30d (offset by the window) or the same hours last week of 1h and 24h (offset 1w); min_sample on the",
        "# summed denominator; for; severity; a dashboard link. The 7d and 30d baselines end exactly one window ago",
        "# (kpimon's engine takes whole local days), and offset 30d needs more than 30 days of Prometheus storage.",
        "# Never translated: routes (Alertmanager's routing tree), confidence, recovery_margin, quiet_hours,",
        "# business_days, repeat_interval, digests.",
    ]
    if untranslated:
        lines += ["#", "# Rules not translated:"]
        for item in untranslated:
            lines += _comment(f"{item.source.id}: {item.reason}")
    left_out = [rule for rule in translated if rule.left_out]
    if left_out:
        lines += ["#", "# Settings of the rules translated that only kpimon's engine applies:"]
        for rule in left_out:
            lines += _comment(f"{rule.source.id}: {'; '.join(rule.left_out)}")
        names = [
            name for name in NOT_TRANSLATED if any(part.startswith(f"{name} ") for r in left_out for part in r.left_out)
        ]
        lines += ["#   why:"]
        for name in names:
            lines += _comment(f"{name}: {NOT_TRANSLATED[name]}", indent="#     ")
    lines += ["", "groups:", f"  - name: {GROUP_NAME}", "    rules:" + ("" if translated else " []")]
    for rule in translated:
        lines += [
            f"      # {rule.source.id}: {rule.kpi.name} ({rule.kpi.formula.source})",
            f"      - alert: {rule.alert}",
        ]
        lines += ["        expr: |-", *(f"          {line}" for line in rule.expr.splitlines())]
        if rule.source.for_seconds > 0:
            lines.append(f"        for: {duration(rule.source.for_seconds)}")
        lines.append("        labels:")
        lines += [f"          {name}: {json.dumps(value)}" for name, value in rule.labels.items()]
        lines.append("        annotations:")
        lines += [f"          {name}: {json.dumps(value)}" for name, value in rule.annotations.items()]
    return "\n".join(lines) + "\n"


def _source_name(path: Path) -> str:
    resolved = path.resolve()
    return resolved.relative_to(REPO).as_posix() if resolved.is_relative_to(REPO) else str(path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, epilog="More: deploy/README.md."
    )
    parser.add_argument("--rules", type=Path, default=RULES_FILE, help=f"kpimon's alert rules (default: {RULES_FILE})")
    parser.add_argument("--catalog", type=Path, help="a YAML file extending the built-in KPI catalog")
    parser.add_argument("--output", type=Path, default=ALERTS_FILE, help=f"default: {ALERTS_FILE}")
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is not what would be generated")
    args = parser.parse_args(argv)
    catalog = load_catalog(args.catalog)
    source = _source_name(args.rules)
    text = render(load_rules(args.rules, catalog), catalog, source)
    return write_or_check(args.output, text, args.check, command(source))


if __name__ == "__main__":
    sys.exit(main())
