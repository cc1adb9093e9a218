"""alerts.conditions: one rule against one observation, with hand-computed thresholds.

Wilson bounds quoted in comments are at the rule's confidence, 4 decimals (see test_wilson.py).
"""

from __future__ import annotations

import math
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.conditions import Check, check, format_number
from alerts.model import Observation
from alerts.rules import AlertRule
from schemas.goals import Goal

BERLIN = ZoneInfo("Europe/Berlin")
FRIDAY_14 = datetime(2026, 3, 27, 14, tzinfo=BERLIN).timestamp()
FRIDAY_8 = datetime(2026, 3, 27, 8, tzinfo=BERLIN).timestamp()
SATURDAY_14 = datetime(2026, 3, 28, 14, tzinfo=BERLIN).timestamp()


def make_rule(condition: dict[str, object], kpi: str = "win_rate", window: str = "7d", **fields: object) -> AlertRule:
    base: dict[str, object] = {"id": "r", "kpi": kpi, "window": window, "condition": condition, "routes": ["x"]}
    return AlertRule.model_validate(base | fields)


BELOW = make_rule({"below": 0.2})
ABOVE = make_rule({"above": 100}, kpi="sales_cycle")
DROP = make_rule({"drop": {"percent": 30, "baseline": "previous_period"}})
DROP_WEEK = make_rule({"drop": {"percent": 50, "baseline": "same_hour_last_week"}}, kpi="calls", window="1h")
PACE = make_rule({"pace": {"goal": "rep-daily-calls"}}, kpi="calls", window="today")
DAILY = Goal(name="rep-daily-calls", kpi="calls", scope="rep", period="day", target=50, hours="09:00-18:00")
DAILY_WEEKDAYS = DAILY.model_copy(update={"business_days": ("mon", "tue", "wed", "thu", "fri")})
SAMPLED = make_rule({"below": 0.2}, min_sample=20)
CONFIDENT_BELOW = make_rule({"below": 0.2}, confidence=0.95)
CONFIDENT_ABOVE = make_rule({"above": 0.5}, kpi="call_connect_rate", confidence=0.95)
CONFIDENT_DROP = make_rule({"drop": {"percent": 30}}, confidence=0.95)
MARGIN_BELOW = make_rule({"below": 0.2}, recovery_margin=0.02)
MARGIN_ABOVE = make_rule({"above": 100}, kpi="sales_cycle", recovery_margin=10)

PREVIOUS = "30% below the previous period"


def ratio(numerator: float, denominator: float, baseline: float | None = None) -> Observation:
    return Observation(numerator / denominator, numerator, denominator, baseline)


@pytest.mark.parametrize(
    ("rule", "observation", "now", "firing", "expected"),
    [
        # below / above: strict comparisons
        (BELOW, Observation(0.1), 0, False, Check("breached", 0.2, "below 0.2")),
        (BELOW, Observation(0.2), 0, False, Check("clear", 0.2, "below 0.2")),
        (BELOW, Observation(0.0), 0, False, Check("breached", 0.2, "below 0.2")),
        (BELOW, Observation(None), 0, False, Check("unknown", 0.2, "below 0.2")),
        (BELOW, Observation(math.nan), 0, False, Check("unknown", 0.2, "below 0.2")),
        (ABOVE, Observation(101), 0, False, Check("breached", 100, "above 100")),
        (ABOVE, Observation(100), 0, False, Check("clear", 100, "above 100")),
        # min_sample: the ratio's denominator
        (SAMPLED, ratio(1, 19), 0, False, Check("unknown", 0.2, "below 0.2")),
        (SAMPLED, ratio(1, 20), 0, False, Check("breached", 0.2, "below 0.2")),
        (SAMPLED, Observation(0.05), 0, False, Check("unknown", 0.2, "below 0.2")),  # no denominator to judge by
        (SAMPLED, ratio(1, 19), 0, True, Check("unknown", 0.2, "below 0.2")),  # firing: unknown keeps it firing
        # drop: threshold = baseline * (1 - percent / 100)
        (DROP, Observation(0.2, baseline=0.31), 0, False, Check("breached", 0.31 * 0.7, f"{PREVIOUS} (0.31)")),
        (DROP, Observation(0.22, baseline=0.31), 0, False, Check("clear", 0.31 * 0.7, f"{PREVIOUS} (0.31)")),
        (DROP, Observation(0.2, baseline=None), 0, False, Check("unknown", None, PREVIOUS)),
        (DROP, Observation(0.2, baseline=0.0), 0, False, Check("unknown", None, PREVIOUS)),
        (DROP, Observation(0.2, baseline=math.inf), 0, False, Check("unknown", None, PREVIOUS)),
        (DROP, Observation(None, baseline=0.31), 0, False, Check("unknown", 0.31 * 0.7, f"{PREVIOUS} (0.31)")),
        (
            DROP_WEEK,
            Observation(40, baseline=120),
            0,
            False,
            Check("breached", 60, "50% below the same hour last week (120)"),
        ),
        # pace: goal * share of working time gone (14:00 with 09:00-18:00: 5/9)
        (
            PACE,
            Observation(20, goal=DAILY),
            FRIDAY_14,
            False,
            Check("breached", 250 / 9, "behind the pace to 50 (27.8 expected by now)"),
        ),
        (
            PACE,
            Observation(28, goal=DAILY),
            FRIDAY_14,
            False,
            Check("clear", 250 / 9, "behind the pace to 50 (27.8 expected by now)"),
        ),
        (
            PACE,
            Observation(0, goal=DAILY),
            FRIDAY_8,
            False,
            Check("clear", 0, "behind the pace to 50 (0 expected by now)"),
        ),
        (
            PACE,
            Observation(20, goal=DAILY),
            SATURDAY_14,
            False,
            Check("breached", 250 / 9, "behind the pace to 50 (27.8 expected by now)"),
        ),
        (
            PACE,
            Observation(0, goal=DAILY_WEEKDAYS),
            SATURDAY_14,
            False,
            Check("clear", 0, "behind the pace to 50 (0 expected by now)"),
        ),
        # a scope the goal does not cover (or not yet in force): nothing to judge
        (
            PACE,
            Observation(0),
            FRIDAY_14,
            False,
            Check("unknown", None, "behind the pace to goal rep-daily-calls (not in force for this scope)"),
        ),
        # confidence: the Wilson bound must be past the threshold too
        (CONFIDENT_BELOW, ratio(1, 10), 0, False, Check("clear", 0.2, "below 0.2")),  # upper 0.4042
        (CONFIDENT_BELOW, ratio(10, 200), 0, False, Check("breached", 0.2, "below 0.2")),  # upper 0.0896
        (CONFIDENT_BELOW, Observation(0.05), 0, False, Check("unknown", 0.2, "below 0.2")),  # no counts
        (CONFIDENT_BELOW, ratio(50, 200), 0, False, Check("clear", 0.2, "below 0.2")),  # not below at all
        (CONFIDENT_ABOVE, ratio(9, 10), 0, False, Check("breached", 0.5, "above 0.5")),  # lower 0.5958
        (CONFIDENT_ABOVE, ratio(6, 10), 0, False, Check("clear", 0.5, "above 0.5")),  # lower 0.3127
        (CONFIDENT_ABOVE, ratio(12, 10), 0, False, Check("breached", 0.5, "above 0.5")),  # > 1: taken as 10/10
        (CONFIDENT_DROP, ratio(14, 100, 0.31), 0, False, Check("clear", 0.31 * 0.7, f"{PREVIOUS} (0.31)")),  # 0.2214
        (CONFIDENT_DROP, ratio(10, 200, 0.31), 0, False, Check("breached", 0.31 * 0.7, f"{PREVIOUS} (0.31)")),
        # firing: clears only past the threshold by recovery_margin; the Wilson gate guards entering only
        (MARGIN_BELOW, Observation(0.21), 0, False, Check("clear", 0.2, "below 0.2")),
        (MARGIN_BELOW, Observation(0.21), 0, True, Check("breached", 0.2, "below 0.2")),
        (MARGIN_BELOW, Observation(0.22), 0, True, Check("clear", 0.2, "below 0.2")),
        (MARGIN_BELOW, Observation(0.19), 0, True, Check("breached", 0.2, "below 0.2")),
        (MARGIN_ABOVE, Observation(95), 0, True, Check("breached", 100, "above 100")),
        (MARGIN_ABOVE, Observation(90), 0, True, Check("clear", 100, "above 100")),
        (MARGIN_ABOVE, Observation(95), 0, False, Check("clear", 100, "above 100")),
        (BELOW, Observation(0.2), 0, True, Check("clear", 0.2, "below 0.2")),  # margin 0: back at the threshold
        (CONFIDENT_BELOW, ratio(1, 10), 0, True, Check("breached", 0.2, "below 0.2")),
        (CONFIDENT_BELOW, Observation(None), 0, True, Check("unknown", 0.2, "below 0.2")),
    ],
)
def test_check(rule: AlertRule, observation: Observation, now: float, firing: bool, expected: Check) -> None:
    result = check(rule, observation, now, BERLIN, firing)
    assert (result.verdict, result.description) == (expected.verdict, expected.description)
    if expected.threshold is None:
        assert result.threshold is None
    else:
        assert result.threshold == pytest.approx(expected.threshold)


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.2, "0.2"), (0.217, "0.217"), (0.21666, "0.217"), (27.777, "27.8"), (50.0, "50"), (1250.4, "1250"), (0, "0")],
)
def test_format_number(value: float, text: str) -> None:
    assert format_number(value) == text


CONDITIONS = [BELOW, ABOVE, DROP, PACE, SAMPLED, CONFIDENT_BELOW, CONFIDENT_ABOVE, CONFIDENT_DROP, MARGIN_BELOW]
ANY_NUMBER = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -1.0, 1.0]))


@given(
    rule=st.sampled_from(CONDITIONS),
    value=ANY_NUMBER,
    numerator=ANY_NUMBER,
    denominator=ANY_NUMBER,
    baseline=ANY_NUMBER,
    now=st.floats(min_value=0, max_value=4e9),
    firing=st.booleans(),
)
def test_never_raises(
    rule: AlertRule,
    value: float | None,
    numerator: float | None,
    denominator: float | None,
    baseline: float | None,
    now: float,
    firing: bool,
) -> None:
    """Whatever the window sums hold (zeros, negatives, infinities), a check gives a verdict, never an error."""
    result = check(rule, Observation(value, numerator, denominator, baseline), now, BERLIN, firing)
    assert result.verdict in ("breached", "clear", "unknown")
    if result.verdict != "unknown":
        assert result.threshold is not None and math.isfinite(result.threshold)
