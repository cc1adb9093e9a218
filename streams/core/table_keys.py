"""The key format of every state table: ``"<partition>|<rest>"``. Pure.

Every stored value belongs to the source partition it was folded from, and its key says
which: the table sends the key's changelog record to that partition, and a worker keeps
only the keys of the partitions it owns. ``rest`` is the table's own key (a bucket group,
an entity, a batch of seen ids) and may itself hold ``|``. The progress table's keys are the
partition alone (``"<partition>"``): their ``rest`` is empty.
"""

from __future__ import annotations

PARTITION_SEPARATOR = "|"


def table_key(partition: int, rest: str) -> str:
    """``"<partition>|<rest>"``."""
    return f"{partition}{PARTITION_SEPARATOR}{rest}"


def split_table_key(key: str) -> tuple[int, str]:
    """``(partition, rest)`` of a table key; ``rest`` is "" for a key that is the partition alone."""
    partition, _, rest = key.partition(PARTITION_SEPARATOR)
    return int(partition), rest


def key_partition(key: str) -> int:
    """The partition a table key belongs to."""
    return split_table_key(key)[0]
