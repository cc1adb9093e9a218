"""Slack messages: valid Block Kit within Slack's limits, a text fallback, values formatted by unit."""

from __future__ import annotations

import math
from typing import Any

import pytest

from alerts.digests import BehindGoal
from alerts.slack import (
    DigestRow,
    digest_message,
    escape,
    format_change,
    format_duration,
    format_value,
    slack_date,
    slack_message,
    truncate,
    utc_iso,
)
from schemas.scopes import Scope
from tests.unit.alerts.delivery_examples import T0, alert_event

GRAFANA = "https://grafana.example.com/d/kpimon-sales?var-team=emea"
TEXT_TYPES = {"plain_text", "mrkdwn"}


def texts_of(message: dict[str, Any]) -> list[str]:
    """Every text in the message's blocks."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") in TEXT_TYPES:
                found.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(message["blocks"])
    return found


def assert_valid_block_kit(message: dict[str, Any]) -> None:
    """The parts of Block Kit's schema and limits these messages use."""
    assert set(message) == {"text", "blocks"}
    assert isinstance(message["text"], str) and 0 < len(message["text"]) <= 4000
    blocks = message["blocks"]
    assert 0 < len(blocks) <= 50
    for block in blocks:
        kind = block["type"]
        if kind == "header":
            assert set(block) == {"type", "text"}
            assert block["text"]["type"] == "plain_text" and 0 < len(block["text"]["text"]) <= 150
        elif kind == "section":
            assert set(block) <= {"type", "text", "fields"}
            assert block["text"]["type"] in TEXT_TYPES and 0 < len(block["text"]["text"]) <= 3000
            fields = block.get("fields", [])
            assert len(fields) <= 10
            assert all(field["type"] in TEXT_TYPES and 0 < len(field["text"]) <= 2000 for field in fields)
        elif kind == "context":
            assert 0 < len(block["elements"]) <= 10
            assert all(
                element["type"] in TEXT_TYPES and 0 < len(element["text"]) <= 3000 for element in block["elements"]
            )
        elif kind == "actions":
            assert 0 < len(block["elements"]) <= 25
            for button in block["elements"]:
                assert button["type"] == "button" and button["text"]["type"] == "plain_text"
                assert len(button["text"]["text"]) <= 75 and len(button["url"]) <= 3000
                assert 0 < len(button["action_id"]) <= 255
        else:
            pytest.fail(f"unexpected block type {kind!r}")


def fields_of(message: dict[str, Any]) -> dict[str, str]:
    """The section's fields as label -> value."""
    section = next(block for block in message["blocks"] if block["type"] == "section")
    pairs = (field["text"].split("\n", 1) for field in section["fields"])
    return {label.strip("*"): value for label, value in pairs}


def test_a_firing_message_has_header_fields_context_and_grafana_button() -> None:
    message = slack_message(alert_event(), GRAFANA)
    assert_valid_block_kit(message)
    assert [block["type"] for block in message["blocks"]] == ["header", "section", "context", "actions"]
    assert message["blocks"][0]["text"]["text"] == ":rotating_light: Firing: Call connect rate · team emea"
    assert fields_of(message) == {
        "Current": "18.2%",
        "Threshold": "25.0%",
        "Sample size": "137",
        "Window": "1h",
        "Firing since": "<!date^1764496800^{date_short_pretty} {time}|2025-11-30T10:00:00Z>",
        "Severity": "critical",
    }
    assert "below 25.0%" in message["blocks"][1]["text"]["text"]
    assert "emea-connect-rate" in message["blocks"][2]["elements"][0]["text"]
    assert message["blocks"][3]["elements"][0]["url"] == GRAFANA
    assert message["text"] == (
        ":rotating_light: Firing: Call connect rate (team emea): 18.2% vs threshold 25.0%, below 25.0% "
        "(since 2025-11-30T10:00:00Z). Rule: EMEA connect rate too low"
    )


@pytest.mark.parametrize(
    ("kind", "severity", "header_start"),
    [
        ("firing", "critical", ":rotating_light: Firing:"),
        ("firing", "warning", ":warning: Firing:"),
        ("firing", "info", ":information_source: Firing:"),
        ("repeat", "warning", ":warning: Still firing:"),
        ("resolved", "critical", ":white_check_mark: Resolved:"),
    ],
)
def test_the_header_emoji_and_words_follow_kind_and_severity(kind: str, severity: str, header_start: str) -> None:
    message = slack_message(alert_event(kind=kind, severity=severity, sequence=int(kind == "repeat")), None)
    assert_valid_block_kit(message)
    assert message["blocks"][0]["text"]["text"].startswith(header_start)
    assert message["text"].startswith(header_start)


def test_a_resolved_message_says_it_recovered_and_how_long_it_fired() -> None:
    message = slack_message(alert_event(kind="resolved", value=0.27, at=T0 + 4200), None)
    assert_valid_block_kit(message)
    section = message["blocks"][1]["text"]["text"]
    assert "recovered" in section and "after firing for 1 h 10 min" in section
    assert fields_of(message)["Fired for"] == "1 h 10 min"
    assert fields_of(message)["Resolved"] == slack_date(T0 + 4200)
    assert "recovered at 27.0% after firing for 1 h 10 min" in message["text"]


def test_a_repeat_names_its_reminder_number() -> None:
    message = slack_message(alert_event(kind="repeat", sequence=2), None)
    assert "reminder 2" in message["blocks"][2]["elements"][0]["text"]


def test_without_a_grafana_link_there_is_no_button_and_an_over_long_link_is_dropped() -> None:
    assert "actions" not in [block["type"] for block in slack_message(alert_event(), None)["blocks"]]
    too_long = "https://grafana.example.com/d/x?" + "v=1&" * 1000
    assert "actions" not in [block["type"] for block in slack_message(alert_event(), too_long)["blocks"]]


def test_over_long_names_are_cut_to_slack_limits_with_an_ellipsis() -> None:
    event = alert_event(
        kpi_name="Connect rate " * 40,
        rule_name="R" * 5000,
        condition="below the pace " * 400,
        rule_id="r" * 3000,
        window="w" * 2500,
        scope=Scope(team="t" * 300, rep="r" * 300),
    )
    message = slack_message(event, GRAFANA)
    assert_valid_block_kit(message)
    assert message["blocks"][0]["text"]["text"].endswith("…")
    assert message["blocks"][1]["text"]["text"].endswith("…")
    assert fields_of(message)["Window"].endswith("…")
    assert len(message["text"]) == 4000 and message["text"].endswith("…")


def test_text_that_slack_would_read_as_markup_is_escaped() -> None:
    """A rule named ``<!channel>`` must not page the whole channel."""
    message = slack_message(alert_event(rule_name="<!channel> & <@U123>", kpi_name="Win rate <b>"), None)
    assert "<!channel>" not in str(message) and "<@U123>" not in str(message)
    assert "&lt;!channel&gt; &amp; &lt;@U123&gt;" in message["blocks"][1]["text"]["text"]
    assert "&lt;!channel&gt;" in message["text"]


def test_a_value_without_data_reads_n_a_and_a_kpi_without_a_sample_size_shows_none() -> None:
    message = slack_message(alert_event(value=None, sample_size=None), None)
    assert_valid_block_kit(message)
    assert fields_of(message)["Current"] == "n/a" and "Sample size" not in fields_of(message)


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        (0.1823, "ratio", "18.2%"),
        (1.0, "ratio", "100.0%"),
        (1234.5, "currency", "1,234.50"),
        (0.005, "currency", "0.01"),
        (980.0, "currency_per_day", "980.00/day"),
        (45, "seconds", "45 s"),
        (750, "seconds", "12 min"),
        (5400, "seconds", "1 h 30 min"),
        (2 * 86400 + 4 * 3600 + 59, "seconds", "2 d 4 h"),
        (12.6, "count", "13"),
        (12345, "count", "12,345"),
        (None, "count", "n/a"),
        (math.nan, "ratio", "n/a"),
        (math.inf, "currency", "n/a"),
        (3.14159, "unknown_unit", "3.142"),
    ],
)
def test_values_are_formatted_by_unit(value: float | None, unit: str, expected: str) -> None:
    assert format_value(value, unit) == expected


@pytest.mark.parametrize(
    ("seconds", "expected"), [(0, "0 s"), (-5, "0 s"), (59.4, "59 s"), (60, "1 min"), (3600, "1 h 00 min")]
)
def test_durations(seconds: float, expected: str) -> None:
    assert format_duration(seconds) == expected


def test_times_are_utc_iso_and_slack_date_tokens_with_a_fallback() -> None:
    assert utc_iso(T0 + 0.9) == "2025-11-30T10:00:00Z"
    assert slack_date(T0) == "<!date^1764496800^{date_short_pretty} {time}|2025-11-30T10:00:00Z>"


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [("short", 10, "short"), ("abcdefghij", 5, "abcd…"), ("ab &amp; c", 5, "ab …"), ("a&lt;", 4, "a…")],
)
def test_truncate_never_leaves_half_an_entity(text: str, limit: int, expected: str) -> None:
    assert truncate(text, limit) == expected


def test_escape() -> None:
    assert escape("a < b & c > d") == "a &lt; b &amp; c &gt; d"


ROWS = [
    DigestRow("Calls", "count", 412, 380, goal=400),
    DigestRow("Call connect rate", "ratio", 0.27, 0.30, goal=0.25),
    DigestRow("Sales cycle", "seconds", 86400 * 23.4, 86400 * 25, goal=86400 * 21, good="down"),
    DigestRow("Revenue", "currency", 125430.5, 0.0),
    DigestRow("Cost per lead", "currency", 41.0, 45.0, goal=50.0, good="down"),
]


def test_a_digest_is_a_table_with_change_and_goal_markers() -> None:
    message = digest_message("Daily digest, team emea", ROWS)
    assert_valid_block_kit(message)
    assert message["blocks"][0]["text"]["text"] == ":bar_chart: Daily digest, team emea"
    table = message["blocks"][1]["text"]["text"]
    assert table.startswith("```\nKPI") and table.endswith("\n```")
    lines = table.splitlines()[1:-1]
    assert lines[1].split() == ["Calls", "412", "380", "+8.4%", "✓", "on", "goal", "(400)"]
    assert "-10.0%" in lines[2] and "on goal (25.0%)" in lines[2]
    assert "✗ behind goal (21 d 0 h)" in lines[3]
    assert lines[4].split() == ["Revenue", "125,430.50", "0.00", "n/a"]
    assert "on goal" in lines[5]  # lower is better for a cost
    assert "5 KPIs, 3 of 4 on goal" in message["blocks"][-1]["elements"][0]["text"]
    assert message["text"].splitlines()[:2] == [
        "Daily digest, team emea: 5 KPIs, 3 of 4 on goal",
        "Calls: 412 (+8.4%, on goal)",
    ]


BEHIND = [
    BehindGoal("emea-lukas", "emea", "rep-weekly-calls", "Calls", "count", None, 100),
    BehindGoal("emea-jan", "emea", "rep-weekly-calls", "Calls", "count", 60, 100),
    BehindGoal("emea-jan", "emea", "rep-weekly-revenue", "Revenue", "currency", 12500.5, 50000),
]


def test_a_weekly_review_lists_who_is_behind_a_goal() -> None:
    message = digest_message("Weekly digest for team emea: 2026-W49", ROWS, BEHIND)
    assert_valid_block_kit(message)
    assert message["blocks"][2]["text"]["text"] == "*Behind goal*"
    assert message["blocks"][3]["text"]["text"].splitlines()[1:-1] == [
        "emea-lukas           rep-weekly-calls         n/a of 100",
        "emea-jan             rep-weekly-calls         60 of 100 (60%)",
        "emea-jan             rep-weekly-revenue       12,500.50 of 50,000.00 (25%)",
    ]
    assert "5 KPIs, 3 of 4 on goal, 2 reps behind a goal" in message["blocks"][-1]["elements"][0]["text"]
    assert message["text"].splitlines()[-1] == (
        "Behind goal: emea-lukas rep-weekly-calls n/a of 100; emea-jan rep-weekly-calls 60 of 100 (60%); "
        "emea-jan rep-weekly-revenue 12,500.50 of 50,000.00 (25%)"
    )


def test_many_reps_behind_stay_within_slack_limits() -> None:
    behind = [BehindGoal(f"rep-{n}", "emea", "g", "Calls", "count", n, 1000) for n in range(500)]
    message = digest_message("Weekly digest", ROWS, behind)
    assert_valid_block_kit(message)
    assert message["blocks"][-2]["text"]["text"].splitlines()[1].startswith("... and ")
    assert "more reps behind" in message["blocks"][-2]["text"]["text"]


@pytest.mark.parametrize(
    ("value", "previous", "expected"),
    [(110, 100, "+10.0%"), (90, 100, "-10.0%"), (-5, -10, "+50.0%"), (5, 0, "n/a"), (None, 3, "n/a"), (3, None, "n/a")],
)
def test_change_against_the_previous_period(value: float | None, previous: float | None, expected: str) -> None:
    assert format_change(value, previous) == expected


def test_a_huge_digest_stays_within_slack_limits_and_says_what_it_left_out() -> None:
    rows = [
        DigestRow(f"KPI number {number} " + "x" * 40, "count", number, number + 1, goal=5) for number in range(3000)
    ]
    message = digest_message("Weekly digest " + "w" * 200, rows)
    assert_valid_block_kit(message)
    assert message["blocks"][-2]["text"]["text"].startswith("```\n... and ")
    assert len(message["text"]) <= 4000


def test_an_empty_digest_is_still_a_valid_message() -> None:
    message = digest_message("Daily digest", [])
    assert_valid_block_kit(message)
    assert message["text"] == "Daily digest: 0 KPIs"


def test_digest_names_cannot_break_the_code_block() -> None:
    message = digest_message("Digest", [DigestRow("Win ```rate``` <x>", "ratio", 0.5, 0.4)])
    table = message["blocks"][1]["text"]["text"]
    assert table.count("```") == 2 and "&lt;x&gt;" in table
