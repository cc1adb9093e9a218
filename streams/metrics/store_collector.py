"""``kpimon_store_cache_bytes``: what the local store's RocksDB cache holds, against its fixed budget.

Every database of a worker (each table's, each partition's) shares one block cache, which also holds
the memtables (streams.worker.store). It fills as the store is written and read, up to its budget,
and then stays there: part of a worker's RSS that grows for a while and is bounded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class StoreCacheCollector(Collector):
    def __init__(self, usage: Callable[[], int], budget: int) -> None:
        self._usage = usage
        self._budget = budget

    @staticmethod
    def families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                "kpimon_store_cache_bytes",
                "Bytes held by the local store's shared RocksDB block cache, memtables included.",
            ),
            GaugeMetricFamily(
                "kpimon_store_cache_budget_bytes",
                "The shared RocksDB cache's budget: kpimon_store_cache_bytes stays at most about this.",
            ),
        )

    def describe(self) -> Iterator[Metric]:
        yield from self.families()

    def collect(self) -> Iterator[Metric]:
        usage, budget = self.families()
        usage.add_metric([], self._usage())
        budget.add_metric([], self._budget)
        yield from (usage, budget)
