"""From bucketed counters to KPI values per scope and window. Pure: ``now`` is passed in."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from schemas.catalog import Catalog, KpiSpec, WindowName
from schemas.config import KpimonConfig
from streams.facts import Scope
from streams.folding import BucketKey, BucketValue
from streams.windows import WINDOWS_BY_RESOLUTION, Resolution, window_bucket_range

WindowTotals = dict[tuple[Scope, WindowName], dict[str, float]]


def scope_timezone(scope: Scope, config: KpimonConfig) -> ZoneInfo:
    """A team's (and its reps') own time zone; the config's default for the rest."""
    return config.timezone_of(scope.team) if scope.team else ZoneInfo(config.timezone)


@dataclass
class ScopeTotals:
    """Counter sums per (scope, window), and every scope that has any retained bucket."""

    windows: WindowTotals
    scopes: set[Scope]


def window_totals(buckets: Iterable[tuple[str, BucketValue]], now: int, config: KpimonConfig) -> ScopeTotals:
    """Sum retained buckets into the windows that contain them, across partitions."""
    totals: WindowTotals = {}
    scopes: set[Scope] = set()
    ranges: dict[tuple[WindowName, str], tuple[Resolution, int, int]] = {}
    for key, value in buckets:
        bucket = BucketKey.decode(key)
        scopes.add(bucket.scope)
        for window in WINDOWS_BY_RESOLUTION[bucket.resolution.name]:
            tz = scope_timezone(bucket.scope, config)
            span = ranges.get((window, tz.key))
            if span is None:
                span = ranges[(window, tz.key)] = window_bucket_range(window, now, tz)
            _, first, last = span
            if not first <= bucket.start <= last:
                continue
            sums = totals.setdefault((bucket.scope, window), {})
            for name, amount in value["counters"].items():
                sums[name] = sums.get(name, 0) + amount
    return ScopeTotals(windows=totals, scopes=scopes)


@dataclass(frozen=True)
class KpiSample:
    kpi: KpiSpec
    scope: Scope
    window: WindowName
    value: float


def kpi_samples(catalog: Catalog, totals: ScopeTotals) -> Iterator[KpiSample]:
    """Every KPI of every known scope in every window; a ratio over zero is left out."""
    for kpi in catalog.kpis:
        for scope in sorted(totals.scopes, key=lambda s: s.key):
            if scope.kind not in kpi.scopes:
                continue
            for window in kpi.windows:
                value = kpi.formula.evaluate(totals.windows.get((scope, window), {}))
                if value is not None:
                    yield KpiSample(kpi, scope, window, value)
