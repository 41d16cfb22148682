"""Source stage: merge a source's topics, validate each record, and make the keyed stream its
tables read.

By default every valid record is repartitioned by the key field into
``<app id>-<source>-repartition`` (as many partitions as the largest source topic), so all
events of a key meet on one partition. The repartitioned record keeps the original value bytes;
its key is the key field's text and the header ``continust-ts`` holds the event time in epoch
ms. Both writes (repartitioned record or dead letter) are in the transaction of the input
partition.

With ``partitioned_by_key`` the source's topics are the keyed stream: the tables read them
directly, and :meth:`SourceStage.keyed_events` validates their records, sending a record that
is not on its key's partition to the dead-letter topic (``wrong_partition``).

Invalid records go to the dead-letter topic with their reason, and are counted and logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import faust
import orjson
from faust.types import TP

from agents.commit_gate import Batch, install_batch_handler
from agents.sink import Sink
from streams.dead_letters import DeadLetter
from streams.envelope import Envelope, decode_event
from streams.errors import InvalidEvent
from streams.logfmt import logfmt
from streams.metrics import EVENTS_IN, EVENTS_INVALID
from streams.partitioning import key_partition
from streams.pipeline import SourceSpec

log = logging.getLogger("continust.merge")

EVENT_TIME_HEADER = "continust-ts"


KeyedEvent = tuple[Any, str, int, dict[str, Any]]
"""One event of the keyed stream: (the aiokafka record, key, event time in epoch ms, payload)."""


def repartition_topic(app_id: str, source: str) -> str:
    return f"{app_id}-{source}-repartition"


def read_repartitioned(record: Any) -> KeyedEvent:
    """The event in a record of the repartition topic. The source stage writes only valid
    records there; anything else (a foreign producer) is an invalid event, not a crash."""
    try:
        timestamp_ms = int(dict(record.headers or ())[EVENT_TIME_HEADER])
        key = record.key.decode()
        payload = orjson.loads(record.value)
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise InvalidEvent("bad_repartition_record", repr(exc)) from None
    if not isinstance(payload, dict):
        raise InvalidEvent("bad_repartition_record", "value is not a JSON object")
    return record, key, timestamp_ms, payload


@dataclass
class SourceStage:
    app: faust.App
    spec: SourceSpec
    sink: Sink
    repartition: str
    dead_letters: str
    max_future_ms: int
    partitions: int

    def __post_init__(self) -> None:
        self._events_in = EVENTS_IN.labels(source=self.spec.name)

    def install(self) -> None:
        channel = self.app.topic(*self.spec.topics, key_serializer="raw", value_serializer="raw")
        install_batch_handler(self.app, channel, self.process_batch)

    @property
    def keyed_topics(self) -> tuple[str, ...]:
        """The topics of the keyed stream its tables read: the source's own topics when they are
        partitioned by key, else its repartition topic. Partition ``p`` of each is partition
        ``p`` of the keyed stream."""
        return self.spec.topics if self.spec.partitioned_by_key else (self.repartition,)

    def _decoded(self, batch: Batch) -> Iterator[tuple[Any, Envelope]]:
        """The valid records of a batch of the source's topics with their envelopes; the others
        are rejected."""
        records, tp = batch.records, batch.tp
        self._events_in.inc(len(records))
        now_ms = time.time_ns() // 1_000_000
        key_field, timestamp_field, max_future_ms = self.spec.key, self.spec.timestamp, self.max_future_ms
        for record in records:
            try:
                envelope = decode_event(
                    record.value,
                    key_field=key_field,
                    timestamp_field=timestamp_field,
                    record_timestamp_ms=record.timestamp,
                    now_ms=now_ms,
                    max_future_ms=max_future_ms,
                )
            except InvalidEvent as exc:
                self.reject(tp, record, exc)
                continue
            yield record, envelope

    async def process_batch(self, batch: Batch) -> None:
        """Repartition the records of one input partition, in offset order."""
        tp, add, repartition, partitions = batch.tp, self.sink.add, self.repartition, self.partitions
        for record, envelope in self._decoded(batch):
            key = envelope.key.encode()
            add(
                tp,
                repartition,
                key,
                record.value,
                key_partition(key, partitions),
                [(EVENT_TIME_HEADER, str(envelope.timestamp_ms).encode())],
            )
        await self.sink.flush()

    def keyed_events(self, batch: Batch) -> list[KeyedEvent]:
        """The events of a batch of the keyed stream (:attr:`keyed_topics`), in offset order;
        invalid records are rejected."""
        tp = batch.tp
        if not self.spec.partitioned_by_key:
            events: list[KeyedEvent] = []
            for record in batch.records:
                try:
                    events.append(read_repartitioned(record))
                except InvalidEvent as exc:
                    self.reject(tp, record, exc)
            return events
        partitions, events = self.partitions, []
        for record, envelope in self._decoded(batch):
            owner = key_partition(envelope.key.encode(), partitions)
            if owner != tp.partition:
                problem = (
                    f"key {envelope.key!r} belongs to partition {owner} of {partitions}, "
                    f"the record is on partition {tp.partition}"
                )
                self.reject(tp, record, InvalidEvent("wrong_partition", problem))
                continue
            events.append((record, envelope.key, envelope.timestamp_ms, envelope.payload))
        return events

    def reject(self, tp: TP, record: Any, exc: InvalidEvent, table: str = "") -> None:
        """Queue ``record`` (of input partition ``tp``) for the dead-letter topic with its reason
        (sent at the batch's flush), count and log it."""
        letter = DeadLetter(
            reason=exc.reason,
            detail=exc.detail,
            source=self.spec.name,
            table=table,
            topic=tp.topic,
            partition=tp.partition,
            offset=record.offset,
        )
        EVENTS_INVALID.labels(source=self.spec.name, table=table, reason=exc.reason).inc()
        log.warning(
            logfmt(
                "event.invalid",
                source=self.spec.name,
                table=table,
                reason=exc.reason,
                topic=tp.topic,
                partition=tp.partition,
                offset=record.offset,
            )
        )
        self.sink.add(tp, self.dead_letters, record.key, record.value, 0, letter.headers())
