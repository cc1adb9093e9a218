"""The entity table's store: entity states on disk, and an index of the open deals.

A scrape reads one thing of the entity states: the open deals (``kpimon_open_deals``, the open
pipeline). Reading every state for that would cost time and memory in proportion to all the
deals, leads and people of the retention (800 days). So the store keeps, beside the states, a
private key ``$<key>`` for every deal whose state is open, written in the same atomic batch as
the state, from the pipeline's writes and from the changelog alike: the index always matches
the states on disk, and a scrape reads only the open deals.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import orjson
import rocksdict

from streams.entities.deals_leads import is_open
from streams.worker.store import Pending, RocksStore, key_partition

OPEN_DEAL_PREFIX = b"$"
DEAL_KEY = b"deal:"


def _open_deal_entry(key: bytes, value: bytes | None) -> tuple[bytes, bytes | None] | None:
    """(index key, b"" if the deal is open else None) for a deal's key; None for other entities."""
    if not key[1:].split(b"|", 1)[-1].startswith(DEAL_KEY):
        return None
    opened = value is not None and is_open(orjson.loads(value))
    return OPEN_DEAL_PREFIX + key, b"" if opened else None


class EntityRocksStore(RocksStore):
    """``RocksStore`` for entity states, with the keys of the open deals indexed."""

    def _set(self, key: bytes, value: bytes | None) -> None:
        super()._set(key, value)
        self._index(self._pending[key_partition(key)], key, value)

    def _del(self, key: bytes) -> None:
        super()._del(key)
        self._index(self._pending[key_partition(key)], key, None)

    def _index(self, pending: Pending, key: bytes, value: bytes | None) -> None:
        entry = _open_deal_entry(key, value)
        if entry is not None:
            pending[entry[0]] = entry[1]

    def _apply_record(self, partition: int, batch: rocksdict.WriteBatch, key: bytes, value: bytes | None) -> None:
        super()._apply_record(partition, batch, key, value)
        entry = _open_deal_entry(key, value)
        if entry is not None:
            if entry[1] is None:
                batch.delete(entry[0])
            else:
                batch.put(entry[0], entry[1])

    def open_deal_items(self) -> Iterator[tuple[str, Any]]:
        """(key, state) of the open deals of the partitions held."""
        for partition, db in self._owned_dbs():
            pending = dict(self._pending.get(partition, {}))
            keys = []
            for raw_key in db.keys(from_key=OPEN_DEAL_PREFIX):
                key = cast(bytes, raw_key)
                if not key.startswith(OPEN_DEAL_PREFIX):
                    break
                if key not in pending:
                    keys.append(key)
            keys += [key for key, value in pending.items() if value is not None and key.startswith(OPEN_DEAL_PREFIX)]
            for key in keys:
                value = self._raw_get(partition, key[len(OPEN_DEAL_PREFIX) :])
                if value is not None:
                    yield self._decode_key(key[len(OPEN_DEAL_PREFIX) :]), self._decode_value(value)
