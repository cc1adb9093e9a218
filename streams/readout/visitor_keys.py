"""Unique visitors: the Redis HyperLogLog keys a web session adds its visitor to, and those a window reads. Pure.

Every non-bot ``web.session`` adds its ``visitor_id`` to one HyperLogLog per scope (overall,
its channel, ``unknown`` when it names none, and its campaign if any) and bucket of each
resolution (``streams.core.windows``): ``<app_id>:hll:v1:<scope key>:<resolution>:<bucket start>``.
A window's unique visitors are the PFCOUNT of the union of its buckets' keys
(``window_bucket_range``): a visitor seen in several buckets, on several workers or in a
replayed event counts once. Every worker adds to the same keys, so the count is global:
each worker exports the same value (aggregate with ``max``, never ``sum``, across workers).

Error bound: Redis HyperLogLogs have 16,384 registers, a standard error of 1.04 / sqrt(16384)
= 0.81%: within 1.6% of the true count about 95% of the time, within 2.4% (3 standard
errors) about 99.7%. Up to a few hundred visitors the count is as good as exact.

A key expires (EXPIREAT) at its bucket's end plus the resolution's retention plus
``EXPIRY_MARGIN_SECONDS``, by the wall clock: past that, no window read at ``now`` holds
the bucket. A session whose key would already have expired is not added.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from schemas.catalog import WINDOW_NAMES, WindowName
from schemas.config import KpimonConfig
from schemas.events import WebSession
from schemas.scopes import OVERALL, Scope, ScopeKind
from streams.core.facts import event_channel, scope_timezone, scopes_for
from streams.core.windows import RESOLUTIONS, Resolution, window_bucket_range
from streams.readout.kpis import ScopeTotals

KEY_VERSION = "v1"  # bump when the key layout changes: new keys start clean
VISITOR_SCOPE_KINDS: tuple[ScopeKind, ...] = ("all", "channel", "campaign")  # those of the web KPIs
SESSIONS_COUNTER = "web_sessions"
EXPIRY_MARGIN_SECONDS = 3600
STANDARD_ERROR = 0.0081


def hll_key(app_id: str, scope: Scope, resolution: Resolution, bucket_start: int) -> str:
    """The HyperLogLog of one scope and bucket; the scope's campaign may hold ``:``, the last two parts never do."""
    return _key(app_id, scope.key, resolution.name, bucket_start)


def _key(app_id: str, scope_key: str, resolution: str, bucket_start: int) -> str:
    return f"{app_id}:hll:{KEY_VERSION}:{scope_key}:{resolution}:{bucket_start}"


@dataclass
class HllAddition:
    """Visitors to add to one key, and when the key expires (epoch seconds)."""

    expire_at: int
    visitors: set[str] = field(default_factory=set)


def visitor_scopes(session: WebSession, config: KpimonConfig) -> list[Scope]:
    """Overall, the session's channel (``unknown`` without one) and its campaign: never a team or a rep."""
    return scopes_for(None, None, event_channel(session), session.campaign_id, config)


def visitor_additions(
    app_id: str, sessions: Iterable[WebSession], config: KpimonConfig, now: float
) -> dict[str, HllAddition]:
    """The visitors of the non-bot ``sessions`` per HyperLogLog key; keys that expired by ``now`` are left out."""
    tz = scope_timezone(OVERALL, config)  # the zone of every overall, channel and campaign scope
    scope_keys: dict[tuple[str | None, str | None], list[str]] = {}  # (channel, campaign) -> its scopes' keys
    spans: dict[str, tuple[int, int]] = {}  # resolution -> the last bucket located (sessions of a batch share it)
    buckets: dict[tuple[str, str, int], HllAddition] = {}  # (scope key, resolution, bucket start)
    for session in sessions:
        if session.bot:
            continue
        placement = (session.channel, session.campaign_id)
        keys = scope_keys.get(placement)
        if keys is None:
            keys = scope_keys[placement] = [scope.key for scope in visitor_scopes(session, config)]
        at = int(session.occurred_at.timestamp())
        for resolution in RESOLUTIONS:
            span = spans.get(resolution.name)
            if span is None or not span[0] <= at < span[1]:
                start = resolution.bucket_start(at, tz)
                span = spans[resolution.name] = (start, resolution.bucket_end(start, tz))
            expire_at = span[1] + resolution.retention_seconds + EXPIRY_MARGIN_SECONDS
            if expire_at <= now:
                continue
            for key in keys:
                addition = buckets.get((key, resolution.name, span[0]))
                if addition is None:
                    addition = buckets[key, resolution.name, span[0]] = HllAddition(expire_at)
                addition.visitors.add(session.visitor_id)
    return {_key(app_id, *bucket): addition for bucket, addition in buckets.items()}


def window_keys(app_id: str, scope: Scope, window: WindowName, now: int, tz: ZoneInfo) -> tuple[str, ...]:
    """The keys of every bucket of ``window`` at ``now`` in the scope's zone ``tz``, oldest first."""
    resolution, first, last = window_bucket_range(window, now, tz)
    keys = []
    start = first
    while start <= last:
        keys.append(hll_key(app_id, scope, resolution, start))
        start = resolution.bucket_end(start, tz)
    return tuple(keys)


@dataclass(frozen=True)
class VisitorQuery:
    """The unique visitors of one scope and window: the PFCOUNT of ``keys``."""

    scope: Scope
    window: WindowName
    keys: tuple[str, ...]


def scopes_with_sessions(totals: ScopeTotals) -> list[Scope]:
    """The overall, channel and campaign scopes with web sessions in any window, by scope key."""
    scopes = {
        scope
        for (scope, _), counters in totals.windows.items()
        if scope.kind in VISITOR_SCOPE_KINDS and counters.get(SESSIONS_COUNTER, 0) > 0
    }
    return sorted(scopes, key=lambda scope: scope.key)


def visitor_queries(
    app_id: str,
    scopes: Iterable[Scope],
    now: int,
    config: KpimonConfig,
    windows: Sequence[WindowName] = WINDOW_NAMES,
) -> list[VisitorQuery]:
    """One query per scope and window."""
    queries = []
    for scope in scopes:
        tz = scope_timezone(scope, config)
        queries += [VisitorQuery(scope, window, window_keys(app_id, scope, window, now, tz)) for window in windows]
    return queries
