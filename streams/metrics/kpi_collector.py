"""The Prometheus collector rendering KPI values and ingest counters on /metrics."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from schemas.catalog import Catalog, WindowName
from schemas.config import KpimonConfig
from schemas.scopes import Scope
from streams.core.facts import scopes_for
from streams.core.folding import BucketGroup, ProgressValue
from streams.core.windows import LONGEST_RETENTION
from streams.entities.deals_leads import LOST_REASON_PREFIX, open_deals
from streams.entities.registry import EntityState
from streams.readout.kpis import ScopeTotals, cycle_quantiles, kpi_samples, window_totals

KPI_LABELS = ("window", "scope", "team", "rep", "channel", "campaign")
LATE_HELP = (
    f"Events older than the longest retention ({LONGEST_RETENTION.retention_seconds // 86_400} days), not counted."
)
PROGRESS_COUNTERS = (
    ("events", "kpimon_events", "Valid events counted, by type.", "type"),
    ("duplicates", "kpimon_events_duplicate", "Copies of an already counted event_id, ignored.", "type"),
    ("late", "kpimon_events_late_dropped", LATE_HELP, "type"),
    ("rejected", "kpimon_events_rejected", "Invalid messages sent to the dead-letter topic, by reason.", "reason"),
)


OPEN_LABELS = ("scope", "team", "rep", "channel", "campaign")
PER_WORKER = "Exact for the partitions of this worker; not additive across workers."


FUNNEL_DETAILS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "kpimon_sales_cycle_p50_seconds",
        f"Median sales cycle of the deals won in the window. {PER_WORKER}",
        KPI_LABELS,
    ),
    (
        "kpimon_sales_cycle_p90_seconds",
        f"90th percentile of the sales cycle of the deals won in the window. {PER_WORKER}",
        KPI_LABELS,
    ),
    ("kpimon_deals_lost_by_reason", "Deals lost in the window, per loss reason.", (*KPI_LABELS, "reason")),
    ("kpimon_open_deals", "Deals created and not (or no longer) won or lost.", OPEN_LABELS),
    (
        "kpimon_open_pipeline_value",
        "Value of the open deals (their opportunity amount), in the reporting currency.",
        OPEN_LABELS,
    ),
)


UNIQUE_VISITORS = (
    "kpimon_web_unique_visitors",
    "Distinct visitors of the website sessions in the window, bots excluded: approximate (Redis HyperLogLog, "
    "standard error 0.81%), merged across workers, so every worker serves the same value (max, never sum, "
    "across workers). Absent while Redis is unreachable.",
)
VisitorSamples = Callable[[ScopeTotals, int], Iterable[tuple[Scope, WindowName, int]]]  # (totals, now)


def funnel_detail_families() -> tuple[GaugeMetricFamily, ...]:
    """Funnel series beyond the catalog's formulas: cycle quantiles, losses by reason, the open pipeline."""
    return tuple(GaugeMetricFamily(name, help_text, labels=labels) for name, help_text, labels in FUNNEL_DETAILS)


class KpiCollector(Collector):
    """Computes every KPI of the catalog from the worker's tables at scrape time."""

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
        self._catalog = catalog
        self._config = config
        self._buckets = buckets
        self._progress = progress
        self._clock = clock
        self._entities = entities
        self._unique_visitors = unique_visitors

    def _kpi_families(self) -> dict[str, GaugeMetricFamily]:
        return {
            kpi.metric: GaugeMetricFamily(kpi.metric, f"{kpi.name}: {kpi.description}", labels=KPI_LABELS)
            for kpi in self._catalog.kpis
        }

    def _progress_families(self) -> tuple[dict[str, CounterMetricFamily], GaugeMetricFamily]:
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
        counters, watermark = self._progress_families()
        yield from self._kpi_families().values()
        yield from funnel_detail_families()
        yield GaugeMetricFamily(*UNIQUE_VISITORS, labels=KPI_LABELS)
        yield from counters.values()
        yield watermark

    def collect(self) -> Iterator[Metric]:
        families = self._kpi_families()
        now = int(self._clock())
        totals = window_totals(self._buckets(), now, self._config)
        for sample in kpi_samples(self._catalog, totals):
            scope = sample.scope
            labels = [sample.window, *scope.labels]
            families[sample.kpi.metric].add_metric(labels, sample.value)
        yield from families.values()
        yield from self._funnel_details(totals)
        visitors = GaugeMetricFamily(*UNIQUE_VISITORS, labels=KPI_LABELS)
        if self._unique_visitors is not None:
            for scope, window, count in self._unique_visitors(totals, now):
                visitors.add_metric([window, *scope.labels], count)
        yield visitors
        counters, watermark = self._progress_families()
        sums: dict[str, dict[str, int]] = {field: {} for field in counters}
        for partition, progress in self._progress():
            watermark.add_metric([partition], progress["watermark"])
            for field, sums_by_label in sums.items():
                counts: dict[str, int] = progress[field]  # type: ignore[literal-required]
                for label, count in counts.items():
                    sums_by_label[label] = sums_by_label.get(label, 0) + count
        for field, family in counters.items():
            for label, count in sorted(sums[field].items()):
                family.add_metric([label], count)
        yield from counters.values()
        yield watermark

    def _funnel_details(self, totals: ScopeTotals) -> tuple[GaugeMetricFamily, ...]:
        p50, p90, lost, open_count, open_value = families = funnel_detail_families()
        for (scope, window), counters in sorted(totals.windows.items(), key=lambda item: (item[0][0].key, item[0][1])):
            labels = [window, *scope.labels]
            quantiles = cycle_quantiles(counters)
            if quantiles:
                p50.add_metric(labels, quantiles["sales_cycle_p50_seconds"])
                p90.add_metric(labels, quantiles["sales_cycle_p90_seconds"])
            for name, count in sorted(counters.items()):
                if name.startswith(LOST_REASON_PREFIX) and count:
                    lost.add_metric([*labels, name.removeprefix(LOST_REASON_PREFIX)], count)
        pipeline: dict[Scope, list[float]] = {}
        for deal in open_deals(self._entities()):
            for scope in scopes_for(deal.team, deal.rep, deal.channel, deal.campaign, self._config):
                sums = pipeline.setdefault(scope, [0, 0.0])
                sums[0] += 1
                sums[1] += deal.amount
        for scope, (count, value) in sorted(pipeline.items(), key=lambda item: item[0].key):
            labels = list(scope.labels)
            open_count.add_metric(labels, count)
            open_value.add_metric(labels, value)
        return families
