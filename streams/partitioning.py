"""Which partition a record key goes to: Kafka's default partitioner (murmur2 of the key bytes),
the same function the Java clients, aiokafka and Faust's HTTP router use."""

from __future__ import annotations

from aiokafka.partitioner import murmur2


def key_partition(key: bytes, partitions: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % partitions
