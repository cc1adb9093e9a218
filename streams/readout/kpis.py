"""From bucketed counters to KPI values per scope and window. Pure: ``now`` is passed in."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar
from zoneinfo import ZoneInfo

from schemas.catalog import KEPT_SPANS, LIFETIME, STOCK_PREFIX, WINDOW_NAMES, Catalog, KpiSpec, WindowName
from schemas.config import KpimonConfig
from schemas.scopes import Scope
from streams.core.facts import scope_timezone
from streams.core.folding import BucketGroup, GroupKey
from streams.core.windows import MONTH, Resolution, month_label, window_bucket_range
from streams.entities.deals_leads import CYCLE_SAMPLE_PREFIX

WindowTotals = dict[tuple[Scope, WindowName], dict[str, float]]
MonthlyTotals = dict[tuple[Scope, str], dict[str, float]]  # (scope, "YYYY-MM") -> counter sums


@dataclass
class ScopeTotals:
    """Counter sums per (scope, window), and every scope that has any retained bucket."""

    windows: WindowTotals
    scopes: set[Scope]


def window_totals(groups: Iterable[tuple[str, BucketGroup]], now: int, config: KpimonConfig) -> ScopeTotals:
    """Sum retained buckets into the windows that contain them, across partitions.

    Windows are taken in each scope's time zone; a window's buckets are those whose
    start is in its range (see ``window_bucket_range``).
    """
    spans, scopes = span_totals(groups, lambda tz: {w: window_bucket_range(w, now, tz) for w in KEPT_SPANS}, config)
    totals: WindowTotals = {}
    for scope in scopes:
        lifetime = spans.get((scope, LIFETIME), {})
        stocks = with_constants(
            {name: value for name, value in lifetime.items() if name.startswith(STOCK_PREFIX) and value}, config
        )
        for window in WINDOW_NAMES:
            sums = dict(with_stocks(spans.get((scope, window), {}), stocks))
            if sums:
                totals[scope, window] = sums
    return ScopeTotals(windows=totals, scopes=scopes)


NumberT = TypeVar("NumberT", int, float)


class WithStocks(Mapping[str, NumberT]):
    """A window's counters, its stocks (``stock_...``) read from their sums over every retained bucket.

    A stock (the customers and MRR an account has after all its events) counts once, at the time
    of the account's latest event (streams/entities/accounts.py): only its sum over every retained
    bucket is the stock now, whichever window reads it.
    """

    __slots__ = ("_lifetime", "_window")

    def __init__(self, window: Mapping[str, NumberT], lifetime: Mapping[str, NumberT]) -> None:
        self._window: Mapping[str, NumberT] = window
        self._lifetime: Mapping[str, NumberT] = lifetime

    def __getitem__(self, name: str) -> NumberT:
        source = self._window if name in self._window and not name.startswith(STOCK_PREFIX) else self._lifetime
        return source[name]

    def __iter__(self) -> Iterator[str]:
        yield from (name for name in self._window if not name.startswith(STOCK_PREFIX) and name not in self._lifetime)
        yield from self._lifetime

    def __len__(self) -> int:
        return sum(1 for _ in self)


def with_constants(stocks: dict[str, float], config: KpimonConfig) -> dict[str, float]:
    """``stocks`` and, where there are any, the config's constants (``KpimonConfig.constants``): read alike."""
    return stocks | config.constants() if stocks else stocks


def with_stocks(window: Mapping[str, NumberT], lifetime: Mapping[str, NumberT]) -> Mapping[str, NumberT]:
    """``window`` with the stocks of ``lifetime`` (the sums of only the stocks over every retained bucket).

    A window holds a stock only where ``lifetime`` does (a stock counts at an account's latest
    event, never after now, and every window lies in ``lifetime``), so without stocks it is returned as it is.
    """
    return WithStocks(window, lifetime) if lifetime else window


SpanT = TypeVar("SpanT", bound=Hashable)
Span = tuple[Resolution, int, int]  # a resolution and the first and last bucket start summed (inclusive)


def span_totals(
    groups: Iterable[tuple[str, BucketGroup]],
    spans_in: Callable[[ZoneInfo], Mapping[SpanT, Span | None]],
    config: KpimonConfig,
) -> tuple[dict[tuple[Scope, SpanT], dict[str, float]], set[Scope]]:
    """Counter sums per scope and named span of buckets, and every scope seen; ``spans_in(tz)`` names the spans.

    A span is a run of buckets of one resolution in the scope's zone (a window now,
    or a baseline period); a span given as None is skipped.
    """
    totals: dict[tuple[Scope, SpanT], dict[str, float]] = {}
    scopes: set[Scope] = set()
    spans_by_zone: dict[str, dict[str, list[tuple[SpanT, int, int]]]] = {}  # zone -> resolution -> spans
    ends: dict[tuple[str, int, str], int] = {}  # (resolution, group start, zone) -> group end
    zones: dict[str, ZoneInfo] = {}
    for key, group in groups:
        group_key = GroupKey.decode(key)
        scope = group_key.scope
        scopes.add(scope)
        tz = zones.get(scope.team)
        if tz is None:
            tz = zones[scope.team] = scope_timezone(scope, config)
        by_resolution = spans_by_zone.get(tz.key)
        if by_resolution is None:
            by_resolution = spans_by_zone[tz.key] = {}
            for name, span in spans_in(tz).items():
                if span is not None:
                    by_resolution.setdefault(span[0].name, []).append((name, span[1], span[2]))
        end_key = (group_key.resolution.name, group_key.start, tz.key)
        end = ends.get(end_key)
        if end is None:
            end = ends[end_key] = group_key.end(tz)
        for name, first, last in by_resolution.get(group_key.resolution.name, ()):
            if end <= first or group_key.start > last:
                continue
            sums = totals.setdefault((scope, name), {})
            for start, counters in group["buckets"].items():
                if first <= int(start) <= last:
                    for counter, amount in counters.items():
                        sums[counter] = sums.get(counter, 0) + amount
    return totals, scopes


def monthly_totals(groups: Iterable[tuple[str, BucketGroup]], config: KpimonConfig) -> MonthlyTotals:
    """Counter sums per scope and local calendar month, from every stored 1mo bucket, across partitions.

    A month is labelled ``"YYYY-MM"`` in the scope's time zone. Sorted by scope key, then month.
    """
    totals: MonthlyTotals = {}
    for key, group in groups:
        group_key = GroupKey.decode(key)
        if group_key.resolution.name != MONTH.name:
            continue
        scope = group_key.scope
        tz = scope_timezone(scope, config)
        for start, counters in group["buckets"].items():
            sums = totals.setdefault((scope, month_label(int(start), tz)), {})
            for name, amount in counters.items():
                sums[name] = sums.get(name, 0) + amount
    return dict(sorted(totals.items(), key=lambda item: (item[0][0].key, item[0][1])))


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


def quantile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile by linear interpolation between closest ranks (numpy's default); None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q
    lower = int(rank)
    if lower + 1 == len(ordered):
        return ordered[lower]
    return ordered[lower] + (rank - lower) * (ordered[lower + 1] - ordered[lower])


def cycle_quantiles(counters: Mapping[str, float]) -> dict[str, float]:
    """p50 and p90 of the sales cycles of the deals won in these counters (per-deal cycle samples)."""
    samples = [value for name, value in counters.items() if name.startswith(CYCLE_SAMPLE_PREFIX)]
    result = {}
    for name, q in (("sales_cycle_p50_seconds", 0.5), ("sales_cycle_p90_seconds", 0.9)):
        value = quantile(samples, q)
        if value is not None:
            result[name] = value
    return result


def monthly_report(catalog: Catalog, totals: MonthlyTotals) -> list[dict[str, object]]:
    """One row per scope and month: its counters, its KPI values and cycle quantiles (JSON-ready)."""
    rows: list[dict[str, object]] = []
    monthly_kpis = [kpi for kpi in catalog.kpis if not any(name.startswith(STOCK_PREFIX) for name in kpi.formula.names)]
    for (scope, month), counters in totals.items():
        kpis: dict[str, float] = {}
        for kpi in monthly_kpis:  # a stock is what is active now, not in a past month: no KPI that reads one
            value = kpi.formula.evaluate(counters)
            if value is not None and scope.kind in kpi.scopes:
                kpis[kpi.id] = value
        rows.append(
            {
                "month": month,
                "scope": scope.kind,
                "team": scope.team,
                "rep": scope.rep,
                "channel": scope.channel,
                "campaign": scope.campaign,
                "counters": {
                    name: value
                    for name, value in counters.items()
                    if ":" not in name and not name.startswith((STOCK_PREFIX, "retention_"))
                },
                "kpis": kpis | cycle_quantiles(counters),
            }
        )
    return rows
