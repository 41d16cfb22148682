"""Reading and writing the real broker from tests: publish, read with read_committed, and the
group's committed offsets."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka import errors as Errors
from aiokafka.admin import AIOKafkaAdminClient

from bench.producing import send_values
from streams.kafka.topic_admin import partition_counts


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def publish(bootstrap: str, records: list[tuple[str, bytes | None, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for topic, key, value in records:
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


async def publish_values(bootstrap: str, topic: str, partitions: int, values: list[bytes]) -> None:
    """Unkeyed records spread round-robin over ``partitions``, in whole batches (fast, for large
    backlogs), in the given order within each partition."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_batch_size=512 * 1024)
    await producer.start()
    try:
        await send_values(producer, topic, partitions, values)
    finally:
        await producer.stop()


async def publish_to(bootstrap: str, topic: str, partition: int, key: bytes | None, value: bytes) -> None:
    """One record on an explicit partition (whatever its key would choose)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key, partition=partition)
    finally:
        await producer.stop()


async def read_all(bootstrap: str, topic: str, expected: int, timeout: float = 60) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while len(records) < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for messages in batch.values():
                records.extend(messages)
        # anything beyond the expected count would be a duplicate: give it a moment to show up
        batch = await consumer.getmany(timeout_ms=1500)
        for messages in batch.values():
            records.extend(messages)
    finally:
        await consumer.stop()
    return records


async def open_transactions(bootstrap: str, topics: list[str]) -> dict[str, tuple[int, int]]:
    """Partitions whose last stable offset lags the high watermark: a transaction is open."""
    counts = await partition_counts(bootstrap, topics)
    tps = [TopicPartition(t, p) for t, n in counts.items() for p in range(n)]
    ends = {}
    for level in ("read_uncommitted", "read_committed"):
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level=level)
        await consumer.start()
        try:
            ends[level] = await consumer.end_offsets(tps)
        finally:
            await consumer.stop()
    return {
        f"{tp.topic}:{tp.partition}": (hw, ends["read_committed"][tp])
        for tp, hw in ends["read_uncommitted"].items()
        if hw != ends["read_committed"][tp]
    }


async def group_offsets(
    bootstrap: str, group: str, topics: list[str]
) -> tuple[dict[str, int], dict[str, int]]:
    """The group's committed offsets and the end offsets of ``topics``, as "topic:partition"."""
    counts = await partition_counts(bootstrap, topics)
    tps = [TopicPartition(t, p) for t, n in counts.items() for p in range(n)]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group, partitions=tps)
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed")
    await consumer.start()
    try:
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    name = lambda tp: f"{tp.topic}:{tp.partition}"  # noqa: E731
    return (
        {name(tp): meta.offset for tp, meta in offsets.items() if meta.offset >= 0},
        {name(tp): end for tp, end in ends.items() if end > 0},
    )


async def stable_group_offsets(bootstrap: str, group: str, topics: list[str]) -> dict[str, int]:
    """The group's committed offsets of ``topics``, as ``{"topic:partition": offset}``, read as a
    worker reads them on assignment (:func:`agents.transport.fetch_committed`: OffsetFetch with
    ``require_stable``, retried while a transaction's offsets await their commit marker): the
    offsets of the last committed transaction, never the ones before it."""
    from faust.types import TP

    from agents.transport import fetch_committed

    counts = await partition_counts(bootstrap, topics)
    tps = [TP(t, p) for t, n in counts.items() for p in range(n)]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        committed = await fetch_committed(consumer, tps)
    finally:
        await consumer.stop()
    return {f"{tp.topic}:{tp.partition}": offset for tp, offset in committed.items()}


async def read_to_end(bootstrap: str, topic: str, isolation: str = "read_committed") -> dict[int, list[Any]]:
    """Every committed record of ``topic`` (every record written, with ``read_uncommitted``),
    per partition in offset order, up to the end offsets at the time of the call (for
    ``read_committed``, the last stable offsets: an open transaction hides what follows it)."""
    partitions = (await partition_counts(bootstrap, [topic]))[topic]
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, isolation_level=isolation, enable_auto_commit=False
    )
    await consumer.start()
    records: dict[int, list[Any]] = {p: [] for p in range(partitions)}
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=500)
            for tp, messages in batch.items():
                records[tp.partition].extend(m for m in messages if m.offset < ends[tp])
    finally:
        await consumer.stop()
    return records


async def unread_records(bootstrap: str, group: str, topics: list[str]) -> dict[str, int]:
    """Per "topic:partition", the committed records at or after the group's committed offset
    (a transactionally written topic ends in a commit marker, so offsets alone cannot tell)."""
    committed, ends = await group_offsets(bootstrap, group, topics)
    unread: dict[str, int] = {}
    if all(committed.get(name, 0) >= end for name, end in ends.items()):
        return unread
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, isolation_level="read_committed", enable_auto_commit=False
    )
    await consumer.start()
    # aiokafka's stop() raises CancelledError when its group task has not run yet
    await asyncio.sleep(0)
    try:
        for name, end in ends.items():
            topic, partition = name.rsplit(":", 1)
            tp = TopicPartition(topic, int(partition))
            start = committed.get(name, 0)
            if start >= end:
                continue
            consumer.assign([tp])
            consumer.seek(tp, start)
            count = 0
            while await consumer.position(tp) < end:
                batch = await consumer.getmany(tp, timeout_ms=500)
                count += sum(1 for m in batch.get(tp, []) if m.offset < end)
            if count:
                unread[name] = count
    finally:
        await consumer.stop()
    return unread


def consumed_everything(bootstrap: str, group: str, topics: list[str]) -> bool:
    """Whether the group has committed every record of ``topics``."""
    return not asyncio.run(unread_records(bootstrap, group, topics))


def consumption(bootstrap: str, group: str, topics: list[str]) -> str:
    """The group's committed offsets against the end offsets, for a failure message."""
    committed, ends = asyncio.run(group_offsets(bootstrap, group, topics))
    unread = asyncio.run(unread_records(bootstrap, group, topics))
    return f"committed {committed}\nend offsets {ends}\nunread {unread}"


def inputs_idle(bootstrap: str, repartition: str, inputs: int) -> bool:
    """Whether, in every partition of a repartition topic, the last progress record of each of
    the ``inputs`` source partitions says it is idle: the source stage has read everything and
    writes nothing more until new input arrives."""
    if repartition not in asyncio.run(partition_counts(bootstrap, [repartition])):
        return False  # not created yet
    for messages in asyncio.run(read_to_end(bootstrap, repartition)).values():
        last: dict[int, bool] = {}
        for m in messages:
            report = dict(m.headers).get("continust-progress")
            if report is not None:
                source, _progress, idle = report.decode().split(" ")
                last[int(source)] = idle == "1"
        if len(last) < inputs or not all(last.values()):
            return False
    return True


def settled(bootstrap: str, group: str, topics: list[str], inputs: int) -> bool:
    """Whether the group has committed every record of ``topics`` and, when one of them is a
    repartition topic, its ``inputs`` source partitions were reported idle before: nothing
    more will be written or emitted until new input arrives. ``False`` while the group has no
    coordinator yet (on a fresh broker, before a worker joined): a predicate to poll from the
    moment a worker starts."""
    try:
        for topic in topics:
            if topic.endswith("-repartition") and not inputs_idle(bootstrap, topic, inputs):
                return False
        return consumed_everything(bootstrap, group, topics)
    except Errors.GroupCoordinatorNotAvailableError:  # a group no worker has joined yet
        return False
