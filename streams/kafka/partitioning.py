"""Which partition a record key goes to: Kafka's default partitioner (murmur2 of the key bytes),
the same function the Java clients, aiokafka and Faust's HTTP router use."""

from __future__ import annotations

from functools import lru_cache

from aiokafka.partitioner import murmur2


@lru_cache(maxsize=1 << 16)
def key_partition(key: bytes, partitions: int) -> int:
    """The partition of ``key`` among ``partitions``. aiokafka's murmur2 is pure Python (several
    µs a key) and the same keys come back all the time, so the most recent 65,536 (key, count)
    answers are kept."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions
