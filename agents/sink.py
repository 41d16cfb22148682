"""Writes records in the Kafka transaction of the input partition they derive from (under
``exactly_once``), or through the plain producer (under ``at_least_once``), a batch at a time.

Stages :meth:`~Sink.add` the records a batch of input produces and :meth:`~Sink.flush` them
once at its end (and before every commit): the records for one producer, topic and partition
are appended to aiokafka batches in the order they were added and handed to the producer as
whole batches. Per record this is one append to a record batch, instead of a producer call with
its own future, lock and log line (Faust's ``send`` and aiokafka's ``send``).

A flushed record is only handed over: it is delivered before the input offsets commit (the
transaction commit, or the producer flush that precedes an at-least-once commit). A record
added but not flushed when its partition is revoked is dropped with the batch it came from,
which is read again by the partition's next owner.
"""

from __future__ import annotations

from typing import Any, cast

import faust
from faust.types import TP

from agents.transport import TransactionManager, transactional_id_for

Headers = list[tuple[str, bytes]]
# (transactional id or None, topic, partition) -> records in the order they were added
Pending = dict[tuple[str | None, str, int], list[tuple[bytes | None, bytes | None, Headers]]]


class Sink:
    def __init__(self, app: faust.App, exactly_once: bool) -> None:
        self.app = app
        self.exactly_once = exactly_once
        self._pending: Pending = {}
        self._tids: dict[tuple[str, int], str] = {}

    def _tid(self, source: TP) -> str:
        tid = self._tids.get(source)
        if tid is None:
            group = self.app.assignor.group_for_topic(source.topic)
            tid = self._tids[source] = transactional_id_for(self.app.conf.id, group, source.partition)
        return tid

    def add(
        self,
        source: TP,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int,
        headers: Headers | None = None,
    ) -> None:
        """Queue one record derived from input partition ``source``; :meth:`flush` sends it."""
        tid = self._tid(source) if self.exactly_once else None
        records = self._pending.get((tid, topic, partition))
        if records is None:
            records = self._pending[(tid, topic, partition)] = []
        records.append((key, value, headers or []))

    @property
    def pending(self) -> int:
        """Records added and not flushed yet."""
        return sum(len(r) for r in self._pending.values())

    def drop(self) -> None:
        """Forget the records not flushed (their input is read again)."""
        self._pending.clear()

    async def flush(self) -> None:
        """Hand every queued record to its producer, in whole batches, in the order added."""
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        for (tid, topic, partition), records in pending.items():
            producer = self._producer(tid)
            batch = producer.create_batch()
            for key, value, headers in records:
                if batch.append(timestamp=None, key=key, value=value, headers=headers) is not None:
                    continue
                if batch.record_count():
                    await producer.send_batch(batch, topic, partition=partition)
                    batch = producer.create_batch()
                if batch.append(timestamp=None, key=key, value=value, headers=headers) is None:
                    # larger than a whole batch: the producer checks it against its request size
                    await producer.send(topic, value, key=key, partition=partition, headers=headers)
            if batch.record_count():
                await producer.send_batch(batch, topic, partition=partition)

    def _producer(self, tid: str | None) -> Any:
        """The aiokafka producer for ``tid`` (the input partition's transactional producer), or
        the app's plain producer."""
        faust_producer: Any = self.app.producer
        if tid is None:
            return faust_producer._ensure_producer()
        transactions = cast(TransactionManager, cast(Any, self.app.consumer).transactions)
        transactions.mark_written(tid)
        producer = faust_producer._transaction_producers.get(tid)
        if producer is None:
            raise RuntimeError(f"no transactional producer for {tid}: its partition is not assigned")
        return producer
