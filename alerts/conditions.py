"""One rule's condition against one observation: breached, clear, or unknown (not enough to judge).

Pure: the time is passed in, and nothing here raises on the data (a missing
value, a zero baseline or a tiny sample gives ``unknown``, never an error).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

from alerts.model import Observation
from alerts.rules import AlertRule
from alerts.wilson import wilson_interval
from schemas.goals import expected_by_now

Verdict = Literal["breached", "clear", "unknown"]
_BASELINE_WORDS = {"previous_period": "the previous period", "same_hour_last_week": "the same hour last week"}


@dataclass(frozen=True)
class Check:
    """The verdict, the absolute threshold compared against (None when it cannot be known) and human words.

    ``description``: "below 0.2", "30% below the previous period (0.31)",
    "behind the pace to 50 (29.2 expected by now)".
    """

    verdict: Verdict
    threshold: float | None
    description: str


def format_number(value: float) -> str:
    """Short human numbers: 0.2, 0.217, 29.2, 1250."""
    if not math.isfinite(value):
        return str(value)
    if value == int(value):
        return str(int(value))
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 1:
        return f"{value:.1f}"
    return f"{value:.3g}"


def threshold_of(rule: AlertRule, observation: Observation, now: float, tz: ZoneInfo) -> tuple[float | None, str]:
    """The absolute threshold at ``now`` and the condition in words; None without a usable baseline or goal."""
    condition = rule.condition
    if condition.below is not None:
        return condition.below, f"below {format_number(condition.below)}"
    if condition.above is not None:
        return condition.above, f"above {format_number(condition.above)}"
    if condition.drop is not None:
        drop = condition.drop
        baseline = observation.baseline
        words = f"{format_number(drop.percent)}% below {_BASELINE_WORDS[drop.baseline]}"
        if baseline is None or not math.isfinite(baseline) or baseline <= 0:
            return None, words
        return baseline * (1 - drop.percent / 100), f"{words} ({format_number(baseline)})"
    assert condition.pace is not None
    goal = observation.goal
    if goal is None:
        return None, f"behind the pace to goal {condition.pace.goal} (not in force for this scope)"
    expected = expected_by_now(goal, now, tz)
    return expected, f"behind the pace to {format_number(goal.target)} ({format_number(expected)} expected by now)"


def _sample_too_small(rule: AlertRule, observation: Observation) -> bool:
    if rule.min_sample <= 0:
        return False
    return observation.denominator is None or not observation.denominator >= rule.min_sample


def _confident(rule: AlertRule, observation: Observation, threshold: float) -> bool | None:
    """Whether the Wilson interval lies wholly past the threshold; None without counts to compute it from."""
    if rule.confidence is None:
        return True
    trials, successes = observation.denominator, observation.numerator
    if trials is None or successes is None or not math.isfinite(trials) or not trials > 0:
        return None
    if not math.isfinite(successes):
        return None
    lower, upper = wilson_interval(min(max(successes, 0.0), trials), trials, rule.confidence)
    return lower > threshold if rule.condition.breached_above else upper < threshold


def check(rule: AlertRule, observation: Observation, now: float, tz: ZoneInfo, firing: bool) -> Check:
    """Judge ``observation`` against the rule's condition at ``now`` (local calendar in ``tz``).

    While ``firing``, the rule stays breached until the value is back past the
    threshold by ``recovery_margin`` (no Wilson gate: the gate guards entering,
    not leaving). Otherwise a breach needs the value past the threshold and,
    with ``confidence``, the whole Wilson interval past it too.
    """
    threshold, words = threshold_of(rule, observation, now, tz)
    value = observation.value
    if threshold is None or value is None or not math.isfinite(value) or _sample_too_small(rule, observation):
        return Check("unknown", threshold, words)
    above = rule.condition.breached_above
    if firing:
        margin = rule.recovery_margin
        recovered = value <= threshold - margin if above else value >= threshold + margin
        return Check("clear" if recovered else "breached", threshold, words)
    if not (value > threshold if above else value < threshold):
        return Check("clear", threshold, words)
    confident = _confident(rule, observation, threshold)
    if confident is None:
        return Check("unknown", threshold, words)
    return Check("breached" if confident else "clear", threshold, words)
