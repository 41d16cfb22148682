"""Source stage: merge a source's topics, validate each record, and repartition it by the key
field into ``<app id>-<source>-repartition`` (as many partitions as the largest source topic).

The repartitioned record keeps the original value bytes; its key is the key field's text and
the header ``continust-ts`` holds the event time in epoch ms. Invalid records go to the
dead-letter topic with their reason. Both writes are in the transaction of the input partition.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import faust
from faust.types import TP

from agents.commit_gate import Batch, install_batch_handler
from agents.sink import Sink
from streams.dead_letters import DeadLetter
from streams.envelope import decode_event
from streams.errors import InvalidEvent
from streams.logfmt import logfmt
from streams.metrics import EVENTS_IN, EVENTS_INVALID
from streams.partitioning import key_partition
from streams.pipeline import SourceSpec

log = logging.getLogger("continust.merge")

EVENT_TIME_HEADER = "continust-ts"


def repartition_topic(app_id: str, source: str) -> str:
    return f"{app_id}-{source}-repartition"


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

    async def process_batch(self, batch: Batch) -> None:
        """Repartition the records of one input partition, in offset order."""
        records, tp = batch.records, batch.tp
        self._events_in.inc(len(records))
        now_ms = time.time_ns() // 1_000_000
        add, repartition, partitions = self.sink.add, self.repartition, self.partitions
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
