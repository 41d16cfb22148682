"""Source stage: merge a source's topics, validate each record, and make the keyed stream its
tables read.

By default every valid record is repartitioned by the key field into
``<app id>-<source>-repartition`` (as many partitions as the largest source topic), so all
events of a key meet on one partition. The repartitioned record keeps the original value bytes;
its key is the key field's text and the header ``continust-ts`` holds the event time in epoch
ms; the input record's ``traceparent`` header, when it has one, is copied. Both writes
(repartitioned record or dead letter) are in the transaction of the input partition.

With ``partitioned_by_key`` the source's topics are the keyed stream: the tables read them
directly (:class:`agents.keyed_stream.KeyedTopics`, which validates their records with
:meth:`SourceStage.decoded`), and nothing here is installed. What the tables read of either
kind is :class:`agents.keyed_stream.KeyedStream`.

Invalid records go to the dead-letter topic with their reason, and are counted and logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, cast

import faust
import orjson
from faust.types import TP

from agents.app_runtime import AppRuntime
from agents.clock import WALL_CLOCK, Clock
from agents.commit_gate import Batch
from agents.commit_order import HeldBackWrites, OffsetMetadata, OutputFlush
from agents.sink import RecordSink
from streams.kafka.partitioning import key_partition
from streams.plan.causation import TRACEPARENT, Cause, event_id_of_value, traceparent_of
from streams.plan.dead_letters import DeadLetter
from streams.plan.envelope import Envelope, decode_event
from streams.plan.errors import InvalidEvent
from streams.plan.pipeline import SourceSpec
from streams.telemetry.logfmt import logfmt
from streams.telemetry.metrics import EVENTS_IN, EVENTS_INVALID
from streams.telemetry.tracing import current_tracer
from windows.partition import Tracked

log = logging.getLogger("continust.merge")

EVENT_TIME_HEADER = "continust-ts"
ORIGIN_HEADER = "continust-origin"
#: the Kafka timestamp (epoch ms) of the input record a repartitioned event came from
INPUT_TIME_HEADER = "continust-input-ts"
PROGRESS_HEADER = "continust-progress"
PROGRESS_METADATA = "continust-progress="


class KeyedEvent(NamedTuple):
    """One event of the keyed stream: the aiokafka record, key, event time (epoch ms), payload;
    the input it came from (:attr:`SourceStage.inputs` index, or topic index of a source
    partitioned by key); ``arrival``, which orders events whatever order the inputs were read in
    (input offset times the number of inputs, plus the input); and ``own``, the input's progress
    before the event when the source stage saw the whole input (repartitioned), else
    :data:`~windows.partition.TRACKED`."""

    record: Any
    key: str
    timestamp_ms: int
    payload: dict[str, Any]
    source: int
    arrival: int
    own: int | Literal[Tracked.TRACKED] | None


class ProgressReport(NamedTuple):
    """A source partition's progress and idleness, as the source stage wrote it into every
    partition of the repartition topic."""

    source: int
    progress: int | None
    idle: bool


def repartition_topic(app_id: str, source: str) -> str:
    return f"{app_id}-{source}-repartition"


def _time_or_none(text: str) -> int | None:
    return None if text == "-" else int(text)


def progress_headers(source: int, progress: int | None, idle: bool) -> list[tuple[str, bytes]]:
    """The headers of a progress record (key and value empty) in the repartition topic."""
    return [(PROGRESS_HEADER, f"{source} {'-' if progress is None else progress} {int(idle)}".encode())]


def input_time_ms(record: Any) -> int:
    """The Kafka timestamp (epoch ms) of the input record behind a keyed-stream record: the
    record's own for a source partitioned by key, the ``continust-input-ts`` header of a
    repartition record (records written before the header existed: the record's own)."""
    for name, value in record.headers or ():
        if name == INPUT_TIME_HEADER:
            try:
                return int(value)
            except ValueError:
                break
    return int(record.timestamp)


def read_repartitioned(record: Any, inputs: int) -> KeyedEvent | ProgressReport:
    """The event, or the progress report, in a record of the repartition topic. The source stage
    writes only valid records there; anything else (a foreign producer) is an invalid event, not
    a crash. ``inputs``: how many source partitions there are."""
    try:
        headers = dict(record.headers or ())
        report = headers.get(PROGRESS_HEADER)
        if report is not None:
            source, progress, idle = report.decode().split(" ")
            if not 0 <= int(source) < inputs:
                raise ValueError(f"input {source} of {inputs}")
            return ProgressReport(int(source), _time_or_none(progress), idle == "1")
        timestamp_ms = int(headers[EVENT_TIME_HEADER])
        source, offset, own = headers[ORIGIN_HEADER].decode().split(" ")
        if not 0 <= int(source) < inputs:
            raise ValueError(f"input {source} of {inputs}")
        key = record.key.decode()
        payload = orjson.loads(record.value)
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise InvalidEvent("bad_repartition_record", repr(exc)) from None
    if not isinstance(payload, dict):
        raise InvalidEvent("bad_repartition_record", "value is not a JSON object")
    index = int(source)
    arrival = int(offset) * inputs + index
    return KeyedEvent(record, key, timestamp_ms, payload, index, arrival, _time_or_none(own))


@dataclass
class SourceStage:
    """``topic_partitions``: the partition count of each of the source's topics; ``partitions``:
    the keyed stream's (the largest of them)."""

    app: faust.App
    runtime: AppRuntime
    spec: SourceSpec
    sink: RecordSink
    repartition: str
    dead_letters: str
    max_future_ms: int
    partitions: int
    topic_partitions: dict[str, int]
    #: the wall clock that judges event times too far ahead (``max_future_ms``)
    clock: Clock = WALL_CLOCK

    def __post_init__(self) -> None:
        self._events_in = EVENTS_IN.labels(source=self.spec.name)
        #: every input partition of the source, numbered in this order
        self.inputs: list[TP] = [
            TP(topic, p) for topic in self.spec.topics for p in range(self.topic_partitions[topic])
        ]
        self._index = {tp: i for i, tp in enumerate(self.inputs)}
        # repartitioned: per assigned source partition, its progress (the largest event time of a
        # valid record read from it), and what the last progress record said
        self._progress: dict[TP, int | None] = {}
        self._reported: dict[TP, tuple[int | None, bool]] = {}

    def install(self) -> None:
        """Read the source's topics and repartition them, reporting each source partition's
        progress at every commit (installed by :class:`agents.keyed_stream.RepartitionedStream`)."""
        channel = self.app.topic(*self.spec.topics, key_serializer="raw", value_serializer="raw")
        self.runtime.install_batch_handler(channel, self.process_batch)
        sequence = self.runtime.sequence
        sequence.add(HeldBackWrites(self.report_progress))
        sequence.add(OutputFlush(self.sink.flush))
        sequence.add(OffsetMetadata(self.offset_metadata))
        self.app.on_partitions_revoked.connect(cast(Any, self._on_revoked))

    async def _on_revoked(self, sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        """Whatever partitions come back read their progress from their committed offsets."""
        self._progress.clear()
        self._reported.clear()

    def decoded(self, batch: Batch) -> Iterator[tuple[Any, Envelope]]:
        """The valid records of a batch of the source's topics with their envelopes; the others
        are rejected."""
        records, tp = batch.records, batch.tp
        self._events_in.inc(len(records))
        now_ms = self.clock.now_ms()
        key_field, timestamp_field, max_future_ms = self.spec.key, self.spec.timestamp, self.max_future_ms
        key_by = self.spec.key_by
        for record in records:
            try:
                envelope = decode_event(
                    record.value,
                    key_field=key_field,
                    timestamp_field=timestamp_field,
                    record_timestamp_ms=record.timestamp,
                    now_ms=now_ms,
                    max_future_ms=max_future_ms,
                    key_by=key_by,
                )
            except InvalidEvent as exc:
                self.reject(tp, record, exc)
                continue
            yield record, envelope

    async def _progress_of(self, tp: TP) -> int | None:
        """The source partition's progress: as this worker tracked it, or, first in an
        assignment, as committed with its offset (:meth:`offset_metadata`)."""
        if tp in self._progress:
            return self._progress[tp]
        consumer: Any = self.app.consumer
        metadata = (await consumer.committed_metadata([tp])).get(tp, "")
        progress = None
        if metadata.startswith(PROGRESS_METADATA):
            progress = _time_or_none(metadata[len(PROGRESS_METADATA) :])
        self._progress[tp] = progress
        return progress

    def offset_metadata(self, tp: TP) -> str | None:
        """Committed with a source partition's offset: its progress at that offset, so that a
        worker taking the partition over judges the following events as this one would."""
        if tp not in self._progress or tp not in self._index:
            return None
        progress = self._progress[tp]
        return f"{PROGRESS_METADATA}{'-' if progress is None else progress}"

    async def process_batch(self, batch: Batch) -> None:
        """Repartition the records of one input partition, in offset order. Each record carries
        its input, its offset there and the input's progress before it (``continust-origin``),
        and the input record's Kafka timestamp (``continust-input-ts``, for the end-to-end
        latency of the outputs it causes), and its ``traceparent`` when it has one: with the
        origin, what names the input record in the headers of the outputs it causes
        (:meth:`cause_of`). Each batch is a ``continust.batch`` span when tracing is on."""
        with current_tracer().batch(self.spec.name, batch.tp.topic, batch.tp.partition, batch.records):
            await self._repartition(batch)

    async def _repartition(self, batch: Batch) -> None:
        tp, add, repartition, partitions = batch.tp, self.sink.add, self.repartition, self.partitions
        index = self._index[tp]
        progress = await self._progress_of(tp)
        first = tp not in self._reported
        if first:
            await self._report_assigned_active(tp)
        for record, envelope in self.decoded(batch):
            key = envelope.key.encode()
            timestamp_ms = envelope.timestamp_ms
            origin = f"{index} {record.offset} {'-' if progress is None else progress}".encode()
            headers = [
                (EVENT_TIME_HEADER, str(timestamp_ms).encode()),
                (ORIGIN_HEADER, origin),
                (INPUT_TIME_HEADER, str(record.timestamp).encode()),
            ]
            for name, value in record.headers or ():
                if name == TRACEPARENT:
                    if isinstance(value, bytes):
                        headers.append((name, value))
                    break
            add(tp, repartition, key, record.value, key_partition(key, partitions), headers)
            if progress is None or timestamp_ms > progress:
                progress = timestamp_ms
        self._progress[tp] = progress
        await self.sink.flush(delivered=first)

    async def report_progress(self) -> None:
        """Step 1 of a commit (:mod:`agents.commit_order`): queue in the sink, for every
        partition of the repartition topic and in the transaction of the source partition, the
        progress of each assigned source partition that moved since its last report, and whether
        it is idle (nothing left to read and nothing fetched for ``idle_after``). Tables take
        their clock from these reports. The sink is flushed in step 2."""
        app: Any = self.app
        if self.runtime.writes_paused():
            return
        consumer = app.consumer
        now = time.monotonic()
        idle_after_s = self.spec.idle_after_ms / 1000
        topics = set(self.spec.topics)
        for tp in sorted(tp for tp in app.assignor.assigned_actives() if tp.topic in topics):
            if not self.sink.writable(tp):
                continue
            progress = await self._progress_of(tp)
            idle = consumer.caught_up(tp) and consumer.quiet_for(tp, now) >= idle_after_s
            if self._reported.get(tp) == (progress, idle):
                continue
            self._report(tp, progress, idle)
            if idle:
                log.info(logfmt("input.idle", source=self.spec.name, input=f"{tp.topic}:{tp.partition}"))

    async def _report_assigned_active(self, current: TP) -> None:
        """First batch since an assignment (of ``current``): before any of its records, report
        every source partition newly assigned to this worker active. It may have been reported
        idle before a stop or a rebalance, and its tables restore that; if it has a backlog now,
        the backlog must hold their clocks before any new record moves them. The reports go in
        ``current``'s transaction, ahead of its records, and the batch is flushed until
        delivered, so no later batch's records (other producers) can reach the log before them.
        A partition that is really quiet is reported idle again after ``idle_after``."""
        topics = set(self.spec.topics)
        app: Any = self.app
        for tp in sorted(tp for tp in app.assignor.assigned_actives() if tp.topic in topics):
            if tp not in self._reported:
                progress = await self._progress_of(tp)
                headers = progress_headers(self._index[tp], progress, False)
                for partition in range(self.partitions):
                    self.sink.add(current, self.repartition, None, b"", partition, headers)
                self._reported[tp] = (progress, False)

    def _report(self, tp: TP, progress: int | None, idle: bool) -> None:
        """Write source partition ``tp``'s progress and idleness into every partition of the
        repartition topic, in ``tp``'s transaction."""
        headers = progress_headers(self._index[tp], progress, idle)
        for partition in range(self.partitions):
            self.sink.add(tp, self.repartition, None, b"", partition, headers)
        self._reported[tp] = (progress, idle)

    def reject(
        self, tp: TP, record: Any, exc: InvalidEvent, table: str = "", cause: Cause | None = None
    ) -> None:
        """Queue ``record`` (of input partition ``tp``) for the dead-letter topic with its reason
        (sent at the batch's flush), count and log it. ``cause``: the input record it came from
        (:meth:`cause_of`), when that is not ``record`` itself at ``tp``."""
        if cause is None:
            ident = event_id_of_value(record.value, self.spec.id_field)
            cause = (tp.topic, tp.partition, record.offset, ident, traceparent_of(record.headers))
        letter = DeadLetter(
            reason=exc.reason,
            detail=exc.detail,
            source=self.spec.name,
            table=table,
            topic=tp.topic,
            partition=tp.partition,
            offset=record.offset,
            cause=cause,
            extra=tuple(exc.headers()),
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
