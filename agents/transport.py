"""The ``continust://`` Faust transport: Faust's aiokafka transport with a transaction manager
that keeps every write in the transaction of the input partition it derives from.

Faust's own manager picks the transactional producer by the *destination* topic and partition,
which fails for topics the app does not consume (output topics) and puts a record written to
another partition (repartitioning) into another partition's transaction. Here:

* a send that names ``transactional_id`` goes to exactly that producer;
* a send without one (Faust's table changelog writes, always to the partition of the event being
  processed) keeps Faust's rule, which for co-partitioned topics is the source's producer;
* before offsets commit, Faust's send buffer is flushed, so changelog records buffered by
  ``send_soon`` are inside the transaction that commits the offsets they derive from.

Its consumer
* commits only through the commit gate (:mod:`agents.commit_gate`);
* asks the broker for end offsets instead of reading the cached last stable offset: under
  ``exactly_once`` Faust takes a partition's highwater from the last fetch, which is unknown (-1)
  for a changelog partition not fetched yet, so a worker restarting with state on disk failed its
  recovery consistency check (persisted offset > -1). ``end_offsets`` of a ``read_committed``
  consumer is the last stable offset, which is what recovery must read up to;
* rewinds partitions without a committed offset to their beginning when Faust rewinds to the
  committed offsets (see :meth:`ConsumerThread._seek_to_committed`).

Registered under the ``faust.transports`` entry point as ``continust``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import Any, cast

from faust.transport.consumer import TransactionManager as FaustTransactionManager
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from faust.types.tuples import RecordMetadata

from agents.commit_gate import gate_for


def transactional_id_for(app_id: str, group: int, partition: int) -> str:
    """Faust's transactional id of the producer owning input partition ``partition`` of topic
    group ``group``."""
    return f"{app_id}-{group}-{partition}"


class TransactionManager(FaustTransactionManager):
    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None,
        timestamp: float | None,
        headers: Any,
        *,
        transactional_id: str | None = None,
    ) -> Awaitable[RecordMetadata]:
        if transactional_id is None:
            return await super().send(topic, key, value, partition, timestamp, headers)
        return await self.producer.send(
            topic, key, value, partition, timestamp, headers, transactional_id=transactional_id
        )

    async def commit(self, offsets: Mapping[TP, int], start_new_transaction: bool = True) -> bool:
        await self.producer.buffer.flush()
        await self._ensure_in_transaction(offsets)
        return await super().commit(offsets, start_new_transaction=start_new_transaction)

    async def _ensure_in_transaction(self, offsets: Mapping[TP, int]) -> None:
        """On shutdown Faust commits once with ``start_new_transaction=False`` and then once more
        when its consumer stops; offsets still to commit then need a transaction to go in."""
        producers: Mapping[str, Any] = getattr(self.producer, "_transaction_producers", {})
        assignor = self.app.assignor
        for tp in offsets:
            tid = transactional_id_for(self.app.conf.id, assignor.group_for_topic(tp.topic), tp.partition)
            producer = producers.get(tid)
            if producer is not None and not producer._txn_manager.is_in_transaction():
                await producer.begin_transaction()


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    async def seek_to_committed(self) -> Mapping[TP, int]:
        return await self.call_thread(self._seek_to_committed)

    async def _seek_to_committed(self) -> Mapping[TP, int]:
        """Rewind every assigned partition to its committed offset, and a partition with none
        to its beginning. Faust drops records fetched around a rebalance and relies on this
        rewind to read them again; aiokafka skips partitions without a committed offset, whose
        dropped records were then never read."""
        consumer = self._ensure_consumer()
        committed = await consumer.seek_to_committed()
        uncommitted = [tp for tp, offset in committed.items() if not offset or offset < 0]
        if uncommitted:
            await consumer.seek_to_beginning(*uncommitted)
        return cast(Mapping[TP, int], committed)

    async def _highwaters(self, partitions: list[TP]) -> Mapping[TP, int]:
        return cast(Mapping[TP, int], await self._ensure_consumer().end_offsets(partitions))


class Consumer(faust_aiokafka.Consumer):
    async def force_commit(self, topics: Any = None, start_new_transaction: bool = True) -> bool:
        async with gate_for(self.app).closed():
            return await super().force_commit(topics, start_new_transaction=start_new_transaction)

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(faust_aiokafka.Transport):
    Consumer = Consumer
    TransactionManager = TransactionManager
