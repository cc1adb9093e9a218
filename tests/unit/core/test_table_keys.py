"""streams.core.table_keys: every table key starts with its partition; the rest may hold the separator."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.core.table_keys import key_partition, split_table_key, table_key


@pytest.mark.parametrize(("key", "partition"), [("0|run-1", 0), ("11|abc-7", 11), ("2|a|b", 2), ("5", 5)])
def test_key_partition(key: str, partition: int) -> None:
    assert key_partition(key) == partition


@pytest.mark.parametrize(
    ("partition", "rest", "key"),
    [(0, "deal:D1", "0|deal:D1"), (3, "emea|ann|||1m|1764547200", "3|emea|ann|||1m|1764547200"), (12, "", "12|")],
)
def test_table_key(partition: int, rest: str, key: str) -> None:
    assert table_key(partition, rest) == key


def test_a_progress_key_is_the_partition_alone() -> None:
    assert split_table_key("7") == (7, "")


@given(st.integers(min_value=0, max_value=10_000), st.text())
def test_split_inverts_table_key(partition: int, rest: str) -> None:
    assert split_table_key(table_key(partition, rest)) == (partition, rest)
