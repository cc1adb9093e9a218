"""The seen-ids table's store: chunks of ids as changelog records, each id a key of its own on disk.

The table ``seen`` holds one record per batch and partition (``streams.core.dedup``): key
``"<partition>|<day>|<batch>"``, value 28 bytes per id (its 16-byte hash and the 12-byte
code of its first copy). That keeps the changelog at one record per batch. On disk, the
store also writes every id as a key of its own, ``#<hash>`` -> code, in the same atomic
batch as the chunk, so a lookup is one RocksDB read (a Bloom filter answers most reads of
an absent id without touching a block) and nothing per id is held in memory.

A chunk's ids are forgotten with it: deleting a chunk (the sweep of expired days, or its
tombstone read from the changelog) deletes its ids' keys at once, directly on disk. They
are older than the dedup horizon, so losing that delete in a crash only leaves a chunk
that the next sweep deletes again.
"""

from __future__ import annotations

from typing import cast

import rocksdict

from streams.core.dedup import chunk_prefix, decode_chunk
from streams.worker.store import RocksStore, key_partition

INDEX_PREFIX = b"#"


def _index_key(hashed: bytes) -> bytes:
    return INDEX_PREFIX + hashed


def _json_key(text: str) -> bytes:
    return b'"' + text.encode() + b'"'


class SeenRocksStore(RocksStore):
    """``RocksStore`` for the seen table: the ids of every chunk as keys, for lookups (``SeenLookup``)."""

    def _set(self, key: bytes, value: bytes | None) -> None:
        super()._set(key, value)
        if value is not None:
            pending = self._pending[key_partition(key)]
            for hashed, code in decode_chunk(value):
                pending[_index_key(hashed)] = code

    def _del(self, key: bytes) -> None:
        partition = key_partition(key)
        value = self._raw_get(partition, key)
        if value is not None:
            self._forget_ids(partition, value)
        super()._del(key)

    def _forget_ids(self, partition: int, chunk: bytes) -> None:
        pending = self._pending.get(partition, {})
        db = self._db(partition)
        batch = rocksdict.WriteBatch(raw_mode=True)
        for hashed, _ in decode_chunk(chunk):
            pending.pop(_index_key(hashed), None)
            batch.delete(_index_key(hashed))
        if db is not None:
            db.write(batch)

    def _apply_record(self, partition: int, batch: rocksdict.WriteBatch, key: bytes, value: bytes | None) -> None:
        if value is None:
            db = self._db_for_partition(partition)
            old = db.get(key)
            if old is not None:
                for hashed, _ in decode_chunk(old):
                    batch.delete(_index_key(hashed))
            batch.delete(key)
            return
        batch.put(key, value)
        for hashed, code in decode_chunk(value):
            batch.put(_index_key(hashed), code)

    def first_copy(self, partition: int, hashed: bytes) -> bytes | None:
        return self._raw_get(partition, _index_key(hashed))

    def days(self, partition: int) -> list[int]:
        """The days that have chunks of ``partition`` (one seek per day)."""
        found: set[int] = set()
        prefix = _json_key(f"{partition}|")[:-1]
        db = self._db(partition)
        if db is not None:
            iterator = db.iter()
            iterator.seek(prefix)
            while iterator.valid():
                key = iterator.key()
                if not key.startswith(prefix):
                    break
                day = int(key[len(prefix) : len(prefix) + 6])
                found.add(day)
                iterator.seek(_json_key(chunk_prefix(partition, day + 1))[:-1])
        for key, value in self._pending.get(partition, {}).items():
            if value is not None and key.startswith(prefix):
                found.add(int(key[len(prefix) : len(prefix) + 6]))
        return sorted(found)

    def chunk_keys(self, partition: int, day: int, limit: int) -> list[str]:
        """Up to ``limit`` keys of the partition's chunks of ``day`` (pending ones included, deleted ones not)."""
        prefix = _json_key(chunk_prefix(partition, day))[:-1]
        pending = self._pending.get(partition, {})
        keys: list[bytes] = [k for k, v in pending.items() if v is not None and k.startswith(prefix)][:limit]
        db = self._db(partition)
        if db is not None:
            for raw_key in db.keys(from_key=prefix):
                key = cast(bytes, raw_key)
                if len(keys) >= limit or not key.startswith(prefix):
                    break
                if pending.get(key, b"") is not None and key not in keys:
                    keys.append(key)
        return [self._decode_key(key) for key in keys]
