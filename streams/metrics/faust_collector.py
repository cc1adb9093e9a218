"""Faust's own sensors on /metrics, read from the app's monitor at scrape time.

Faust's Prometheus monitor updates labelled Prometheus metrics on every
message, which costs more than kpimon's whole fold; the default monitor
already counts what operators need, so this collector only reads it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from statistics import median

from faust.sensors import Monitor
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from streams.core.continuity import ContinuityGuard

LAG_LABELS = ("topic", "partition")


class FaustCollector(Collector):
    def __init__(
        self, monitor: Callable[[], Monitor], rebalances: Callable[[], int], continuity: ContinuityGuard
    ) -> None:
        self._monitor = monitor
        self._rebalances = rebalances
        self._continuity = continuity

    def describe(self) -> Iterator[Metric]:
        yield from self.families()

    @staticmethod
    def families() -> tuple[Metric, ...]:
        """The (empty) metric families this collector fills on every scrape."""
        return (
            CounterMetricFamily("kpimon_faust_messages_received", "Messages read from Kafka by this worker."),
            CounterMetricFamily("kpimon_faust_messages_sent", "Messages produced by this worker (changelogs too)."),
            CounterMetricFamily("kpimon_faust_rebalances", "Consumer group rebalances this worker took part in."),
            GaugeMetricFamily(
                "kpimon_faust_consumer_lag_messages",
                "Messages not yet committed: log end offset minus committed offset, per source partition.",
                labels=LAG_LABELS,
            ),
            GaugeMetricFamily(
                "kpimon_faust_commit_latency_seconds", "Median time of this worker's recent offset commits."
            ),
            CounterMetricFamily(
                "kpimon_faust_rewinds",
                "Times a source partition was re-read because Faust skipped messages (see docs/architecture.md).",
            ),
            CounterMetricFamily(
                "kpimon_faust_offset_gaps",
                "Source offsets that held no message (transaction markers, deleted segments), found by a re-read.",
            ),
        )

    def collect(self) -> Iterator[Metric]:
        monitor = self._monitor()
        received, sent, rebalances, lag, commit_latency, rewinds, gaps = self.families()
        assert isinstance(received, CounterMetricFamily) and isinstance(sent, CounterMetricFamily)
        assert isinstance(rebalances, CounterMetricFamily) and isinstance(lag, GaugeMetricFamily)
        assert isinstance(commit_latency, GaugeMetricFamily)
        assert isinstance(rewinds, CounterMetricFamily) and isinstance(gaps, CounterMetricFamily)
        received.add_metric([], monitor.messages_received_total)
        sent.add_metric([], monitor.messages_sent)
        rebalances.add_metric([], self._rebalances())
        for tp, end in sorted(monitor.tp_end_offsets.items()):
            committed = monitor.tp_committed_offsets.get(tp, 0)
            lag.add_metric([tp.topic, str(tp.partition)], max(end - committed, 0))
        if monitor.commit_latency:
            commit_latency.add_metric([], median(monitor.commit_latency) / 1000)
        rewinds.add_metric([], self._continuity.rewinds_total)
        gaps.add_metric([], self._continuity.accepted_gap_offsets_total)
        yield from (received, sent, rebalances, lag, commit_latency, rewinds, gaps)
