"""The partition Kafka's default partitioner (Java's, aiokafka's) picks for a key: murmur2 of its bytes. Pure.

aiokafka's ``murmur2`` is the Java client's, transcribed byte by byte in pure Python: about 6 µs for
an event id, a tenth of the worker's whole CPU per event with 10 reps, since every event read from a
source topic is checked against the partition of its routing key. This one reads the key's 32-bit
words in one ``struct`` call and folds them with fewer masks: the same function (a property test
compares the two on random keys), in half the time.
"""

from __future__ import annotations

from struct import unpack_from

SEED = 0x9747B28C
MULTIPLIER = 0x5BD1E995
MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """MurmurHash2 of ``data`` with Kafka's seed, as ``org.apache.kafka.common.utils.Utils.murmur2`` (unsigned)."""
    length = len(data)
    h = SEED ^ length
    for word in unpack_from(f"<{length >> 2}I", data):
        k = (word * MULTIPLIER) & MASK
        k = ((k ^ (k >> 24)) * MULTIPLIER) & MASK
        h = ((h * MULTIPLIER) & MASK) ^ k
    tail = length & 3
    if tail:
        base = length - tail
        if tail == 3:
            h ^= data[base + 2] << 16
        if tail >= 2:
            h ^= data[base + 1] << 8
        h = ((h ^ data[base]) * MULTIPLIER) & MASK
    h ^= h >> 13
    h = (h * MULTIPLIER) & MASK
    return h ^ (h >> 15)


def partition_of(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for ``key`` among ``partitions``."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions
