from __future__ import annotations

from streams.board.freshness import SourceTracker, TargetState

A, B = "http://127.0.0.1:6066/metrics", "http://127.0.0.1:6067/metrics"


def test_as_of_is_the_oldest_last_successful_scrape() -> None:
    tracker = SourceTracker()
    targets = [TargetState(A, True, 100.0), TargetState(B, True, 100.4)]
    freshness = tracker.observe(targets)
    assert freshness.complete and freshness.problem is None and freshness.newest_scrape == 100.4
    assert tracker.as_of(targets) == 100.0


def test_a_target_down_makes_the_board_incomplete_and_its_age_grow() -> None:
    tracker = SourceTracker()
    tracker.observe([TargetState(A, True, 100.0), TargetState(B, True, 100.0)])
    down = [TargetState(A, True, 105.0), TargetState(B, False, 105.0)]
    freshness = tracker.observe(down)
    assert not freshness.complete
    assert freshness.problem == "1 of 2 workers not answering"  # no address on the wall
    assert freshness.down == (B,)
    assert tracker.as_of(down) == 100.0  # B's last good scrape


def test_no_target_or_one_never_up_has_no_time() -> None:
    tracker = SourceTracker()
    assert tracker.observe([]).problem == "Prometheus scrapes no kpimon worker (check its scrape config)"
    assert tracker.as_of([TargetState(A, False, 1.0)]) is None
