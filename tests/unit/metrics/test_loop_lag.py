"""streams.metrics.loop_lag: the largest recent loop lag, measured by a timer that wakes up late."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
from prometheus_client import CollectorRegistry

from streams.metrics.loop_lag import LoopLagCollector, LoopLagProbe, RecentMax


@pytest.mark.parametrize(
    ("records", "now", "expected"),
    [
        ([], 100.0, 0.0),
        ([(100.2, 0.5), (100.7, 0.2)], 100.9, 0.5),  # one second: its largest
        ([(100.2, 0.5), (130.0, 0.2)], 130.5, 0.5),  # within the last minute
        ([(100.2, 0.5), (130.0, 0.2)], 160.5, 0.2),  # the second of 100 is more than 60 s ago
        ([(100.2, 0.5)], 200.0, 0.0),
    ],
)
def test_recent_max_is_the_largest_value_of_the_last_minute(
    records: list[tuple[float, float]], now: float, expected: float
) -> None:
    recent = RecentMax(60)
    for at, value in records:
        recent.record(at, value)
    assert recent.largest(now) == expected


async def test_the_probe_sees_the_loop_held_and_the_collector_serves_it() -> None:
    probe = LoopLagProbe(interval=0.005)
    task = asyncio.get_running_loop().create_task(probe.run())
    await asyncio.sleep(0.02)
    time.sleep(0.06)  # the loop held for 60 ms
    await asyncio.sleep(0.02)
    probe.render_steps.record(probe.clock(), 0.003)
    registry = CollectorRegistry()
    registry.register(LoopLagCollector(probe))
    lag = registry.get_sample_value("kpimon_event_loop_lag_seconds")
    assert lag is not None and 0.04 < lag < 1.0
    assert registry.get_sample_value("kpimon_metrics_render_step_seconds") == 0.003
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
