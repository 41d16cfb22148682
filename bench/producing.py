"""Producing events fast and in order: records are grouped into one aiokafka batch per
partition (Kafka's default partitioner on the record key, as the Java clients and aiokafka
compute it), and the batches of a call are sent in order, so every partition receives its
events in the order given. The record key is the event's ``user`` unless ``keys`` gives one per
event (:func:`bench.events.record_key`)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer

from bench.events import Event, encode
from streams.kafka.partitioning import key_partition


async def send_events(
    producer: AIOKafkaProducer,
    topic: str,
    partitions: int,
    events: Iterable[Event],
    keys: Sequence[bytes] | None = None,
) -> None:
    """Send ``events`` (with ``keys[i]`` as the i-th record key, if given) and wait until the
    broker has acknowledged all of them."""
    batches: dict[int, Any] = {}
    deliveries = []
    for i, event in enumerate(events):
        key, value = encode(event, None if keys is None else keys[i])
        partition = key_partition(key, partitions)
        batch = batches.get(partition)
        if batch is None:
            batch = batches[partition] = producer.create_batch()
        if batch.append(key=key, value=value, timestamp=None) is None:
            deliveries.append(await producer.send_batch(batch, topic, partition=partition))
            batch = batches[partition] = producer.create_batch()
            batch.append(key=key, value=value, timestamp=None)
    for partition, batch in batches.items():
        deliveries.append(await producer.send_batch(batch, topic, partition=partition))
    await asyncio.gather(*deliveries)


async def send_values(
    producer: AIOKafkaProducer, topic: str, partitions: int, values: Sequence[bytes]
) -> None:
    """Send unkeyed ``values`` round-robin over ``partitions``, in whole batches and in order
    within each partition, and wait until the broker has acknowledged all of them."""
    batches: dict[int, Any] = {}
    deliveries = []
    for i, value in enumerate(values):
        partition = i % partitions
        batch = batches.get(partition) or producer.create_batch()
        if batch.append(key=None, value=value, timestamp=None) is None:
            deliveries.append(await producer.send_batch(batch, topic, partition=partition))
            batch = producer.create_batch()
            batch.append(key=None, value=value, timestamp=None)
        batches[partition] = batch
    for partition, batch in batches.items():
        deliveries.append(await producer.send_batch(batch, topic, partition=partition))
    await asyncio.gather(*deliveries)
