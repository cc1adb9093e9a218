"""streams.core.kafka_partition: Kafka's murmur2, checked against the Java client's vectors and aiokafka's."""

from __future__ import annotations

import pytest
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from streams.core.kafka_partition import murmur2, partition_of

# org.apache.kafka.common.utils.UtilsTest.testMurmur2 (signed 32-bit results)
JAVA_VECTORS = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@pytest.mark.parametrize(("data", "signed"), JAVA_VECTORS.items())
def test_the_java_clients_vectors(data: bytes, signed: int) -> None:
    assert murmur2(data) == signed % 2**32


@given(st.binary(max_size=80))
def test_equal_to_aiokafkas_murmur2(data: bytes) -> None:
    assert murmur2(data) == aiokafka_murmur2(data)


@given(st.text(max_size=60), st.integers(min_value=1, max_value=64))
def test_the_partition_is_aiokafkas_default_partitioners(key: str, partitions: int) -> None:
    assert partition_of(key, partitions) == (aiokafka_murmur2(key.encode()) & 0x7FFFFFFF) % partitions
