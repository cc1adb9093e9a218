"""How long the worker's event loop was held: a loop-lag probe, and the longest step of rendering /metrics.

Everything a worker does (ingest batches, timers, /metrics) shares one asyncio loop: while code runs
without awaiting, nothing else does. ``LoopLagProbe`` sleeps ``interval`` seconds again and again and
records how much later than asked it woke up: a loop held for 200 ms shows as a lag of about 200 ms.
``/metrics`` serves the largest lag of the last minute (``kpimon_event_loop_lag_seconds``), and the
longest step the scrapes themselves held the loop (``kpimon_metrics_render_step_seconds``): a
scrape renders in steps of a few milliseconds and lets other work run between them.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

WINDOW_SECONDS = 60
PROBE_INTERVAL_SECONDS = 0.01


class RecentMax:
    """The largest value recorded in the last ``seconds`` seconds (kept per second)."""

    def __init__(self, seconds: int = WINDOW_SECONDS) -> None:
        self._seconds = seconds
        self._slots: deque[list[float]] = deque()  # [second, largest value recorded in it], oldest first

    def record(self, now: float, value: float) -> None:
        second = float(int(now))
        if self._slots and self._slots[-1][0] == second:
            self._slots[-1][1] = max(self._slots[-1][1], value)
        else:
            self._slots.append([second, value])
        self._forget(now)

    def largest(self, now: float) -> float:
        self._forget(now)
        return max((value for _, value in self._slots), default=0.0)

    def _forget(self, now: float) -> None:
        while self._slots and self._slots[0][0] <= now - self._seconds:
            self._slots.popleft()


class LoopLagProbe:
    """Measures the loop's lag with a timer every ``interval`` seconds; ``run()`` until cancelled."""

    def __init__(
        self,
        interval: float = PROBE_INTERVAL_SECONDS,
        window_seconds: int = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self.clock = clock
        self.lag = RecentMax(window_seconds)
        self.render_steps = RecentMax(window_seconds)  # the longest steps of rendering /metrics

    async def run(self) -> None:
        while True:
            asked = self.clock()
            await asyncio.sleep(self.interval)
            woke = self.clock()
            self.lag.record(woke, max(0.0, woke - asked - self.interval))


class LoopLagCollector(Collector):
    def __init__(self, probe: LoopLagProbe) -> None:
        self._probe = probe

    @staticmethod
    def families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                "kpimon_event_loop_lag_seconds",
                f"Largest delay of a {PROBE_INTERVAL_SECONDS * 1000:.0f} ms timer on the worker's event loop over the "
                f"last {WINDOW_SECONDS} s: the longest time ingest, timers and /metrics waited for the loop.",
            ),
            GaugeMetricFamily(
                "kpimon_metrics_render_step_seconds",
                f"Longest time a /metrics scrape held the event loop at once over the last {WINDOW_SECONDS} s "
                "(it renders what changed in steps and lets ingest run between them).",
            ),
        )

    def describe(self) -> Iterator[Metric]:
        yield from self.families()

    def collect(self) -> Iterator[Metric]:
        lag, steps = self.families()
        now = self._probe.clock()
        lag.add_metric([], self._probe.lag.largest(now))
        steps.add_metric([], self._probe.render_steps.largest(now))
        yield lag
        yield steps
