"""What the alert engine reads: counter sums of whole scopes, assembled from every partition. Pure.

A scope's counters are spread over the source partitions (facts are folded
where their entity's events arrive), and each worker holds only its own
partitions. So every worker sums, per partition it owns, just the counters the
rules and digests need (``partition_sums``) and publishes them; the worker that
evaluates a rule adds up the published sums of all partitions (``merge_sums``)
and only evaluates when every partition's sums are fresh, so a worker that has
not recovered its state yet never makes a KPI look like it dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

from alerts.model import Observation
from schemas.catalog import LIFETIME, STOCK_PREFIX, KpiSpec, SpanName, WindowName
from schemas.config import KpimonConfig
from schemas.scopes import Scope
from streams.core.folding import BucketGroup
from streams.core.windows import window_bucket_range
from streams.readout.baselines import baseline_range
from streams.readout.kpis import Span, span_totals, with_constants, with_stocks

# "now": the window itself; a baseline of it; "period_before": the period before its previous period (digests)
Variant = Literal["now", "previous_period", "same_hour_last_week", "period_before"]
SumsKey = str  # "<scope key>#<window>#<variant>"
Sums = dict[SumsKey, dict[str, float]]


@dataclass(frozen=True)
class Need:
    """Counters of the scopes ``matches`` accepts, summed over ``window`` (or its baseline ``variant``)."""

    matches: Callable[[Scope], bool]
    window: WindowName
    variant: Variant
    counters: frozenset[str]


def sums_key(scope: Scope, window: WindowName, variant: Variant) -> SumsKey:
    return f"{scope.key}#{window}#{variant}"


def span_of(window: SpanName, variant: Variant, now: int, tz: ZoneInfo) -> Span | None:
    """The buckets a need sums at ``now``: the window itself, a baseline, or the period before the previous one."""
    if variant == "now" or window == LIFETIME:
        return window_bucket_range(window, now, tz)
    if variant == "period_before":
        return baseline_range(window, "previous_period", baseline_range(window, "previous_period", now, tz)[1], tz)
    return baseline_range(window, variant, now, tz)


def partition_sums(
    groups: Iterable[tuple[str, BucketGroup]], needs: Sequence[Need], now: int, config: KpimonConfig
) -> Sums:
    """The needed counter sums of one partition's bucket groups, per scope, window and variant.

    Every scope seen (with any retained bucket) that a need matches gets an entry,
    empty when it has nothing in that span: it exists, and its count is zero.
    """
    spans: set[tuple[SpanName, Variant]] = {(need.window, need.variant) for need in needs}
    spans.add((LIFETIME, "now"))  # where the stocks are read (kpis.with_stocks)
    totals, scopes = span_totals(
        groups, lambda tz: {span: span_of(span[0], span[1], now, tz) for span in spans}, config
    )
    result: Sums = {}
    for scope in scopes:
        labels = scope
        every_bucket = totals.get((scope, (LIFETIME, "now")), {})
        stocks = {name: value for name, value in every_bucket.items() if name.startswith(STOCK_PREFIX) and value}
        lifetime = with_constants(stocks, config)
        for need in needs:
            if not need.matches(labels):
                continue
            counters: Mapping[str, float] = totals.get((scope, (need.window, need.variant)), {})
            if need.variant == "now":  # a stock now; a baseline period has none (its stock is not kept)
                counters = with_stocks(counters, lifetime)
            kept = result.setdefault(sums_key(scope, need.window, need.variant), {})
            for name in need.counters:
                if name in counters and not (need.variant != "now" and name.startswith(STOCK_PREFIX)):
                    kept[name] = counters[name]
    return result


def merge_sums(partials: Iterable[Mapping[SumsKey, Mapping[str, float]]]) -> Sums:
    """The sums of all partitions added up: a whole scope's counters."""
    merged: Sums = {}
    for partial in partials:
        for key, counters in partial.items():
            sums = merged.setdefault(key, {})
            for name, amount in counters.items():
                sums[name] = sums.get(name, 0.0) + amount
    return merged


def scopes_in(sums: Mapping[SumsKey, object]) -> set[Scope]:
    """The scopes that have an entry in ``sums``."""
    return {Scope.from_key(key.split("#", 1)[0]) for key in sums}


def observe(kpi: KpiSpec, sums: Mapping[SumsKey, Mapping[str, float]], scope: Scope, window: WindowName) -> Observation:
    """``kpi`` of ``scope`` in ``window`` now, with the counts behind a rate (its sample size)."""
    counters = sums.get(sums_key(scope, window, "now"), {})
    parts = kpi.formula.ratio_parts() if kpi.unit == "ratio" else None
    return Observation(
        value=kpi.formula.evaluate(counters),
        numerator=None if parts is None else parts[0].evaluate(counters),
        denominator=None if parts is None else parts[1].evaluate(counters),
    )


def value_in(
    kpi: KpiSpec, sums: Mapping[SumsKey, Mapping[str, float]], scope: Scope, window: WindowName, variant: Variant
) -> float | None:
    """``kpi`` of ``scope`` over ``window``'s ``variant`` span (a baseline, or a digest's periods)."""
    return kpi.formula.evaluate(sums.get(sums_key(scope, window, variant), {}))
