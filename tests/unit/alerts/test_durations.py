"""alerts.durations: "30s", "5m", "2h", "1d" and plain seconds in rules files."""

from __future__ import annotations

import pytest

from alerts.durations import DurationError, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("5m", 300.0),
        ("2h", 7200.0),
        ("1d", 86400.0),
        ("1.5h", 5400.0),
        (" 10m ", 600.0),
        ("90", 90.0),
        ("0", 0.0),
        (0, 0.0),
        (45, 45.0),
        (2.5, 2.5),
    ],
)
def test_parses(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10x", "'10x' is not a duration (use seconds or a number with s, m, h or d: 30s, 5m, 2h, 1d)"),
        ("", "'' is not a duration (use seconds or a number with s, m, h or d: 30s, 5m, 2h, 1d)"),
        ("-5m", "'-5m' is not a duration (use seconds or a number with s, m, h or d: 30s, 5m, 2h, 1d)"),
        ("1h30m", "'1h30m' is not a duration (use seconds or a number with s, m, h or d: 30s, 5m, 2h, 1d)"),
        ("m", "'m' is not a duration (use seconds or a number with s, m, h or d: 30s, 5m, 2h, 1d)"),
        (-1, "-1 is not a duration: it must be a finite number of seconds, 0 or more"),
        (float("inf"), "inf is not a duration: it must be a finite number of seconds, 0 or more"),
        (float("nan"), "nan is not a duration: it must be a finite number of seconds, 0 or more"),
        (True, "True is not a duration (use seconds or a number with s, m, h or d: 30s, 5m, 2h, 1d)"),
        (None, "None is not a duration (use seconds or a number with s, m, h or d: 30s, 5m, 2h, 1d)"),
        ([5], "[5] is not a duration (use seconds or a number with s, m, h or d: 30s, 5m, 2h, 1d)"),
    ],
)
def test_rejects(text: object, message: str) -> None:
    with pytest.raises(DurationError) as info:
        parse_duration(text)
    assert str(info.value) == message
