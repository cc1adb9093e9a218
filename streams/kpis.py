"""From bucketed counters to KPI values per scope and window. Pure: ``now`` is passed in."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from schemas.catalog import Catalog, KpiSpec, WindowName
from schemas.config import KpimonConfig
from streams.facts import Scope
from streams.folding import BucketGroup, GroupKey
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


def window_totals(groups: Iterable[tuple[str, BucketGroup]], now: int, config: KpimonConfig) -> ScopeTotals:
    """Sum retained buckets into the windows that contain them, across partitions."""
    totals: WindowTotals = {}
    scopes: set[Scope] = set()
    ranges: dict[tuple[WindowName, str], tuple[Resolution, int, int]] = {}
    for key, group in groups:
        group_key = GroupKey.decode(key)
        scope = group_key.scope
        scopes.add(scope)
        tz = scope_timezone(scope, config)
        for window in WINDOWS_BY_RESOLUTION[group_key.resolution.name]:
            span = ranges.get((window, tz.key))
            if span is None:
                span = ranges[(window, tz.key)] = window_bucket_range(window, now, tz)
            _, first, last = span
            if group_key.last_bucket_start < first or group_key.start > last:
                continue
            sums = totals.setdefault((scope, window), {})
            for start, counters in group["buckets"].items():
                if first <= int(start) <= last:
                    for name, amount in counters.items():
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
