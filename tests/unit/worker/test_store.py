"""streams.worker.store and seen_store: RocksDB per partition, written at checkpoints, the seen ids as keys.

A real Faust app and real RocksDB databases in a temporary directory; no broker is needed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust
import orjson
import pytest
from faust.types import TP

from streams.core.dedup import chunk_key, copy_code, encode_chunk, id_hash
from streams.worker.app import CACHED_STORE, ENTITY_STORE, ROCKS_STORE, SEEN_STORE, PartitionKeyedTable
from streams.worker.store import raw_key_partition


def make_store(tmp_path: Path, store: str, name: str = "x") -> Any:
    app = faust.App("unit", broker="kafka://127.0.0.1:1", store="rocksdb://", datadir=str(tmp_path))
    table = PartitionKeyedTable(app, name=name, default=None, partitions=2, key_type=str)
    table.store_url = store
    data = table.data
    for partition in (0, 1):
        data._db_for_partition(partition)
    changelog = table.changelog_topic.get_topic_name()
    app.assignor.assigned_actives = lambda: {TP(changelog, 0), TP(changelog, 1)}  # type: ignore[method-assign]
    return data


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Any]:
    yield make_store(tmp_path, ROCKS_STORE)


def changelog(partition: int, offset: int, key: bytes, value: bytes | None) -> Any:
    message = SimpleNamespace(tp=TP("unit-x-changelog", partition), partition=partition, offset=offset, key=key)
    message.value = value
    return SimpleNamespace(message=message)


def test_key_partition() -> None:
    assert raw_key_partition(b'"3|deal:x"') == 3
    assert raw_key_partition(b'"12"') == 12
    assert raw_key_partition(b'"0|019675|run|1"') == 0


def test_writes_reach_the_disk_at_the_checkpoint_with_their_offset(store: Any) -> None:
    tp = TP("unit-x-changelog", 1)
    store["1|a"] = {"n": 1}
    store["0|b"] = [2]
    assert store["1|a"] == {"n": 1} and "0|b" in store  # read back before the checkpoint
    assert store._db(1).get(b'"1|a"') is None  # not on disk until Kafka has it
    store.set_persisted_offset(tp, 7)
    store.set_persisted_offset(tp, 6)  # acknowledgements may come out of order: the highest counts
    assert store.persisted_offset(tp) is None
    store.checkpoint()
    assert store._db(1).get(b'"1|a"') == b'{"n":1}'
    assert store.persisted_offset(tp) == 7
    del store["1|a"]
    assert "1|a" not in store and store._db(1).get(b'"1|a"') is not None
    store.checkpoint()
    assert store._db(1).get(b'"1|a"') is None
    assert sorted(store.items()) == [("0|b", [2])]


def test_iteration_shows_table_keys_of_the_partitions_held_with_pending_writes(store: Any) -> None:
    store["0|a"] = 1
    store["1|b"] = 2
    store.checkpoint()
    store["0|c"] = 3
    del store["1|b"]
    assert sorted(store.items()) == [("0|a", 1), ("0|c", 3)]
    assert len(store) == 2
    changelog_topic = store.table.changelog_topic.get_topic_name()
    store.app.assignor.assigned_actives = lambda: {TP(changelog_topic, 1)}
    assert list(store.items()) == []  # partition 0 is not held: not visible (its database stays on disk)


def test_recovery_writes_records_and_their_offset_atomically(store: Any) -> None:
    store.apply_changelog_batch(
        [changelog(0, 3, b'"0|a"', b"1"), changelog(0, 4, b'"0|b"', b"2"), changelog(0, 5, b'"0|a"', None)],
        to_key=lambda key: key,
        to_value=lambda value: value,
    )
    assert dict(store.items()) == {"0|b": 2}
    assert store.persisted_offset(TP("unit-x-changelog", 0)) == 5


def test_pending_writes_of_a_partition_revoked_meanwhile(store: Any) -> None:
    """Dropped if it is not held at the checkpoint, written if it was assigned back (an eager rebalance)."""
    tp = TP(store.table.changelog_topic.get_topic_name(), 1)
    store["1|a"] = 1
    store.set_persisted_offset(tp, 3)
    store.revoke_partitions(store.table, {tp})
    store.checkpoint()
    assert 1 not in store._dbs
    store["1|b"] = 2
    store.set_persisted_offset(tp, 4)
    store.revoke_partitions(store.table, {tp})
    store._db_for_partition(1)  # assigned back before the batch's checkpoint
    store.checkpoint()
    assert store._db(1).get(b'"1|b"') == b"2" and store.persisted_offset(tp) == 4
    assert store._db(1).get(b'"1|a"') is None


def test_scan_walks_a_partition_in_key_order(store: Any) -> None:
    for key in ("0|c", "0|a", "1|z", "0|b"):
        store[key] = key
    store.checkpoint()
    store["0|b"] = "changed"
    assert store.scan(0, None, 2) == [("0|a", "0|a"), ("0|b", "changed")]
    assert store.scan(0, "0|b", 5) == [("0|c", "0|c")]
    assert store.scan(1, None, 5) == [("1|z", "1|z")]


def test_the_cached_store_keeps_decoded_values_and_reloads_after_recovery(tmp_path: Path) -> None:
    store = make_store(tmp_path, CACHED_STORE)
    value = {"buckets": {}}
    store["0|g"] = value
    assert store["0|g"] is value  # no decoding on read
    assert store.get("0|g") is value and store.get("1|g") is None and store.get("0|x", 5) == 5
    store.checkpoint()
    store.apply_changelog_batch([changelog(0, 9, b'"0|h"', b"[1]")], lambda k: k, lambda v: v)
    assert dict(store.items()) == {"0|g": value, "0|h": [1]}


def test_the_seen_store_answers_per_id_and_forgets_ids_with_their_chunk(tmp_path: Path) -> None:
    store = make_store(tmp_path, SEEN_STORE, name="seen")
    first = chunk_key(0, 19_675, "run-1")
    store[first] = encode_chunk({id_hash("e1"): copy_code("crm", 5), id_hash("e2"): copy_code("crm", 6)})
    assert store.first_copy(0, id_hash("e1")) == copy_code("crm", 5)  # pending
    store.checkpoint()
    assert store.first_copy(0, id_hash("e1")) == copy_code("crm", 5)  # on disk
    assert store.first_copy(1, id_hash("e1")) is None
    store[chunk_key(0, 19_676, "run-2")] = encode_chunk({id_hash("e3"): copy_code("crm", 7)})
    assert store.days(0) == [19_675, 19_676] and store.days(1) == []
    assert store.chunk_keys(0, 19_675, 10) == [first]
    del store[first]
    assert store.first_copy(0, id_hash("e1")) is None
    assert store.chunk_keys(0, 19_675, 10) == []
    store.checkpoint()
    assert store.days(0) == [19_676]
    assert list(store.keys()) == [chunk_key(0, 19_676, "run-2")]  # the ids' own keys are not table keys


def test_the_seen_store_restores_ids_from_the_changelog(tmp_path: Path) -> None:
    store = make_store(tmp_path, SEEN_STORE, name="seen")
    key = chunk_key(1, 19_675, "run-1")
    raw_key = b'"' + key.encode() + b'"'
    chunk = encode_chunk({id_hash("e1"): copy_code("crm", 5)})
    store.apply_changelog_batch([changelog(1, 0, raw_key, chunk)], lambda k: k, lambda v: v)
    assert store.first_copy(1, id_hash("e1")) == copy_code("crm", 5)
    store.apply_changelog_batch([changelog(1, 1, raw_key, None)], lambda k: k, lambda v: v)  # its tombstone
    assert store.first_copy(1, id_hash("e1")) is None


def test_a_data_dir_is_held_by_one_worker(tmp_path: Path) -> None:
    from streams.worker.run import DataDirInUse, lock_data_dir

    held = lock_data_dir(tmp_path / "data")
    with pytest.raises(DataDirInUse, match="in use by another kpimon worker"):
        lock_data_dir(tmp_path / "data")
    held.close()
    lock_data_dir(tmp_path / "data").close()


def test_the_entity_store_indexes_open_deals_only(tmp_path: Path) -> None:
    store = make_store(tmp_path, ENTITY_STORE, name="entities")
    open_deal = {"created_at": 1, "outcome": None, "stage": None, "amount": 5.0}
    won_deal = {**open_deal, "outcome": {"at": 2, "event_id": "w"}}
    store["0|deal:a"] = open_deal
    store["0|deal:b"] = won_deal
    store["0|lead:deal:x"] = {"created_at": 1}
    assert list(store.open_deal_items()) == [("0|deal:a", open_deal)]  # pending
    store.checkpoint()
    assert list(store.open_deal_items()) == [("0|deal:a", open_deal)]  # on disk
    store["0|deal:a"] = won_deal  # closed now
    store["0|deal:b"] = open_deal  # re-opened
    assert list(store.open_deal_items()) == [("0|deal:b", open_deal)]
    store.checkpoint()
    del store["0|deal:b"]
    assert list(store.open_deal_items()) == []
    store.apply_changelog_batch(
        [changelog(1, 0, b'"1|deal:c"', orjson.dumps(open_deal))], lambda k: k, lambda v: v
    )  # restored from the changelog: indexed too
    assert list(store.open_deal_items()) == [("1|deal:c", open_deal)]
    assert sorted(key for key, _ in store.items()) == ["0|deal:a", "0|lead:deal:x", "1|deal:c"]


class RecordingBuilder:
    """aiokafka's BatchBuilder as far as ChangelogBatches uses it: the records appended to it."""

    def __init__(self) -> None:
        self.records: list[tuple[bytes, bytes | None]] = []

    def append(self, *, timestamp: float | None, key: bytes, value: bytes | None) -> object:
        self.records.append((key, value))
        return object()


@pytest.mark.parametrize("store_url", [ROCKS_STORE, CACHED_STORE, ENTITY_STORE])
async def test_a_write_encodes_once_for_the_changelog_and_the_store(tmp_path: Path, store_url: str) -> None:
    """The changelog record carries the bytes Faust's send_changelog would; the store keeps the same bytes.

    (A coroutine only for its event loop: Faust's own record, built to compare, is an asyncio future.)
    """
    store = make_store(tmp_path, store_url)
    table = store.table
    builders: list[RecordingBuilder] = []
    table.app._producer = SimpleNamespace(_ensure_producer=lambda: SimpleNamespace(create_batch=builders_append))

    def builders_append() -> RecordingBuilder:
        builders.append(RecordingBuilder())
        return builders[-1]

    value = {"buckets": {"1700000000": {"calls": 2, "call_duration_seconds": 150.5}}, "offsets": {"crm": 7}}
    table["1|all|1m|1699999200"] = value
    faust_own = table.changelog_topic.as_future_message(
        key="1|all|1m|1699999200",
        value=value,
        partition=1,
        key_serializer=table.key_serializer,
        value_serializer=table.value_serializer,
        callback=table._on_changelog_sent,
        eager_partitioning=True,
    ).message
    (builder,) = builders
    assert builder.records == [(faust_own.key, faust_own.value)]
    assert faust_own.key == b'"1|all|1m|1699999200"' and faust_own.value == orjson.dumps(value)
    assert table.changelog_batches.pending_records() == 1
    assert store["1|all|1m|1699999200"] == value
    store.checkpoint()
    assert store._db(1).get(faust_own.key) == faust_own.value
    del table["1|all|1m|1699999200"]
    assert builder.records[-1] == (faust_own.key, None)  # a deletion: the key without a value
    assert store.encode("0|x", b"raw") == (store._encode_key("0|x"), store._encode_value(b"raw")) == (b'"0|x"', b"raw")
    assert "1|all|1m|1699999200" not in store
