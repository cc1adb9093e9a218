"""Entity states past the retention, deleted a few per batch (``streams.entities.retention``).

A cursor walks each partition's entity keys in order, ``ENTITY_SWEEP_KEYS`` per batch; once
it has gone round a partition, the next round waits until the partition's watermark has moved
on by a day. So a sweep costs a bounded few reads per batch, whatever the number of entities.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

from streams.core.table_keys import split_table_key
from streams.entities.retention import evictable

ENTITY_SWEEP_KEYS = 256
ROUND_PAUSE_SECONDS = 86_400

Scan = Callable[[int, str | None, int], list[tuple[str, Any]]]  # (partition, after key, limit) -> items


def scan_mapping(states: Mapping[str, Any]) -> Scan:
    """``Scan`` over a plain mapping (the memory tables of tests)."""

    def scan(partition: int, after: str | None, limit: int) -> list[tuple[str, Any]]:
        keys = sorted(key for key in states if split_table_key(key)[0] == partition and (after is None or key > after))
        return [(key, states[key]) for key in keys[:limit]]

    return scan


class EntitySweep:
    def __init__(self, table: MutableMapping[str, Any], scan: Scan) -> None:
        self._table = table
        self._scan = scan
        self._cursors: dict[int, str | None] = {}
        self._round_started: dict[int, int] = {}  # partition -> watermark when its current round began
        self.evicted = 0

    def run(self, watermarks: Mapping[int, int]) -> None:
        for partition, watermark in watermarks.items():
            cursor = self._cursors.get(partition)
            if cursor is None:
                started = self._round_started.get(partition)
                if started is not None and watermark - started < ROUND_PAUSE_SECONDS:
                    continue
                self._round_started[partition] = watermark
            items = self._scan(partition, cursor, ENTITY_SWEEP_KEYS)
            self._cursors[partition] = items[-1][0] if len(items) == ENTITY_SWEEP_KEYS else None
            for key, state in items:
                kind = split_table_key(key)[1].split(":", 1)[0]
                if evictable(kind, state, watermark):
                    del self._table[key]
                    self.evicted += 1
