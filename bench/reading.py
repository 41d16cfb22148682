"""Reading what a contender wrote: every committed record of a topic, per partition in offset
order, up to the end offsets at the time of the call (``read_committed``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.kafka.kafka_security import KafkaSecurity
from streams.kafka.topic_admin import partition_counts
from streams.telemetry.logfmt import logfmt

log = logging.getLogger("continust.bench")


async def read_topic(bootstrap: str, topic: str, each: Callable[[Any], None]) -> int:
    """Call ``each(record)`` for every committed record of ``topic``, partition by partition in
    offset order, and return how many there were; logs progress on long reads."""
    partitions = (await partition_counts(bootstrap, [topic], KafkaSecurity.from_env().check())).get(topic)
    if partitions is None:
        return 0
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        **KafkaSecurity.from_env().check().client_options(),
        isolation_level="read_committed",
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    count, last_log = 0, time.monotonic()
    try:
        for partition in range(partitions):
            tp = TopicPartition(topic, partition)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            end = (await consumer.end_offsets([tp]))[tp]
            while await consumer.position(tp) < end:
                batch = await consumer.getmany(tp, timeout_ms=500, max_records=10_000)
                for record in batch.get(tp, []):
                    if record.offset < end:
                        each(record)
                        count += 1
                if time.monotonic() - last_log > 5:
                    last_log = time.monotonic()
                    log.info(logfmt("bench.read.progress", topic=topic, partition=partition, records=count))
    finally:
        await consumer.stop()
    return count
