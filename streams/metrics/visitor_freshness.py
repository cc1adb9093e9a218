"""The unique visitors' trip through Redis: when those on /metrics were counted (one scrape late), and the
additions waiting to be written or dropped (Redis unreachable past the bound of streams.worker.visitor_store)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class VisitorsCountedCollector(Collector):
    """``kpimon_web_unique_visitors_counted_timestamp_seconds``, once a count has been taken."""

    def __init__(self, counted_at: Callable[[], float | None]) -> None:
        self._counted_at = counted_at

    @staticmethod
    def family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "kpimon_web_unique_visitors_counted_timestamp_seconds",
            "Unix time at which the unique visitors served were counted in Redis: a scrape serves the last "
            "count and starts the next one, so they are as fresh as the scrape before.",
        )

    def describe(self) -> Iterator[Metric]:
        yield self.family()

    def collect(self) -> Iterator[Metric]:
        counted_at = self._counted_at()
        if counted_at is None:
            return
        family = self.family()
        family.add_metric([], counted_at)
        yield family


class VisitorWritesCollector(Collector):
    """``kpimon_web_unique_visitor_writes_pending`` and ``..._dropped_total``: visitors not (yet) in Redis."""

    def __init__(self, pending: Callable[[], int], dropped: Callable[[], int]) -> None:
        self._pending = pending
        self._dropped = dropped

    @staticmethod
    def families() -> tuple[GaugeMetricFamily, CounterMetricFamily]:
        return (
            GaugeMetricFamily(
                "kpimon_web_unique_visitor_writes_pending",
                "Visitor additions waiting to be written to Redis (it is slow or unreachable).",
            ),
            CounterMetricFamily(
                "kpimon_web_unique_visitor_writes_dropped",
                "Visitor additions never written to Redis: the backlog was full while Redis was unreachable; "
                "the unique visitors undercount by up to this many.",
            ),
        )

    def describe(self) -> Iterator[Metric]:
        yield from self.families()

    def collect(self) -> Iterator[Metric]:
        pending, dropped = self.families()
        pending.add_metric([], self._pending())
        dropped.add_metric([], self._dropped())
        yield from (pending, dropped)
