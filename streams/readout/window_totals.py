"""Window totals kept incrementally: the sums ``kpis.window_totals`` computes, without summing every bucket. Pure.

Per scope and window the totals are the exact sums (``exact_sums``) of the counters of the stored
buckets whose start is in the window's current range (``windows.window_bucket_range`` in the
scope's time zone), across partitions. They change in two ways:

* ``apply(changes)``: groups written (or deleted, as ``None``). It only notes the newest value of
  each group, so the ingest path pays a dict assignment per group. ``sync()`` then compares each
  noted group with the one the totals hold, bucket by bucket, and adds the difference of every
  bucket inside a window's range to that window: once per group however many batches changed it
  since the last sync. Unchanged buckets cost a comparison (an identity check when the writer
  shares their dicts with the group it replaced).
* ``advance(now)``: the clock moves the ranges. A rolling window moves in bucket steps: the buckets
  that left it are subtracted and the ones that entered it (a future bucket can hold events within
  the clock tolerance) are added. A calendar window that starts a new period (day, week, month,
  quarter in the scope's zone) restarts from the buckets of the new period. Ranges are computed once
  per zone, and again only when ``now`` leaves the bucket they were computed in.

The groups themselves are not copied: the keeper keeps a reference to every group it was given,
which is the object the worker's table holds (the fold never modifies a stored group, see
``streams.core.folding``; it builds new ones). ``reconcile(stored)`` makes the keeper equal to a
snapshot of the stored groups, step by step, while ``apply`` may go on between the steps: at start,
and after a recovery or a rebalance moved partitions in or out. A group applied after the snapshot
was taken is newer than the snapshot's and is kept.

Everything read (``view``, ``scopes``, ``totals``...) is as of the last ``sync()``.
``take_changes()`` tells the readers what changed since they last asked: per scope the counters whose
sums moved in any window, or None for a scope that appeared or vanished (one with no group left).
A counter whose sum is exactly 0 is left out of the totals: absent and 0 read the same everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from zoneinfo import ZoneInfo

from schemas.catalog import KEPT_SPANS, LIFETIME, STOCK_PREFIX, WINDOW_NAMES, SpanName, WindowName
from schemas.config import KpimonConfig
from schemas.scopes import Scope
from streams.core.facts import scope_timezone
from streams.core.folding import BucketGroup, GroupKey
from streams.core.windows import RESOLUTIONS, FixedResolution, Resolution, window_bucket_range
from streams.readout.exact_sums import ExactCounters, FloatView, add_into, as_floats, difference, exact, rounded
from streams.readout.kpis import ScopeTotals, with_stocks

WINDOW_RESOLUTION: dict[SpanName, Resolution] = {
    window: window_bucket_range(window, 0, ZoneInfo("UTC"))[0] for window in KEPT_SPANS
}
RESOLUTION_WINDOWS: dict[str, tuple[SpanName, ...]] = {
    resolution.name: tuple(w for w in KEPT_SPANS if WINDOW_RESOLUTION[w] is resolution) for resolution in RESOLUTIONS
}
MOVE_LOOKUPS = 64  # a rolling window that moves by at most this many buckets looks them up; else a scan
Changes = dict[Scope, set[str] | None]  # scope -> counters changed in any window; None: the scope came or went
Buckets = Mapping[str, Mapping[str, float]]  # a group's buckets: start (as text) -> counters


class _Window:
    __slots__ = ("first", "last", "name", "stocks_only", "sums")

    def __init__(self, name: SpanName, first: int, last: int) -> None:
        self.name = name
        self.first = first
        self.last = last
        self.stocks_only = name == LIFETIME  # every retained bucket: the stocks only (kpis.with_stocks)
        self.sums: ExactCounters = {}

    def add(self, deltas: ExactCounters, changed: set[str], sign: int = 1) -> None:
        """Add ``deltas`` (times ``sign``) to the sums, and the names of the counters added to ``changed``."""
        if self.stocks_only:
            deltas = {name: value for name, value in deltas.items() if name.startswith(STOCK_PREFIX)}
        add_into(self.sums, deltas, sign)
        changed.update(deltas)


class _Zone:
    """The ranges of every window in one time zone at the keeper's ``now``, and the scopes of the zone."""

    def __init__(self, tz: ZoneInfo, now: int) -> None:
        self.tz = tz
        self.ranges: dict[SpanName, tuple[int, int]] = {}
        self.valid: dict[str, tuple[int, int]] = {}  # resolution -> [from, until): ranges hold while now is there
        self.scopes: dict[Scope, _ScopeState] = {}
        self.pending = False  # ranges moved, and some scopes of the zone may not have followed yet
        self.move_to(now)

    def move_to(self, now: int) -> bool:
        """Compute the ranges at ``now`` where they may have changed; whether any did."""
        moved = False
        for resolution in RESOLUTIONS:
            valid = self.valid.get(resolution.name)
            if valid is not None and valid[0] <= now < valid[1]:
                continue
            start = resolution.bucket_start(now, self.tz)
            self.valid[resolution.name] = (start, resolution.bucket_end(start, self.tz))
            for window in RESOLUTION_WINDOWS[resolution.name]:
                _, first, last = window_bucket_range(window, now, self.tz)
                moved = moved or self.ranges.get(window) != (first, last)
                self.ranges[window] = (first, last)
        return moved


class _ScopeState:
    __slots__ = ("by_resolution", "count", "groups", "scope", "windows", "zone")

    def __init__(self, scope: Scope, zone: _Zone) -> None:
        self.scope = scope
        self.zone = zone
        self.count = 0  # stored groups, all resolutions and partitions
        self.groups: dict[str, dict[int, dict[int, BucketGroup]]] = {}  # resolution -> group start -> partition
        self.windows = {w: _Window(w, *zone.ranges[w]) for w in KEPT_SPANS}
        self.by_resolution = {name: tuple(self.windows[w] for w in ws) for name, ws in RESOLUTION_WINDOWS.items()}


class _Held:
    """A group the totals hold, with its key decoded and where its scope keeps it."""

    __slots__ = ("group", "key", "partitions", "state")

    def __init__(
        self, key: GroupKey, state: _ScopeState, partitions: dict[int, BucketGroup], group: BucketGroup
    ) -> None:
        self.key = key
        self.state = state
        self.partitions = partitions  # the scope's groups of this resolution and start, by partition
        self.group = group


class WindowTotals:
    """Counter sums per scope and window, kept up to date from the groups written (see the module's docstring)."""

    def __init__(self, config: KpimonConfig, now: int) -> None:
        self._config = config
        self._constants = {name: exact(value) for name, value in config.constants().items()}  # read with stocks
        self._now = now
        self._zones: dict[str, _Zone] = {}
        self._scopes: dict[Scope, _ScopeState] = {}
        self._mirror: dict[str, _Held] = {}  # the groups the totals hold
        self._pending: dict[str, BucketGroup | None] = {}  # groups applied since the last sync, newest
        self._changes: Changes = {}
        self._touched: set[str] | None = None  # keys applied while a reconcile runs

    # -- reading ---------------------------------------------------------------------------------------------------

    @property
    def scopes(self) -> set[Scope]:
        """Every scope with a stored group."""
        return set(self._scopes)

    def has(self, scope: Scope) -> bool:
        return scope in self._scopes

    def exact_sums(self, scope: Scope, window: WindowName) -> Mapping[str, int]:
        """The window's exact sums, its stocks (``stock_...``) read from every retained bucket (``with_stocks``)."""
        state = self._scopes.get(scope)
        if state is None:
            return {}
        stocks = state.windows[LIFETIME].sums
        return with_stocks(state.windows[window].sums, stocks | self._constants if stocks else stocks)

    def view(self, scope: Scope, window: WindowName) -> Mapping[str, float]:
        """The window's counter sums as floats (each the float nearest to its exact sum), as of now."""
        return FloatView(self.exact_sums(scope, window))

    def value(self, scope: Scope, window: WindowName, counter: str) -> float:
        return rounded(self.exact_sums(scope, window).get(counter, 0))

    def totals(self) -> ScopeTotals:
        """Everything as ``kpis.ScopeTotals`` (windows without counters left out)."""
        windows = {
            (scope, name): as_floats(sums)
            for scope, state in self._scopes.items()
            for name in WINDOW_NAMES
            if (sums := self.exact_sums(scope, name))
        }
        return ScopeTotals(windows=windows, scopes=self.scopes)

    def take_changes(self) -> Changes:
        """What changed since the last call (see the module's docstring)."""
        changes, self._changes = self._changes, {}
        return changes

    # -- groups written --------------------------------------------------------------------------------------------

    def apply(self, changes: Mapping[str, BucketGroup | None]) -> None:
        """Groups written since the last call, by table key; None for a deleted group. ``sync`` takes them in."""
        self._pending.update(changes)
        if self._touched is not None:
            self._touched.update(changes)

    def sync(self) -> Iterator[None]:
        """Take the groups applied before this call into the totals, one group per step."""
        pending, self._pending = list(self._pending.items()), {}
        return self._sync(pending)

    def _sync(self, pending: list[tuple[str, BucketGroup | None]]) -> Iterator[None]:
        done = 0
        try:
            for key, group in pending:
                self._apply(key, group)
                done += 1
                yield
        finally:  # stopped early: what is left waits for the next sync, unless applied again since
            for key, group in pending[done:]:
                self._pending.setdefault(key, group)

    def reconcile(self, stored: Iterable[tuple[str, BucketGroup]]) -> Iterator[None]:
        """Become equal to ``stored`` (a snapshot of every stored group), one group per step.

        The snapshot is taken now and replaces what was applied before; groups applied from now on,
        even before the first step, are newer and are kept (the next ``sync`` takes them in).
        """
        snapshot = dict(stored)
        touched: set[str] = set()
        self._touched = touched
        self._pending.clear()
        return self._reconcile(snapshot, touched)

    def _reconcile(self, snapshot: dict[str, BucketGroup], touched: set[str]) -> Iterator[None]:
        try:
            for key, group in snapshot.items():
                if key not in touched:
                    self._apply(key, group)
                    yield
            gone = [key for key in self._mirror if key not in snapshot and key not in touched]
            for key in gone:
                if key not in touched:
                    self._apply(key, None)
                    yield
        finally:
            if self._touched is touched:
                self._touched = None

    def _apply(self, key: str, new: BucketGroup | None) -> None:
        held = self._mirror.get(key)
        if held is None:
            if new is None:
                return
            group_key = GroupKey.decode(key)
            state = self._scope_state(group_key.scope)
            partitions = state.groups.setdefault(group_key.resolution.name, {}).setdefault(group_key.start, {})
            held = self._mirror[key] = _Held(group_key, state, partitions, new)
            state.count += 1
            old: Buckets = {}
        elif held.group is new:
            return
        else:
            old = held.group["buckets"]
        group_key, state = held.key, held.state
        if new is None:
            del self._mirror[key], held.partitions[group_key.partition]
            if not held.partitions:
                del state.groups[group_key.resolution.name][group_key.start]
            state.count -= 1
            if not state.count:
                self._drop(state)
                return
        else:
            held.group = held.partitions[group_key.partition] = new
        self._add_difference(state, group_key.resolution.name, old, new["buckets"] if new else {})

    def _add_difference(self, state: _ScopeState, resolution: str, old: Buckets, new: Buckets) -> None:
        windows = state.by_resolution[resolution]
        low, high = min(w.first for w in windows), max(w.last for w in windows)
        changed: set[str] = set()
        matched = 0
        for text, counters in new.items():
            before = old.get(text)
            if before is not None:
                matched += 1
                if before is counters or before == counters:
                    continue
            start = int(text)
            if low <= start <= high:
                self._add_bucket(windows, start, difference(before, counters), changed)
        if matched < len(old):  # buckets gone: a deleted group, or a group replaced by a recovery
            for text, counters in old.items():
                start = int(text)
                if text not in new and low <= start <= high:
                    self._add_bucket(windows, start, difference(counters, {}), changed)
        if changed:
            self._note(state.scope, changed)

    @staticmethod
    def _add_bucket(windows: tuple[_Window, ...], start: int, deltas: ExactCounters, changed: set[str]) -> None:
        if not deltas:
            return
        for window in windows:
            if window.first <= start <= window.last:
                window.add(deltas, changed)

    def _scope_state(self, scope: Scope) -> _ScopeState:
        state = self._scopes.get(scope)
        if state is None:
            tz = scope_timezone(scope, self._config)
            zone = self._zones.get(tz.key)
            if zone is None:
                zone = self._zones[tz.key] = _Zone(tz, self._now)
            state = self._scopes[scope] = zone.scopes[scope] = _ScopeState(scope, zone)
            self._changes[scope] = None
        return state

    def _drop(self, state: _ScopeState) -> None:
        del self._scopes[state.scope], state.zone.scopes[state.scope]
        self._changes[state.scope] = None

    def _note(self, scope: Scope, names: Iterable[str]) -> None:
        if scope in self._changes:
            noted = self._changes[scope]
            if noted is not None:
                noted.update(names)
        else:
            self._changes[scope] = set(names)

    # -- the clock -------------------------------------------------------------------------------------------------

    def advance(self, now: int) -> Iterator[None]:
        """Move every window to its range at ``now``, one scope per step."""
        self._now = now
        for zone in list(self._zones.values()):
            if zone.move_to(now):
                zone.pending = True
            if not zone.pending:
                continue
            for state in list(zone.scopes.values()):
                if state.scope in self._scopes:  # not dropped between two steps
                    self._move(state)
                    yield
            zone.pending = False

    def _move(self, state: _ScopeState) -> None:
        """Move the scope's windows to its zone's current ranges."""
        changed: set[str] = set()
        for window in state.windows.values():
            first, last = state.zone.ranges[window.name]
            if (first, last) == (window.first, window.last):
                continue
            resolution = WINDOW_RESOLUTION[window.name]
            disjoint = first > window.last or last < window.first
            if isinstance(resolution, FixedResolution) and not disjoint:
                step = resolution.seconds
                if abs(first - window.first) + abs(last - window.last) <= MOVE_LOOKUPS * step:
                    self._slide(state, window, resolution, first, last, changed)
                    continue
            if disjoint:  # a new period, or the clock jumped: start again from the new range
                changed.update(window.sums)
                window.sums.clear()
            low, high = min(first, window.first), max(last, window.last)
            for group_start, partitions in state.groups.get(resolution.name, {}).items():
                if group_start > high or resolution.latest_group_end(group_start) <= low:
                    continue
                for group in partitions.values():
                    for text, counters in group["buckets"].items():
                        start = int(text)
                        was = not disjoint and window.first <= start <= window.last
                        now_in = first <= start <= last
                        if was != now_in and counters:
                            exact_counters = {name: exact(value) for name, value in counters.items()}
                            window.add(exact_counters, changed, now_in - was)
            window.first, window.last = first, last
        if changed:
            self._note(state.scope, changed)

    @staticmethod
    def _slide(
        state: _ScopeState, window: _Window, resolution: FixedResolution, first: int, last: int, changed: set[str]
    ) -> None:
        """Move a rolling window by a few buckets: subtract those that left, add those that entered."""
        step, by_start = resolution.seconds, state.groups.get(resolution.name, {})
        moves = [(start, -1) for start in _outside(window.first, window.last, first, last, step)]
        moves += [(start, 1) for start in _outside(first, last, window.first, window.last, step)]
        for start, sign in moves:
            text = str(start)
            for group in by_start.get(start - start % resolution.group_seconds, {}).values():
                counters = group["buckets"].get(text)
                if counters:
                    window.add({name: exact(value) for name, value in counters.items()}, changed, sign)
        window.first, window.last = first, last


def _outside(first: int, last: int, other_first: int, other_last: int, step: int) -> list[int]:
    """The bucket starts of [first, last] that are not in [other_first, other_last] (same step, aligned)."""
    before = range(first, min(last, other_first - step) + step, step)
    after = range(max(first, other_last + step), last + step, step)
    return [*before, *after]
