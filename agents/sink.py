"""Writes records in the Kafka transaction of the input partition they derive from (under
``exactly_once``), or through the plain producer (under ``at_least_once``), a batch at a time.

Stages :meth:`~Sink.add` the records a batch of input produces and :meth:`~Sink.flush` them
once at its end (and before every commit): the records for one producer, topic and partition
are appended to aiokafka batches in the order they were added and handed to the producer as
whole batches. Per record this is one append to a record batch, instead of a producer call with
its own future, lock and log line (Faust's ``send`` and aiokafka's ``send``).

A flushed record is only handed over: it is delivered before the input offsets commit (the
transaction commit, or the producer flush that precedes an at-least-once commit). Stages add
and flush under the commit gate, so no record waits in the sink across a commit or a rebalance.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol, cast

from faust.types import TP

from agents.app_runtime import AppRuntime
from agents.faust_compat import in_transaction, plain_kafka_producer
from agents.transport import TransactionManager

Headers = list[tuple[str, bytes]]
# (input partition, topic, partition) -> records in the order they were added
Pending = dict[tuple[TP, str, int], list[tuple[bytes | None, bytes | None, Headers]]]


class RecordSink(Protocol):
    """Where the stages write their records: :class:`Sink` in the worker, the stage test
    driver's log in tests (:mod:`agents.stage_driver`)."""

    exactly_once: bool

    def add(
        self,
        source: TP,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int,
        headers: Headers | None = None,
    ) -> None:
        """Queue one record derived from input partition ``source``."""
        ...

    async def flush(self, delivered: bool = False) -> dict[tuple[str, int], int]:
        """Hand every queued record over; with ``delivered``, the offset of the last record
        written to each topic partition."""
        ...

    def writable(self, source: TP) -> bool:
        """Whether records derived from ``source`` can be written now."""
        ...


class Sink:
    """The sink of the app of ``runtime``."""

    def __init__(self, runtime: AppRuntime, exactly_once: bool) -> None:
        self.runtime = runtime
        self.app = runtime.app
        self.exactly_once = exactly_once
        self._pending: Pending = {}

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
        records = self._pending.get((source, topic, partition))
        if records is None:
            records = self._pending[(source, topic, partition)] = []
        records.append((key, value, headers or []))

    async def flush(self, delivered: bool = False) -> dict[tuple[str, int], int]:
        """Hand every queued record to its producer, in whole batches, in the order added. A
        batch's first record is always accepted, so a record larger than a batch goes alone.
        ``delivered``: return only once the broker has acknowledged every batch (records of
        different producers otherwise reach the log in no set order), with the offset of the
        last record written to each topic partition (empty without ``delivered``)."""
        if not self._pending:
            return {}
        pending, self._pending = self._pending, {}
        deliveries: list[tuple[Any, int]] = []  # (future of the batch's metadata, its records)
        for (source, topic, partition), records in pending.items():
            producer = self._producer(source)
            batch = producer.create_batch()
            for key, value, headers in records:
                if batch.append(timestamp=None, key=key, value=value, headers=headers) is None:
                    count = batch.record_count()
                    deliveries.append((await producer.send_batch(batch, topic, partition=partition), count))
                    batch = producer.create_batch()
                    batch.append(timestamp=None, key=key, value=value, headers=headers)
            count = batch.record_count()
            deliveries.append((await producer.send_batch(batch, topic, partition=partition), count))
        if not delivered:
            return {}
        acked = await asyncio.gather(*(future for future, _ in deliveries))
        last: dict[tuple[str, int], int] = {}
        for metadata, (_, count) in zip(acked, deliveries, strict=True):
            where = (metadata.topic, metadata.partition)
            last[where] = max(last.get(where, -1), metadata.offset + count - 1)
        return last

    def writable(self, source: TP) -> bool:
        """Whether records derived from ``source`` can be written now: under ``exactly_once``,
        only while its transactional producer is in a transaction (not between the last commit
        of a shutdown or a revocation, which starts none, and the producer's stop)."""
        if not self.exactly_once:
            return True
        producer = self.runtime.producer_for(source)
        return producer is not None and in_transaction(producer)

    def _producer(self, source: TP) -> Any:
        """The aiokafka producer for records derived from ``source``: its transactional producer
        (marked as written, so the next commit covers it), or the app's plain producer."""
        faust_producer: Any = self.app.producer
        if not self.exactly_once:
            return plain_kafka_producer(faust_producer)
        tid = self.runtime.transactional_id(source)
        transactions = cast(TransactionManager, cast(Any, self.app.consumer).transactions)
        transactions.mark_written(tid)
        producer = self.runtime.producer_for(source)
        if producer is None:
            raise RuntimeError(f"no transactional producer for {tid}: its partition is not assigned")
        return producer
