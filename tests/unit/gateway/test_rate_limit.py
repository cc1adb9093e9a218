"""The token bucket behind 429 + Retry-After, with times passed in."""

from __future__ import annotations

import pytest

from streams.gateway.rate_limit import TokenBucket


def test_a_burst_then_one_request_per_interval() -> None:
    bucket = TokenBucket(rate=2.0, burst=3)
    assert [bucket.take(100.0) for _ in range(3)] == [0, 0, 0]
    assert bucket.take(100.0) == 1  # 1 token needs 0.5 s: Retry-After rounds up to whole seconds
    assert bucket.take(100.5) == 0  # refilled by 0.5 s x 2/s
    assert bucket.take(100.5) == 1
    assert bucket.take(110.0) == 0
    assert bucket.take(110.0) == 0
    assert bucket.take(110.0) == 0  # full again (3), never more than the burst
    assert bucket.take(110.0) == 1


def test_slow_rates_ask_for_a_longer_wait() -> None:
    bucket = TokenBucket(rate=0.1, burst=1)
    assert bucket.take(0.0) == 0
    assert bucket.take(0.0) == 10
    assert bucket.take(4.0) == 6  # 0.4 tokens there: 0.6 more take 6 s
    assert bucket.take(10.0) == 0


def test_a_clock_going_back_adds_nothing() -> None:
    bucket = TokenBucket(rate=1.0, burst=1)
    assert bucket.take(50.0) == 0
    assert bucket.take(40.0) == 1


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 5), (1, 0.5)])
def test_refuses_unusable_limits(rate: float, burst: float) -> None:
    with pytest.raises(ValueError, match="rate"):
        TokenBucket(rate, burst)
