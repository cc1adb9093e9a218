"""``kpimon_ingest_retries_total``: failed attempts to write a batch (Kafka, the local store, the OS), by error."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector


class RetryCollector(Collector):
    def __init__(self, counts: Callable[[], Mapping[str, int]]) -> None:
        self._counts = counts

    @staticmethod
    def family() -> CounterMetricFamily:
        return CounterMetricFamily(
            "kpimon_ingest_retries",
            "Attempts to write a batch that failed and were retried (no message is dead-lettered for them), by error.",
            labels=["error"],
        )

    def describe(self) -> Iterator[Metric]:
        yield self.family()

    def collect(self) -> Iterator[Metric]:
        family = self.family()
        for error, count in sorted(self._counts().items()):
            family.add_metric([error], count)
        yield family
