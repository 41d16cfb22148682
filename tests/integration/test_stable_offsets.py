"""A worker resuming a partition reads the offsets of the last committed transaction, never an
older one, on the real broker.

Kafka applies a transaction's offsets only when its commit marker reaches the offsets topic,
which happens after the producer's commit has returned. Until then a plain OffsetFetch answers
the offset before the transaction: a worker taking the partition over in that moment would
process the transaction's input again. The worker's fetch (:func:`agents.transport.fetch_committed`,
which its rewind on assignment and its progress metadata read through) asks with
``require_stable`` (KIP-447) and waits. The transaction is held open here, so the pending state
lasts as long as the test needs, whatever the machine's speed.
"""

from __future__ import annotations

import aiokafka.errors as Errors
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from faust.types import TP

from agents.faust_compat import offset_fetch
from agents.transport import fetch_committed
from streams.kafka.topic_admin import ensure_topics
from tests.integration.conftest import run

UNSTABLE_OFFSET_COMMIT = 88


def test_a_pending_transactional_offset_is_never_read_as_the_one_before_it(kafka: str, run_id: str) -> None:
    topic, group = f"stable-{run_id}", f"stable-{run_id}"
    run(ensure_topics(kafka, {topic: 1}))
    tp = TP(topic, 0)
    offsets = lambda o: {TopicPartition(topic, 0): o}  # noqa: E731

    async def scenario() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=kafka, transactional_id=f"stable-{run_id}")
        consumer = AIOKafkaConsumer(bootstrap_servers=kafka, group_id=group, enable_auto_commit=False)
        await producer.start()
        await consumer.start()
        try:
            async with producer.transaction():  # committed: the offset before
                await producer.send_offsets_to_transaction(offsets(5), group)
            assert await fetch_committed(consumer, [tp]) == {tp: 5}
            await producer.begin_transaction()  # pending: offset 10, not committed yet
            await producer.send_offsets_to_transaction(offsets(10), group)
            plain = await offset_fetch(consumer, [tp], require_stable=False)
            assert [(e.offset, e.error_code) for e in plain.entries] == [(5, 0)], (
                "a plain fetch answers the offset before the pending transaction"
            )
            stable = await offset_fetch(consumer, [tp])
            assert [e.error_code for e in stable.entries] == [UNSTABLE_OFFSET_COMMIT]
            # the worker's fetch keeps asking while the commit pends, and never answers 5
            with pytest.raises(Errors.KafkaTimeoutError):
                await fetch_committed(consumer, [tp], timeout_s=1.0)
            await producer.commit_transaction()
            assert await fetch_committed(consumer, [tp]) == {tp: 10}
        finally:
            await consumer.stop()
            await producer.stop()

    run(scenario())
