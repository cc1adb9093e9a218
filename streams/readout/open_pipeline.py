"""Open deals and their value per scope, kept from the entity states written. Pure.

What ``deals_leads.open_deals`` gives for every stored state, per scope (``facts.scopes_for``): the
count of open deals and the exact sum of their amounts, in all and per stage the deals are in now.
``apply`` takes the entity states written (None: deleted) and moves each deal's contribution from its
old scopes and stage to its new ones (a stage change moves its count and value); only open
deals are kept (a reference to the state and its contribution), so closed deals cost nothing;
``reconcile`` makes the keeper equal to a snapshot of the stored states, step by step, keeping what
was applied meanwhile (as ``window_totals.WindowTotals.reconcile``). Other entity kinds are ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TypeVar

from schemas.config import KpimonConfig
from schemas.scopes import Scope
from streams.core.facts import scopes_for
from streams.core.table_keys import split_table_key
from streams.entities.deals_leads import open_deals
from streams.readout.exact_sums import exact, rounded

Key = TypeVar("Key", Scope, str)
STEP_STATES = 100  # states read per step of ``reconcile`` (from a store on disk, each a read and a decode)
Contribution = tuple[tuple[Scope, ...], int, str]  # an open deal's scopes, its exact amount and its stage


class OpenPipeline:
    def __init__(self, config: KpimonConfig) -> None:
        self._config = config
        self._deals: dict[str, tuple[object, Contribution]] = {}  # open deals only: key -> (state, contribution)
        self._sums: dict[Scope, list[int]] = {}  # scope -> [open deals, exact value]
        self._stages: dict[Scope, dict[str, list[int]]] = {}  # scope -> stage -> [open deals, exact value]
        self._changes: set[Scope] = set()
        self._touched: set[str] | None = None

    @property
    def scopes(self) -> set[Scope]:
        return set(self._sums)

    def open_deals(self, scope: Scope) -> tuple[int, float] | None:
        """The number of open deals in ``scope`` and their value; None when it has none."""
        sums = self._sums.get(scope)
        return None if sums is None else (sums[0], rounded(sums[1]))

    def open_deals_by_stage(self, scope: Scope) -> dict[str, tuple[int, float]]:
        """Per stage the open deals of ``scope`` are in: their number and value (no entry for a stage with none)."""
        return {stage: (sums[0], rounded(sums[1])) for stage, sums in self._stages.get(scope, {}).items()}

    def take_changes(self) -> set[Scope]:
        """The scopes whose open deals changed since the last call."""
        changes, self._changes = self._changes, set()
        return changes

    def apply(self, states: Mapping[str, object | None]) -> None:
        """Entity states written since the last call, by table key; None for a deleted state."""
        for key, state in states.items():
            self._apply(key, state)

    def reconcile(self, stored: Iterable[tuple[str, object]]) -> Iterator[None]:
        """Become equal to ``stored`` (every entity state, or only the open deals), read step by step.

        ``stored`` may be a store's iterator, read while batches go on: a state applied from this
        call on is newer than the store's and is kept; one read from the store after a write is that write.
        """
        touched: set[str] = set()
        self._touched = touched
        return self._reconcile(iter(stored), touched)

    def _reconcile(self, stored: Iterator[tuple[str, object]], touched: set[str]) -> Iterator[None]:
        read: set[str] = set()  # the deals found in the store
        try:
            for number, (key, state) in enumerate(stored, 1):
                if _is_deal(key):
                    read.add(key)
                    if key not in touched:
                        self._apply(key, state)
                if number % STEP_STATES == 0:
                    yield
            for number, key in enumerate([key for key in self._deals if key not in read and key not in touched], 1):
                self._apply(key, None)
                if number % STEP_STATES == 0:
                    yield
        finally:
            if self._touched is touched:
                self._touched = None

    def _apply(self, key: str, state: object | None) -> None:
        if not _is_deal(key):
            return
        if self._touched is not None:
            self._touched.add(key)
        seen = self._deals.get(key)
        if seen is not None and seen[0] is state:
            return
        old = seen[1] if seen else None
        new = self._contribution(key, state) if state is not None else None
        if new is None:  # closed, or gone: nothing kept (the store may evict closed states; no copy pins them)
            self._deals.pop(key, None)
        else:
            self._deals[key] = (state, new)
        if old != new:
            self._add(old, -1)
            self._add(new, 1)

    def _contribution(self, key: str, state: object) -> Contribution | None:
        for deal in open_deals([(key, state)]):
            scopes = scopes_for(deal.team, deal.rep, deal.channel, deal.campaign, self._config)
            return tuple(scopes), exact(deal.amount), deal.stage
        return None

    def _add(self, contribution: Contribution | None, sign: int) -> None:
        if contribution is None:
            return
        scopes, amount, stage = contribution
        for scope in scopes:
            _add_to(self._sums, scope, sign, amount)
            stages = self._stages.setdefault(scope, {})
            _add_to(stages, stage, sign, amount)
            if not stages:
                del self._stages[scope]
            self._changes.add(scope)


def _add_to(sums: dict[Key, list[int]], key: Key, sign: int, amount: int) -> None:
    """Add (``sign`` 1) or take away (-1) one deal of ``amount`` at ``key``; a key left with no deal goes."""
    found = sums.setdefault(key, [0, 0])
    found[0] += sign
    found[1] += sign * amount
    if not found[0]:
        del sums[key]


def _is_deal(key: str) -> bool:
    return split_table_key(key)[1].startswith("deal:")
