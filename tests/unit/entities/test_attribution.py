"""streams.entities.attribution: each model on hand-worked examples, and every model adds up to the revenue."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from streams.entities.attribution import FIRST, LAST, LINEAR, MODEL_COUNTERS, Touch, attribution_facts, split_revenue

T0 = 1_700_000_000
SEARCH = Touch(T0, "s1", "paid_search", "search-brand")
NEWSLETTER = Touch(T0 + 100, "c1", "email", "newsletter")
ORGANIC = Touch(T0 + 200, "s2", "organic_search")
NEWSLETTER_AGAIN = Touch(T0 + 300, "c2", "email", "newsletter")


def test_a_hand_worked_journey() -> None:
    """1200 over: paid search (first), newsletter click, organic session, newsletter click (last)."""
    shares = split_revenue(1200.0, [NEWSLETTER_AGAIN, ORGANIC, SEARCH, NEWSLETTER])  # any order
    assert shares == {
        ("paid_search", "search-brand"): {FIRST: 1200.0, LINEAR: 300.0},
        ("email", "newsletter"): {LAST: 1200.0, LINEAR: 600.0},  # two of the four touches
        ("organic_search", None): {LINEAR: 300.0},
    }


def test_one_touch_takes_everything_in_every_model() -> None:
    assert split_revenue(500.0, [ORGANIC]) == {("organic_search", None): {FIRST: 500.0, LAST: 500.0, LINEAR: 500.0}}


def test_no_touch_goes_to_channel_unknown() -> None:
    assert split_revenue(80.0, []) == {("unknown", None): {FIRST: 80.0, LAST: 80.0, LINEAR: 80.0}}


def test_a_touch_given_twice_counts_once() -> None:
    assert split_revenue(90.0, [SEARCH, ORGANIC, SEARCH]) == split_revenue(90.0, [SEARCH, ORGANIC])


def test_ties_in_time_are_broken_by_the_touch_id() -> None:
    a, b = Touch(T0, "a", "social"), Touch(T0, "b", "events")
    shares = split_revenue(10.0, [b, a])
    assert shares[("social", None)][FIRST] == 10.0
    assert shares[("events", None)][LAST] == 10.0


def test_facts_count_at_the_win_and_ignore_touches_after_it() -> None:
    facts = attribution_facts(T0 + 250, 900.0, [SEARCH, NEWSLETTER, ORGANIC, NEWSLETTER_AGAIN])
    assert {(f.timestamp, f.team, f.rep, f.channel, f.campaign): f.counters for f in facts} == {
        (T0 + 250, None, None, "paid_search", "search-brand"): {FIRST: 900.0, LINEAR: 300.0},
        (T0 + 250, None, None, "email", "newsletter"): {LINEAR: 300.0},
        (T0 + 250, None, None, "organic_search", None): {LAST: 900.0, LINEAR: 300.0},
    }


touches = st.lists(
    st.builds(
        Touch,
        at=st.integers(T0, T0 + 1000),
        touch_id=st.text("abcdef", min_size=1, max_size=3),
        channel=st.sampled_from(["email", "paid_search", "social", "unknown"]),
        campaign=st.sampled_from([None, "k1", "k2"]),
    ),
    max_size=12,
)


@given(amount=st.floats(0, 1e9, allow_nan=False), touches=touches, seed=st.randoms())
def test_every_model_adds_up_to_the_revenue_whatever_the_order(
    amount: float, touches: list[Touch], seed: object
) -> None:
    unique = list({touch.touch_id: touch for touch in touches}.values())  # one touch per id, as events are
    shares = split_revenue(amount, unique)
    for model in MODEL_COUNTERS:
        total = sum(counters.get(model, 0.0) for counters in shares.values())
        assert math.isclose(total, amount, rel_tol=1e-9, abs_tol=1e-9)
    shuffled = list(unique)
    seed.shuffle(shuffled)  # type: ignore[attr-defined]
    assert split_revenue(amount, shuffled + shuffled[:3]) == shares
