"""Prometheus collectors of the KPI values and the ingest counters on /metrics.

``KpiCollector`` computes every KPI family from the tables in one go, through the same incremental
totals and family definitions the worker's cached text uses (``streams.metrics.exposition``): the
reference rendering, for tests, the generated docs and anything that wants prometheus-client
families. The worker serves the KPI families from ``KpiExposition`` instead, and the ingest
counters from ``ProgressCollector``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from functools import partial

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from schemas.catalog import Catalog, WindowName
from schemas.config import KpimonConfig
from schemas.scopes import Scope
from streams.core.folding import BucketGroup, ProgressValue
from streams.core.windows import LONGEST_RETENTION
from streams.entities.registry import EntityState
from streams.metrics.kpi_families import (
    FUNNEL_DETAILS,
    KPI_LABELS,
    OPEN_LABELS,
    PER_WORKER,
    UNIQUE_VISITORS,
    Family,
    kpi_families,
    label_values,
    open_samples,
    window_samples,
)
from streams.readout.kpis import ScopeTotals
from streams.readout.open_pipeline import OpenPipeline
from streams.readout.window_totals import WindowTotals

__all__ = [
    "FUNNEL_DETAILS",
    "KPI_LABELS",
    "OPEN_LABELS",
    "PER_WORKER",
    "PROGRESS_COUNTERS",
    "UNIQUE_VISITORS",
    "KpiCollector",
    "KpiFamilyNames",
    "ProgressCollector",
    "VisitorSamples",
    "funnel_detail_families",
]

LATE_HELP = (
    f"Events older than the longest retention ({LONGEST_RETENTION.retention_seconds // 86_400} days), not counted."
)
PROGRESS_COUNTERS = (
    ("events", "kpimon_events", "Valid events counted, by type.", "type"),
    ("duplicates", "kpimon_events_duplicate", "Copies of an already counted event_id, ignored.", "type"),
    ("late", "kpimon_events_late_dropped", LATE_HELP, "type"),
    ("rejected", "kpimon_events_rejected", "Invalid messages sent to the dead-letter topic, by reason.", "reason"),
    (
        "folded",
        "kpimon_labels_folded",
        "Events counted under the label value other: their team, rep, channel, campaign, loss reason or deal stage was "
        "unknown beyond the config's cap, or too long or odd (the config's labels section), by dimension.",
        "dimension",
    ),
)
VisitorSamples = Callable[[ScopeTotals, int], Iterable[tuple[Scope, WindowName, int]]]  # (totals, now)


def funnel_detail_families() -> tuple[GaugeMetricFamily, ...]:
    """Funnel series beyond the catalog's formulas: cycle quantiles, losses by reason, the open pipeline."""
    return tuple(GaugeMetricFamily(name, help_text, labels=labels) for name, help_text, labels in FUNNEL_DETAILS)


def _empty(family: Family) -> GaugeMetricFamily:
    return GaugeMetricFamily(family.name, family.help, labels=family.labels)


class ProgressCollector(Collector):
    """The ingest counters (valid, duplicate, late, rejected) and the watermark per partition."""

    def __init__(self, progress: Callable[[], Iterable[tuple[str, ProgressValue]]]) -> None:
        self._progress = progress

    @staticmethod
    def families() -> tuple[dict[str, CounterMetricFamily], GaugeMetricFamily]:
        counters = {
            field: CounterMetricFamily(name, help_text, labels=[label])
            for field, name, help_text, label in PROGRESS_COUNTERS
        }
        watermark = GaugeMetricFamily(
            "kpimon_watermark_timestamp_seconds",
            "Newest event time seen per source partition (event-time retention is measured from it).",
            labels=["partition"],
        )
        return counters, watermark

    def describe(self) -> Iterator[Metric]:
        counters, watermark = self.families()
        yield from counters.values()
        yield watermark

    def collect(self) -> Iterator[Metric]:
        counters, watermark = self.families()
        sums: dict[str, dict[str, int]] = {field: {} for field in counters}
        for partition, progress in self._progress():
            watermark.add_metric([partition], progress["watermark"])
            for field, sums_by_label in sums.items():
                counts: dict[str, int] = progress.get(field, {})  # type: ignore[assignment]
                for label, count in counts.items():
                    sums_by_label[label] = sums_by_label.get(label, 0) + count
        for field, family in counters.items():
            for label, count in sorted(sums[field].items()):
                family.add_metric([label], count)
        yield from counters.values()
        yield watermark


class KpiFamilyNames(Collector):
    """The KPI families' names for a registry (which refuses a second collector of the same names); no samples.

    The worker renders their samples itself (``KpiExposition``); registering this keeps the clash check.
    """

    def __init__(self, catalog: Catalog) -> None:
        self._families = kpi_families(catalog)

    def describe(self) -> Iterator[Metric]:
        return (_empty(family) for family in self._families)

    def collect(self) -> Iterator[Metric]:
        return iter(())


class KpiCollector(Collector):
    """Computes every KPI of the catalog from the worker's tables at scrape time, and the ingest counters."""

    def __init__(
        self,
        catalog: Catalog,
        config: KpimonConfig,
        buckets: Callable[[], Iterable[tuple[str, BucketGroup]]],
        progress: Callable[[], Iterable[tuple[str, ProgressValue]]],
        clock: Callable[[], float],
        entities: Callable[[], Iterable[tuple[str, EntityState]]] = list,
        unique_visitors: VisitorSamples | None = None,
    ) -> None:
        self._families = kpi_families(catalog)
        self._config = config
        self._buckets = buckets
        self._clock = clock
        self._entities = entities
        self._unique_visitors = unique_visitors
        self._progress = ProgressCollector(progress)

    def describe(self) -> Iterator[Metric]:
        yield from (_empty(family) for family in self._families)
        yield from self._progress.describe()

    def collect(self) -> Iterator[Metric]:
        now = int(self._clock())
        totals = WindowTotals(self._config, now)
        for _ in totals.reconcile(self._buckets()):
            pass
        pipeline = OpenPipeline(self._config)
        for _ in pipeline.reconcile(self._entities()):
            pass
        scopes = sorted(totals.scopes, key=lambda scope: scope.key)
        open_scopes = sorted(pipeline.scopes, key=lambda scope: scope.key)
        for family in self._families:
            metric = _empty(family)
            if family.source == "windows":
                for scope in scopes:
                    if scope.kind in family.kinds:
                        for window, extra, value in window_samples(family, partial(totals.view, scope)):
                            metric.add_metric(label_values(window, scope.labels, extra), value)
            elif family.source == "open":
                for scope in open_scopes:
                    for extra, value in open_samples(family, pipeline, scope):
                        metric.add_metric(label_values(None, scope.labels, extra), value)
            elif self._unique_visitors is not None:
                for scope, window, count in self._unique_visitors(totals.totals(), now):
                    metric.add_metric([window, *scope.labels], count)
            yield metric
        yield from self._progress.collect()
