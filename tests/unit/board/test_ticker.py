from __future__ import annotations

from streams.board.ticker import Win, new_wins


def test_wins_are_the_rises_of_each_reps_deals_and_revenue_today() -> None:
    before = {("emea", "anna"): (1.0, 18_000.0), ("emea", "jan"): (2.0, 30_000.0)}
    now = {("emea", "anna"): (3.0, 40_000.0), ("emea", "jan"): (2.0, 30_000.0), ("amer", "mike"): (1.0, 5_000.0)}
    assert new_wins(before, now, at=100.0) == [
        Win(100.0, "emea", "anna", 2, 22_000.0),
        Win(100.0, "amer", "mike", 1, 5_000.0),
    ]


def test_a_fall_tells_nothing() -> None:
    # a new day, or a win replaced by a loss: no entry
    assert new_wins({("emea", "anna"): (2.0, 9.0)}, {("emea", "anna"): (0.0, 0.0)}, at=1.0) == []


def test_the_first_reading_lists_todays_wins_so_far_as_earlier() -> None:
    wins = new_wins(None, {("emea", "anna"): (1.0, 18_000.0), ("emea", "jan"): (0.0, 0.0)}, at=5.0)
    assert wins == [Win(5.0, "emea", "anna", 1, 18_000.0, earlier=True)]
