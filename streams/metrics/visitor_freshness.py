"""When the unique visitors on /metrics were counted: they come from Redis one scrape late."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
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
