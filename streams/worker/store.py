"""The tables' local store: one RocksDB database (rocksdict) per table and partition, under the data dir.

Faust's ``rocksdb://`` store (``faust.stores.rocksdb.Store``) with four changes:

- **The partition comes from the key.** Faust's store takes it from the current event, which
  does not exist inside ``take_events()`` batches; every kpimon key starts with its partition
  (``streams.core.table_keys``), the same one ``PartitionKeyedTable`` sends its changelog record to.
- **Writes reach the disk only once Kafka has them.** Writes and deletes wait in memory
  (``_pending``) until ``checkpoint()``, which the pipeline calls after a batch is acknowledged
  (``IngestPipeline._durable``); it writes them in one atomic RocksDB batch together with the highest
  acknowledged changelog offset per partition. So the local database is always a prefix of the
  changelog, never ahead of it: after a crash, Faust's recovery reads the changelog from the
  offset stored here on (``Recovery._add`` seeks to ``persisted_offset``) and the state is exactly
  the changelog's, as with the memory store, while a normal restart reads only the records
  written since the last checkpoint. (Faust's own store writes at once and records offsets as
  they are acknowledged: a write that never reached Kafka would stay on disk, be taken for
  applied when its batch is read again, and be missing from the changelog for good.)
- **Bounded memory.** Every database shares one block cache, which also holds the index and
  filter blocks and is charged for the memtables (``STORE_CACHE_BYTES`` in all).
- **Only table keys are visible.** Keys are JSON strings (they start with ``"``); other keys
  (Faust's offset key, the seen-id index of ``streams.worker.seen_store``) are private.

``CachedRocksStore`` also keeps every decoded value in memory (for the small tables: bucket
groups and progress, read at every batch and scrape). A revoked partition's database is closed;
its pending writes are kept until the next checkpoint, which writes them if the partition is
held again by then (an eager rebalance revokes every partition and assigns most of them back,
possibly while a batch is between two stages) and drops them otherwise (the new owner reads
them from the changelog). When a partition comes back, recovery resumes at its stored offset
(the changelog has what another worker wrote meanwhile).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import Any, cast

import orjson
import rocksdict
from faust.stores.rocksdb import RocksDBOptions, Store
from faust.types import TP
from faust.utils import json as faust_json

from streams.core.table_keys import key_partition

STORE_CACHE_BYTES = 128 * 1024**2  # block cache, index and filter blocks, memtables: all databases of the process
MEMTABLE_BYTES = 48 * 1024**2  # of which memtables, at most
WRITE_BUFFER_BYTES = 8 * 1024**2  # one memtable of one database
BLOOM_BITS_PER_KEY = 10  # 1% of lookups of an absent key read a block
KEY_START = b'"'  # table keys are JSON strings
FAUST_JSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_UTC_Z  # faust.utils.json.dumps, with orjson installed
_shared: dict[str, Any] = {}

Pending = dict[bytes, bytes | None]  # raw key -> raw value, None: deleted


def _faust_json(value: Any) -> bytes:
    """``faust.utils.json.dumps`` with orjson installed, which Faust's ``json`` codec calls."""
    return orjson.dumps(value, default=faust_json.on_default, option=FAUST_JSON_OPTIONS)


def raw_key_partition(key: bytes) -> int:
    """The partition of a JSON-encoded table key, ``"3|..."`` or ``"3"``, without decoding it (see core.table_keys)."""
    return int(key[1:].split(b"|", 1)[0].rstrip(b'"'))


class TunedOptions(RocksDBOptions):
    """Faust's rocksdict options, with one block cache and memtable budget shared by every database."""

    def as_options(self) -> rocksdict.Options:
        if "cache" not in _shared:
            cache = rocksdict.Cache(STORE_CACHE_BYTES)
            _shared["cache"] = cache
            _shared["buffers"] = rocksdict.WriteBufferManager.new_write_buffer_manager_with_cache(
                MEMTABLE_BYTES, False, cache
            )
        options = rocksdict.Options(raw_mode=True)
        options.create_if_missing(True)
        if self.max_open_files is not None:
            options.set_max_open_files(self.max_open_files)
        options.set_write_buffer_size(WRITE_BUFFER_BYTES)
        options.set_max_write_buffer_number(2)
        options.set_target_file_size_base(self.target_file_size_base)
        options.set_write_buffer_manager(_shared["buffers"])
        options.set_compression_type(rocksdict.DBCompressionType.lz4())
        table = rocksdict.BlockBasedOptions()
        table.set_block_cache(_shared["cache"])
        table.set_cache_index_and_filter_blocks(True)
        table.set_pin_l0_filter_and_index_blocks_in_cache(True)
        table.set_bloom_filter(BLOOM_BITS_PER_KEY, False)
        options.set_block_based_table_factory(table)
        return options


def shared_cache_usage() -> int:
    """Bytes held by the shared block cache (memtables included), 0 before the first database opens."""
    cache = _shared.get("cache")
    return int(cache.get_usage()) if cache is not None else 0


class RocksStore(Store):
    """Faust's RocksDB store, keyed by the partition in the key, writing to disk at checkpoints."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("options", {})
        super().__init__(*args, **kwargs)
        self.rocksdb_options = TunedOptions(use_rocksdict=True)
        self._pending: dict[int, Pending] = {}
        self._pending_offsets: dict[int, int] = {}

    # -- reads and writes ----------------------------------------------------------------------------------------------

    def _db(self, partition: int) -> rocksdict.Rdict | None:
        """The partition's open database; None for a partition this worker does not hold."""
        return self._dbs.get(partition)

    def _raw_get(self, partition: int, key: bytes) -> bytes | None:
        pending = self._pending.get(partition)
        if pending is not None and key in pending:
            return pending[key]
        db = self._db(partition)
        return None if db is None else db.get(key)

    def _get(self, key: bytes) -> bytes | None:
        return self._raw_get(raw_key_partition(key), key)

    def _contains(self, key: bytes) -> bool:
        return self._get(key) is not None

    def _set(self, key: bytes, value: bytes | None) -> None:
        self._pending.setdefault(raw_key_partition(key), {})[key] = value

    def encode(self, key: Any, value: Any) -> tuple[bytes, bytes]:
        """A table key and value as stored, and as their changelog record carries them."""
        return self._encode_key(key), cast(bytes, self._encode_value(value))

    def encode_key(self, key: Any) -> bytes:
        return self._encode_key(key)

    # Faust's own encoding, the same bytes (its JSON codec is ``orjson.dumps`` with these options), without the
    # look-ups in its serializer registry that took 1 µs of the 1.1 µs of encoding a table key. Every read and
    # write of a key goes through here.
    def _encode_key(self, key: Any) -> bytes:
        if self.key_serializer == "json" and isinstance(key, str):
            return _faust_json(key)
        return super()._encode_key(key)

    def _encode_value(self, value: Any) -> bytes | None:
        if self.value_serializer == "json" and isinstance(value, dict):
            return _faust_json(value)
        return super()._encode_value(value)  # bytes pass through

    def set_encoded(self, key: Any, value: Any, raw_key: bytes, raw_value: bytes) -> None:
        """``self[key] = value`` with ``encode(key, value)`` done already (``PartitionKeyedTable.__setitem__``)."""
        self._set(raw_key, raw_value)

    def _del(self, key: bytes) -> None:
        self._pending.setdefault(raw_key_partition(key), {})[key] = None

    def set_persisted_offset(self, tp: TP, offset: int) -> None:
        """Held until the next checkpoint, with the writes it acknowledges."""
        current = self._pending_offsets.get(tp.partition, -1)
        self._pending_offsets[tp.partition] = max(current, offset)

    def checkpoint(self) -> None:
        """Write the pending writes and acknowledged offsets to disk; call only once Kafka has them all."""
        for partition in set(self._pending) | set(self._pending_offsets):
            writes = self._pending.pop(partition, {})
            offset = self._pending_offsets.pop(partition, None)
            db = self._db(partition)
            if db is None:  # revoked: the changelog has these writes, the new owner reads them there
                continue
            batch = rocksdict.WriteBatch(raw_mode=True)
            for key, value in writes.items():
                if value is None:
                    batch.delete(key)
                else:
                    batch.put(key, value)
            if offset is not None:
                batch.put(self.offset_key, str(offset).encode())
            db.write(batch)

    def pending_writes(self) -> int:
        return sum(len(writes) for writes in self._pending.values())

    # -- recovery ------------------------------------------------------------------------------------------------------

    def apply_changelog_batch(
        self, batch: Iterable[Any], to_key: Callable[[Any], Any], to_value: Callable[[Any], Any]
    ) -> None:
        """Changelog records to disk, with their offset, in one atomic write per partition."""
        writes: dict[int, rocksdict.WriteBatch] = {}
        offsets: dict[TP, int] = {}
        for event in batch:
            message = event.message
            offsets[message.tp] = max(offsets.get(message.tp, -1), message.offset)
            partition_batch = writes.get(message.partition)
            if partition_batch is None:
                partition_batch = writes[message.partition] = rocksdict.WriteBatch(raw_mode=True)
            self._apply_record(message.partition, partition_batch, message.key, message.value)
        for tp, offset in offsets.items():
            partition_batch = writes.get(tp.partition)
            if partition_batch is not None:
                partition_batch.put(self.offset_key, str(offset).encode())
        for partition, partition_batch in writes.items():
            self._db_for_partition(partition).write(partition_batch)
        self._after_recovery_batch()

    def _apply_record(self, partition: int, batch: rocksdict.WriteBatch, key: bytes, value: bytes | None) -> None:
        if value is None:
            batch.delete(key)
        else:
            batch.put(key, value)

    def _after_recovery_batch(self) -> None:
        """Called after each batch of changelog records reached the disk."""

    # -- iteration: table keys of the partitions held, pending writes included -----------------------------------------

    def _owned_dbs(self) -> Iterator[tuple[int, rocksdict.Rdict]]:
        # The partitions of any active topic: sources, re-keyed topic and changelogs are co-partitioned. (A
        # changelog created after the first assignment is missing from it, with its partitions held all the same.)
        owned = {tp.partition for tp in self.app.assignor.assigned_actives()}
        for partition, db in list(self._dbs.items()):
            if partition in owned:
                yield partition, db

    def _partition_items(self, partition: int, db: rocksdict.Rdict) -> Iterator[tuple[bytes, bytes]]:
        pending = self._pending.get(partition, {})
        for raw_key, value in db.items(from_key=KEY_START):
            key = cast(bytes, raw_key)
            if key[:1] != KEY_START:
                break
            if key in pending:
                continue
            yield key, cast(bytes, value)
        for key, pending_value in list(pending.items()):
            if pending_value is not None and key[:1] == KEY_START:
                yield key, pending_value

    def scan(self, partition: int, after: str | None, limit: int) -> list[tuple[str, Any]]:
        """Up to ``limit`` (key, value) of ``partition`` in key order after ``after``, as written (pending included)."""
        db = self._db(partition)
        if db is None:
            return []
        start = self._encode_key(after if after is not None else f"{partition}|")
        prefix = self._encode_key(f"{partition}|")[:-1]
        pending = self._pending.get(partition, {})
        found: list[tuple[str, Any]] = []
        for raw_key, raw_value in db.items(from_key=start):
            key = cast(bytes, raw_key)
            if not key.startswith(prefix) or len(found) >= limit:
                break
            if key == start and after is not None:
                continue
            value = pending.get(key, cast(bytes, raw_value))
            if value is not None:
                found.append((self._decode_key(key), self._decode_value(value)))
        return found

    def _iteritems(self) -> Iterator[tuple[bytes, bytes]]:
        for partition, db in self._owned_dbs():
            yield from self._partition_items(partition, db)

    def _iterkeys(self) -> Iterator[bytes]:
        return (key for key, _ in self._iteritems())

    def _itervalues(self) -> Iterator[bytes]:
        return (value for _, value in self._iteritems())

    def _size(self) -> int:
        return sum(1 for _ in self._iterkeys())


class CachedRocksStore(RocksStore):
    """A ``RocksStore`` that also keeps every decoded value in memory: for small tables read all the time."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._values: dict[int, dict[Any, Any]] = {}  # partition -> table key -> decoded value

    def _partition_values(self, partition: int) -> dict[Any, Any]:
        """The partition's decoded values; kept only while its database is open (else its pending writes)."""
        values = self._values.get(partition)
        if values is not None:
            return values
        db = self._db(partition)
        if db is None:
            pending = self._pending.get(partition, {})
            items: Iterable[tuple[bytes, bytes | None]] = [(k, v) for k, v in pending.items() if k[:1] == KEY_START]
        else:
            items = self._partition_items(partition, db)
        values = {self._decode_key(key): self._decode_value(value) for key, value in items if value is not None}
        if db is not None:
            self._values[partition] = values
        return values

    def __getitem__(self, key: Any) -> Any:
        return self._partition_values(key_partition(str(key)))[key]

    def get(self, key: Any, default: Any = None) -> Any:
        """As ``Mapping.get``, without raising and catching a KeyError for every absent key (new groups)."""
        return self._partition_values(key_partition(str(key))).get(key, default)

    def __setitem__(self, key: Any, value: Any) -> None:
        self.set_encoded(key, value, *self.encode(key, value))

    def set_encoded(self, key: Any, value: Any, raw_key: bytes, raw_value: bytes) -> None:
        self._partition_values(key_partition(str(key)))[key] = value
        self._set(raw_key, raw_value)

    def __delitem__(self, key: Any) -> None:
        self._partition_values(key_partition(str(key))).pop(key, None)
        self._del(self._encode_key(key))

    def __contains__(self, key: object) -> bool:
        return key in self._partition_values(key_partition(str(key)))

    def _held(self) -> Iterator[int]:
        return (partition for partition, _ in self._owned_dbs())

    def __iter__(self) -> Iterator[Any]:
        return itertools.chain.from_iterable(list(self._partition_values(p)) for p in self._held())

    def __len__(self) -> int:
        return sum(len(self._partition_values(p)) for p in self._held())

    def _items_decoded(self) -> Iterator[tuple[Any, Any]]:
        for partition in list(self._held()):
            yield from list(self._partition_values(partition).items())

    def _keys_decoded(self) -> Iterator[Any]:
        return (key for key, _ in self._items_decoded())

    def _values_decoded(self) -> Iterator[Any]:
        return (value for _, value in self._items_decoded())

    def _after_recovery_batch(self) -> None:
        self._values.clear()  # read again from disk, with what the changelog added

    def revoke_partitions(self, table: Any, tps: set[TP]) -> None:
        super().revoke_partitions(table, tps)
        for tp in tps:
            if tp.topic in table.changelog_topic.topics:
                self._values.pop(tp.partition, None)

    async def on_recovery_completed(self, active_tps: set[TP], standby_tps: set[TP]) -> None:
        self._values.clear()
        await super().on_recovery_completed(active_tps, standby_tps)
