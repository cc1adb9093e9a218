"""Short pauses of Python's garbage collector: what lives long is frozen out of its full collections.

A worker keeps its state's hot part as Python objects (the decoded bucket groups, the window totals
behind /metrics): with many scopes, millions of them. CPython's full collection walks every tracked
object, which held the loop (and so the ingest and every scrape) for 0.4 to 1.3 s at 1,000 reps, a
few dozen times an hour. Almost all of those objects are alive and stay so, and what they hold is
freed by reference counting when a group is evicted: they have no cycles for the collector to find.

``CollectorPacer`` calls ``gc.freeze()`` every ``FREEZE_SECONDS``: the objects alive then move to the
permanent generation, which collections skip, so a full collection walks only what was made since
(seconds of work, not the whole state). The cost is that cyclic garbage frozen while still alive is
not collected; every ``THAW_SECONDS`` ``gc.unfreeze()`` gives the next full collection everything
again, one long pause an hour instead of one a minute. ``kpimon_gc_frozen_objects`` shows how many
objects the collections skip.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

FREEZE_SECONDS = 60.0
THAW_SECONDS = 3600.0


class CollectorPacer:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._thawed_at = clock()

    def step(self) -> None:
        """Freeze what is alive now, or thaw everything if the last thaw is ``THAW_SECONDS`` old."""
        now = self._clock()
        if now - self._thawed_at >= THAW_SECONDS:
            gc.unfreeze()
            self._thawed_at = now
        else:
            gc.freeze()

    async def run(self) -> None:
        while True:
            await asyncio.sleep(FREEZE_SECONDS)
            self.step()


class FrozenObjectsCollector(Collector):
    """``kpimon_gc_frozen_objects``: the objects in the permanent generation, skipped by every collection."""

    @staticmethod
    def family(value: float | None = None) -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "kpimon_gc_frozen_objects",
            f"Objects the garbage collector skips: what was alive at the last freeze (every {FREEZE_SECONDS:.0f} s; "
            f"all are given back every {THAW_SECONDS:.0f} s).",
            value=value,
        )

    def describe(self) -> Iterator[Metric]:
        yield self.family()

    def collect(self) -> Iterator[Metric]:
        yield self.family(gc.get_freeze_count())
