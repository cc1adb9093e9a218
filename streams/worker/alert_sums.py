"""The counter sums alert rules read, shared through Redis: each worker publishes its partitions'.

One Redis hash, ``<namespace>:alerts:v1:sums``, holds one field per source
partition: the time it was computed and its sums (``partition_sums``). A worker
reads the whole hash and evaluates only when every partition was published
recently, by whichever worker owns it now.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import orjson
from redis.asyncio import Redis

from schemas.config import KpimonConfig
from streams.core.folding import BucketGroup
from streams.core.table_keys import key_partition
from streams.readout.alert_inputs import Need, Sums, merge_sums, partition_sums


def groups_by_partition(groups: Iterable[tuple[str, BucketGroup]]) -> dict[int, list[tuple[str, BucketGroup]]]:
    """Bucket groups split by the partition their key starts with."""
    split: dict[int, list[tuple[str, BucketGroup]]] = {}
    for key, group in groups:
        split.setdefault(key_partition(key), []).append((key, group))
    return split


class SharedSums:
    def __init__(self, redis: Redis, namespace: str, partitions: int, needs: Sequence[Need], config: KpimonConfig):
        self._redis = redis
        self.key = f"{namespace}:alerts:v1:sums"
        self._partitions = partitions
        self._needs = needs
        self._config = config

    async def publish(
        self, owned: Iterable[int], groups: Mapping[int, Sequence[tuple[str, BucketGroup]]], now: float
    ) -> None:
        """Publish the sums of the partitions this worker owns (an owned partition without data has none)."""
        fields = {
            str(partition): orjson.dumps(
                {"at": now, "sums": partition_sums(groups.get(partition, ()), self._needs, int(now), self._config)}
            )
            for partition in owned
        }
        if fields:
            await self._redis.hset(self.key, mapping=fields)  # type: ignore[arg-type]

    async def whole(self, now: float, max_age: float) -> tuple[Sums | None, list[int]]:
        """All partitions' sums added up, or None and the partitions not published within ``max_age``."""
        stored = await self._redis.hgetall(self.key)
        partials = {int(field): orjson.loads(value) for field, value in stored.items()}
        missing = [
            partition
            for partition in range(self._partitions)
            if partition not in partials or partials[partition]["at"] < now - max_age
        ]
        if missing:
            return None, missing
        return merge_sums(partials[partition]["sums"] for partition in range(self._partitions)), []
