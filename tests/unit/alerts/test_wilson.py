"""alerts.wilson: the Wilson score interval, checked against published values.

Reference values: R. G. Newcombe, "Two-sided confidence intervals for the single
proportion: comparison of seven methods", Statistics in Medicine 17 (1998) 857-872,
worked examples for method 3 (the score interval of E. B. Wilson, JASA 22 (1927)
209-212, without continuity correction), 95% confidence, 4 decimals. 0/10 is
closed form: the upper bound of 0 successes is z^2 / (n + z^2) = 3.8415 / 13.8415.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.wilson import wilson_interval


@pytest.mark.parametrize(
    ("successes", "trials", "lower", "upper"),
    [
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
        (29, 29, 0.8830, 1.0),
        (0, 10, 0.0, 0.2775),
    ],
)
def test_published_values_at_95_percent(successes: int, trials: int, lower: float, upper: float) -> None:
    low, high = wilson_interval(successes, trials, 0.95)
    assert (round(low, 4), round(high, 4)) == (lower, upper)


def test_wider_with_more_confidence_and_narrower_with_more_trials() -> None:
    low90, high90 = wilson_interval(3, 10, 0.90)
    low99, high99 = wilson_interval(3, 10, 0.99)
    assert low99 < low90 < 0.3 < high90 < high99
    low_many, high_many = wilson_interval(300, 1000, 0.90)
    assert low90 < low_many < 0.3 < high_many < high90


@pytest.mark.parametrize(
    ("successes", "trials", "confidence"),
    [(1, 0, 0.95), (1, -3, 0.95), (4, 3, 0.95), (-1, 3, 0.95), (1, 3, 0.0), (1, 3, 1.0), (1, math.inf, 0.95)],
)
def test_rejects_impossible_input(successes: float, trials: float, confidence: float) -> None:
    with pytest.raises(ValueError):
        wilson_interval(successes, trials, confidence)


@given(
    trials=st.integers(min_value=1, max_value=10_000),
    share=st.floats(min_value=0, max_value=1),
    confidence=st.sampled_from([0.8, 0.9, 0.95, 0.99]),
)
def test_bounds_solve_the_score_equation(trials: int, share: float, confidence: float) -> None:
    """Each bound p inside (0, 1) is where the score statistic |p_hat - p| / sqrt(p (1 - p) / n) equals z."""
    successes = round(share * trials)
    p_hat = successes / trials
    low, high = wilson_interval(successes, trials, confidence)
    assert 0 <= low <= p_hat <= high <= 1
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    for bound in (low, high):
        if 1e-9 < bound < 1 - 1e-9:
            score = abs(p_hat - bound) / math.sqrt(bound * (1 - bound) / trials)
            assert score == pytest.approx(z, rel=1e-6)
