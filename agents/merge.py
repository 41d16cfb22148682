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

import faust
from faust.types import Message

from agents.commit_gate import install_batch_handler
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

    async def process_batch(self, messages: list[Message]) -> None:
        """Repartition the records of one input partition, in offset order."""
        self._events_in.inc(len(messages))
        now_ms = time.time_ns() // 1_000_000
        for message in messages:
            try:
                envelope = decode_event(
                    message.value,
                    key_field=self.spec.key,
                    timestamp_field=self.spec.timestamp,
                    record_timestamp_ms=round(message.timestamp * 1000),
                    now_ms=now_ms,
                    max_future_ms=self.max_future_ms,
                )
            except InvalidEvent as exc:
                await self.reject(message, exc)
                continue
            key = envelope.key.encode()
            await self.sink.send(
                message.tp,
                self.repartition,
                key,
                message.value,
                key_partition(key, self.partitions),
                [(EVENT_TIME_HEADER, str(envelope.timestamp_ms).encode())],
            )

    async def reject(self, message: Message, exc: InvalidEvent, table: str = "") -> None:
        letter = DeadLetter(
            reason=exc.reason,
            detail=exc.detail,
            source=self.spec.name,
            table=table,
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
        )
        EVENTS_INVALID.labels(source=self.spec.name, table=table, reason=exc.reason).inc()
        log.warning(
            logfmt(
                "event.invalid",
                source=self.spec.name,
                table=table,
                reason=exc.reason,
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
            )
        )
        await self.sink.send(message.tp, self.dead_letters, message.key, message.value, 0, letter.headers())
