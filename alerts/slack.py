"""Slack messages: Block Kit for one alert event and for a KPI digest, always with a text fallback.

Pure functions of their inputs. Every text is escaped for Slack's mrkdwn and cut to
Slack's limits (header 150 characters, section text 3000, a field 2000, 10 fields,
50 blocks, the ``text`` fallback 4000), so an over-long rule or KPI name cannot make
Slack refuse the message with a 400 (which the outbox would treat as permanent).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from alerts.digests import BehindGoal
from alerts.model import AlertEvent

HEADER_LIMIT = 150
SECTION_LIMIT = 3000
FIELD_LIMIT = 2000
FIELDS_LIMIT = 10
BLOCKS_LIMIT = 50
TEXT_LIMIT = 4000
BUTTON_TEXT_LIMIT = 75
URL_LIMIT = 3000
ELLIPSIS = "…"

_EMOJI = {"critical": ":rotating_light:", "warning": ":warning:", "info": ":information_source:"}
_STATUS = {"firing": "Firing", "repeat": "Still firing", "resolved": "Resolved"}


def truncate(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, ending with an ellipsis when cut; never half an ``&amp;``."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    entity = cut.rfind("&")
    if entity != -1 and ";" not in cut[entity:] and len(cut) - entity < len("&amp;"):
        cut = cut[:entity]
    return cut + ELLIPSIS


def escape(text: str) -> str:
    """Text made literal in Slack mrkdwn: ``&``, ``<`` and ``>`` as entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def utc_iso(epoch_seconds: float) -> str:
    """``2024-03-05T14:30:00Z``: whole seconds, UTC."""
    moment = datetime.fromtimestamp(epoch_seconds, UTC).replace(microsecond=0)
    return moment.isoformat().replace("+00:00", "Z")


def slack_date(epoch_seconds: float) -> str:
    """Slack's date token (shown in the reader's time zone), with the UTC ISO time as its fallback."""
    return f"<!date^{int(epoch_seconds)}^{{date_short_pretty}} {{time}}|{utc_iso(epoch_seconds)}>"


def format_duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``2 h 05 min``, ``3 d 4 h``: two units at the most."""
    total = max(0, round(seconds))
    if total < 60:
        return f"{total} s"
    minutes, _ = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def format_value(value: float | None, unit: str) -> str:
    """A KPI value for people: ratio as %, currency with 2 decimals, seconds as h/min, counts as integers."""
    if value is None or not math.isfinite(value):
        return "n/a"
    if unit == "ratio":
        return f"{value * 100:.1f}%"
    if unit == "currency":
        return f"{value:,.2f}"
    if unit == "currency_per_day":
        return f"{value:,.2f}/day"
    if unit == "seconds":
        return format_duration(value)
    if unit == "count":
        return f"{round(value):,}"
    return f"{value:,.4g}"


def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": truncate(text, limit), "emoji": True}


def _mrkdwn(text: str, limit: int) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": truncate(text, limit)}


def _field(label: str, value: str) -> dict[str, Any]:
    return _mrkdwn(f"*{label}*\n{value}", FIELD_LIMIT)


def _event_emoji(event: AlertEvent) -> str:
    return ":white_check_mark:" if event.kind == "resolved" else _EMOJI[event.severity]


def _event_fields(event: AlertEvent) -> list[dict[str, Any]]:
    """Current vs threshold, sample size (ratio KPIs: the denominator; left out when there is none), window, since."""
    fields = [
        _field("Current", format_value(event.value, event.unit)),
        _field("Threshold", format_value(event.threshold, event.unit)),
    ]
    if event.sample_size is not None:
        fields.append(_field("Sample size", format_value(event.sample_size, "count")))
    fields += [_field("Window", escape(event.window)), _field("Firing since", slack_date(event.since))]
    if event.kind == "resolved":
        fields += [
            _field("Resolved", slack_date(event.at)),
            _field("Fired for", format_duration(event.at - event.since)),
        ]
    else:
        fields.append(_field("Severity", event.severity))
    return fields[:FIELDS_LIMIT]


def _event_summary(event: AlertEvent) -> str:
    """The section text (mrkdwn): what happened in one or two sentences."""
    rule = f"*{escape(event.rule_name)}*"
    if event.kind == "resolved":
        return (
            f"{rule} recovered: {escape(event.kpi_name)} is {format_value(event.value, event.unit)} again "
            f"after firing for {format_duration(event.at - event.since)}.\nCondition was: {escape(event.condition)}"
        )
    return f"{rule}: {escape(event.kpi_name)} is {format_value(event.value, event.unit)}, {escape(event.condition)}."


def _event_fallback(event: AlertEvent) -> str:
    """The top-level ``text``: notifications, screen readers and clients without Block Kit show it."""
    head = f"{_event_emoji(event)} {_STATUS[event.kind]}: {event.kpi_name} ({event.scope.describe()})"
    value = format_value(event.value, event.unit)
    threshold = format_value(event.threshold, event.unit)
    if event.kind == "resolved":
        detail = f"recovered at {value} after firing for {format_duration(event.at - event.since)}"
    else:
        detail = f"{value} vs threshold {threshold}, {event.condition} (since {utc_iso(event.since)})"
    return truncate(escape(f"{head}: {detail}. Rule: {event.rule_name}"), TEXT_LIMIT)


def slack_message(event: AlertEvent, grafana_link: str | None) -> dict[str, Any]:
    """The Slack incoming-webhook payload for ``event``; a link to Grafana as a button when given."""
    header = f"{_event_emoji(event)} {_STATUS[event.kind]}: {event.kpi_name} · {event.scope.describe()}"
    context = (
        f"kpimon · rule `{escape(event.rule_id)}` · KPI `{escape(event.kpi_id)}` · {event.severity}"
        f" · episode {event.episode}" + (f", reminder {event.sequence}" if event.kind == "repeat" else "")
    )
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": _plain(header, HEADER_LIMIT)},
        {"type": "section", "text": _mrkdwn(_event_summary(event), SECTION_LIMIT), "fields": _event_fields(event)},
        {"type": "context", "elements": [_mrkdwn(context, FIELD_LIMIT)]},
    ]
    if grafana_link and len(grafana_link) <= URL_LIMIT:
        button = {
            "type": "button",
            "text": _plain("Open in Grafana", BUTTON_TEXT_LIMIT),
            "url": grafana_link,
            "action_id": "open_grafana",
        }
        blocks.append({"type": "actions", "elements": [button]})
    return {"text": _event_fallback(event), "blocks": blocks[:BLOCKS_LIMIT]}


@dataclass(frozen=True)
class DigestRow:
    """One KPI in a digest: its value this period and the previous one, and its goal if it has one."""

    kpi_name: str
    unit: str
    value: float | None
    previous: float | None
    goal: float | None = None
    good: Literal["up", "down"] = "up"  # which direction is better: decides "on goal" for costs and cycle times


_COLUMNS = ((26, "<"), (13, ">"), (13, ">"), (8, ">"))  # KPI, value, previous, change; then the goal, unpadded


def _table_line(name: str, value: str, previous: str, change: str, goal: str) -> str:
    cells = [truncate(name.replace("`", "'"), _COLUMNS[0][0]), value, previous, change]
    padded = " ".join(f"{cell:{align}{width}}" for cell, (width, align) in zip(cells, _COLUMNS, strict=True))
    return f"{padded}  {goal}".rstrip()


def format_change(value: float | None, previous: float | None) -> str:
    """The change against the previous period in %: ``+12.5%``, ``-3.0%``; ``n/a`` without a base."""
    if value is None or previous is None or previous == 0 or not (math.isfinite(value) and math.isfinite(previous)):
        return "n/a"
    return f"{(value - previous) / abs(previous) * 100:+.1f}%"


def goal_marker(row: DigestRow) -> str:
    """``on goal``, ``behind goal``, or "" when the row has no goal."""
    if row.goal is None:
        return ""
    if row.value is None:
        return "behind goal"
    on_goal = row.value >= row.goal if row.good == "up" else row.value <= row.goal
    return "on goal" if on_goal else "behind goal"


def _digest_line(row: DigestRow) -> str:
    marker = goal_marker(row)
    goal = f"{'✓' if marker == 'on goal' else '✗'} {marker} ({format_value(row.goal, row.unit)})" if marker else ""
    value, previous = format_value(row.value, row.unit), format_value(row.previous, row.unit)
    return _table_line(row.kpi_name, value, previous, format_change(row.value, row.previous), goal)


def _code_sections(lines: Sequence[str], max_sections: int, what: str = "KPIs") -> list[dict[str, Any]]:
    """The table as code blocks, each under the section limit; rows that do not fit are counted, not dropped."""
    fence = "```"
    budget = SECTION_LIMIT - 2 * len(fence) - 2
    chunks: list[list[str]] = [[]]
    size = 0
    for line in lines:
        cost = len(line) + 1
        if chunks[-1] and size + cost > budget:
            chunks.append([])
            size = 0
        chunks[-1].append(truncate(line, budget))
        size += cost
    if len(chunks) > max_sections:
        hidden = sum(len(chunk) for chunk in chunks[max_sections - 1 :])
        chunks = [*chunks[: max_sections - 1], [f"... and {hidden} more {what}"]]
    texts = (f"{fence}\n" + "\n".join(chunk) + f"\n{fence}" for chunk in chunks)
    return [{"type": "section", "text": _mrkdwn(text, SECTION_LIMIT)} for text in texts]


def _digest_fallback(title: str, summary: str, rows: Sequence[DigestRow], behind: Sequence[BehindGoal]) -> str:
    lines = [f"{title}: {summary}"]
    for row in rows:
        marker = f", {goal_marker(row)}" if row.goal is not None else ""
        lines.append(
            f"{row.kpi_name}: {format_value(row.value, row.unit)} ({format_change(row.value, row.previous)}{marker})"
        )
    if behind:
        lines.append("Behind goal: " + "; ".join(" ".join(behind_line(row).split()) for row in behind))
    return truncate(escape("\n".join(lines)), TEXT_LIMIT)


def behind_line(row: BehindGoal) -> str:
    """``emea-jan      rep-weekly-calls   60 of 100 (60%)``: a rep short of a goal."""
    share = f" ({row.value / row.target * 100:.0f}%)" if row.value is not None and math.isfinite(row.value) else ""
    reached = f"{format_value(row.value, row.unit)} of {format_value(row.target, row.unit)}{share}"
    rep = truncate(row.rep.replace("`", "'"), 20)
    return f"{rep:<20} {truncate(row.goal, 24):<24} {reached}"


def digest_message(title: str, rows: Sequence[DigestRow], behind: Sequence[BehindGoal] = ()) -> dict[str, Any]:
    """A daily or weekly digest: one table row per KPI (value, previous period, change in %, goal), then who is behind.

    ``behind``: the reps short of their goals of the period (``alerts.digests.reps_behind``), in a second table.
    """
    lines = [escape(_table_line("KPI", "value", "previous", "change", "goal"))]
    lines += [escape(_digest_line(row)) for row in rows]
    with_goal = sum(row.goal is not None for row in rows)
    on_goal = sum(goal_marker(row) == "on goal" for row in rows)
    summary = f"{len(rows)} KPIs" + (f", {on_goal} of {with_goal} on goal" if with_goal else "")
    if behind:
        summary += f", {len({row.rep for row in behind})} reps behind a goal"
    context = escape(f"kpimon · {summary} · change against the previous period")
    blocks: list[dict[str, Any]] = [{"type": "header", "text": _plain(f":bar_chart: {title}", HEADER_LIMIT)}]
    behind_sections = 3  # at most; with the title, the table keeps the rest of Slack's 50 blocks
    blocks += _code_sections(lines, BLOCKS_LIMIT - 2 - (1 + behind_sections if behind else 0))
    if behind:
        blocks.append({"type": "section", "text": _mrkdwn("*Behind goal*", SECTION_LIMIT)})
        blocks += _code_sections([escape(behind_line(row)) for row in behind], behind_sections, "reps behind")
    blocks.append({"type": "context", "elements": [_mrkdwn(context, FIELD_LIMIT)]})
    return {"text": _digest_fallback(title, summary, rows, behind), "blocks": blocks}
