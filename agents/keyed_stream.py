"""The keyed stream a source's tables read: one interface, :class:`KeyedStream`, for both kinds
of source.

Partition ``p`` of each of the stream's topics is partition ``p`` of the keyed stream: every
event of a key is on one partition. Each keyed-stream partition is fed by several *inputs*
(numbered ``0 .. inputs_per_partition - 1``), each with its own event-time progress
(:mod:`windows.progress`); a table partition's clock is the minimum over them.

* :class:`RepartitionedStream` (the default): the source stage (:mod:`agents.merge`) wrote every
  valid record into ``<app id>-<source>-repartition`` keyed by the key field. Every source
  partition is an input of every keyed-stream partition; its progress and idleness arrive as
  progress records the source stage writes into every partition.
* :class:`KeyedTopics` (``partitioned_by_key = true``): the source's own topics are the keyed
  stream; partition ``p`` of each topic is an input of keyed-stream partition ``p``. Records
  are validated here (a record off its key's partition is a dead letter, ``wrong_partition``),
  and the tables judge their inputs' idleness themselves (:attr:`KeyedStream.tables_mark_idle`).

:func:`agents.application.build_app` picks the implementation once per source; the tables and
the agent that feeds them (:mod:`agents.windowed`) know only this interface.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, cast

from faust.types import TP

from agents.commit_gate import Batch
from agents.merge import KeyedEvent, ProgressReport, SourceStage, read_repartitioned
from streams.kafka.partitioning import key_partition
from streams.plan.causation import Cause, event_id, traceparent_of
from streams.plan.errors import InvalidEvent
from windows.partition import TRACKED


class KeyedStream(Protocol):
    """What a source's tables read (see the module docstring)."""

    @property
    def topics(self) -> tuple[str, ...]:
        """The topics of the keyed stream."""
        ...

    @property
    def inputs_per_partition(self) -> int:
        """How many inputs feed one partition of the keyed stream."""
        ...

    @property
    def tables_mark_idle(self) -> bool:
        """Whether the tables judge their inputs' idleness themselves (the stream's records
        are the inputs' own), rather than read it from the stream's progress records."""
        ...

    def channel(self, app: Any, partitions: int) -> Any:
        """The Faust topic the tables' agent subscribes to."""
        ...

    def install(self) -> None:
        """Install what writes the stream, if the engine does."""
        ...

    def input_name(self, partition: int, source: int) -> str:
        """``topic:partition`` of input ``source`` of keyed-stream partition ``partition``."""
        ...

    def events(self, batch: Batch) -> list[KeyedEvent | ProgressReport]:
        """The events of a batch of the keyed stream, and the progress reports among them, in
        offset order; invalid records are rejected (dead-lettered with their reason)."""
        ...

    def cause_of(self, partition: int, event: KeyedEvent) -> Cause:
        """The input record behind an event of keyed-stream partition ``partition``: its
        topic, partition and offset, its id (the source's ``id`` field) and its valid
        ``traceparent``."""
        ...

    def processed(self, tp: TP, arrivals: dict[int, int], read_through: int | None) -> dict[str, int]:
        """The input offsets (``topic:partition`` -> offset) a batch of keyed-stream partition
        ``tp`` processed through: per input, its last event's (``arrivals``: input -> the
        ``arrival`` of its last event in the batch) or the batch's own records through
        ``read_through`` (its last offset)."""
        ...


@dataclass(frozen=True)
class RepartitionedStream:
    """The repartition topic of ``source`` (see the module docstring)."""

    source: SourceStage

    @property
    def topics(self) -> tuple[str, ...]:
        return (self.source.repartition,)

    @property
    def inputs_per_partition(self) -> int:
        return len(self.source.inputs)

    @property
    def tables_mark_idle(self) -> bool:
        return False

    def channel(self, app: Any, partitions: int) -> Any:
        return app.topic(
            self.source.repartition, key_serializer="raw", value_serializer="raw", partitions=partitions
        )

    def install(self) -> None:
        self.source.install()  # the source stage writes the repartition topic

    def input_name(self, partition: int, source: int) -> str:
        tp = self.source.inputs[source]
        return f"{tp.topic}:{tp.partition}"

    def events(self, batch: Batch) -> list[KeyedEvent | ProgressReport]:
        items: list[KeyedEvent | ProgressReport] = []
        inputs = len(self.source.inputs)
        for record in batch.records:
            try:
                items.append(read_repartitioned(record, inputs))
            except InvalidEvent as exc:
                self.source.reject(batch.tp, record, exc)
        return items

    def cause_of(self, partition: int, event: KeyedEvent) -> Cause:
        # the input partition and offset from the origin header, not the repartition record's
        # own; the record has its three headers, and the input's traceparent after them when it
        # had one (:meth:`agents.merge.SourceStage.process_batch`)
        headers, inputs = event.record.headers, self.source.inputs
        tp = inputs[event.source]
        traceparent = traceparent_of(headers) if len(headers) > 3 else None
        return (
            tp.topic,
            tp.partition,
            event.arrival // len(inputs),
            _event_id(self.source, event),
            traceparent,
        )

    def processed(self, tp: TP, arrivals: dict[int, int], read_through: int | None) -> dict[str, int]:
        per = self.inputs_per_partition
        return {self.input_name(tp.partition, index): arrival // per for index, arrival in arrivals.items()}


@dataclass(frozen=True)
class KeyedTopics:
    """The source's own topics, partitioned by key (see the module docstring)."""

    source: SourceStage

    @property
    def topics(self) -> tuple[str, ...]:
        return self.source.spec.topics

    @property
    def inputs_per_partition(self) -> int:
        return len(self.source.spec.topics)

    @property
    def tables_mark_idle(self) -> bool:
        return True

    def channel(self, app: Any, partitions: int) -> Any:
        return app.topic(*self.topics, key_serializer="raw", value_serializer="raw")  # they exist

    def install(self) -> None:
        return None  # the producers of the source's topics write the stream

    def input_name(self, partition: int, source: int) -> str:
        return f"{self.source.spec.topics[source]}:{partition}"

    def events(self, batch: Batch) -> list[KeyedEvent | ProgressReport]:
        stage, tp = self.source, batch.tp
        partitions, events = stage.partitions, cast(list[KeyedEvent | ProgressReport], [])
        source, inputs = stage.spec.topics.index(tp.topic), len(stage.spec.topics)
        for record, envelope in stage.decoded(batch):
            owner = key_partition(envelope.key.encode(), partitions)
            if owner != tp.partition:
                problem = (
                    f"key {envelope.key!r} belongs to partition {owner} of {partitions}, "
                    f"the record is on partition {tp.partition}"
                )
                stage.reject(tp, record, InvalidEvent("wrong_partition", problem))
                continue
            events.append(
                KeyedEvent(
                    record,
                    envelope.key,
                    envelope.timestamp_ms,
                    envelope.payload,
                    source,
                    record.offset * inputs + source,
                    TRACKED,
                )
            )
        return events

    def cause_of(self, partition: int, event: KeyedEvent) -> Cause:
        record = event.record
        traceparent = traceparent_of(record.headers) if record.headers else None
        topic = self.source.spec.topics[event.source]
        return (topic, partition, record.offset, _event_id(self.source, event), traceparent)

    def processed(self, tp: TP, arrivals: dict[int, int], read_through: int | None) -> dict[str, int]:
        return {} if read_through is None else {f"{tp.topic}:{tp.partition}": read_through}


def _event_id(source: SourceStage, event: KeyedEvent) -> str | None:
    id_field = source.spec.id_field
    return None if id_field is None else event_id(event.payload, id_field)


def keyed_stream(source: SourceStage) -> KeyedStream:
    """The keyed stream of ``source``: its own topics when they are partitioned by key, else its
    repartition topic."""
    return KeyedTopics(source) if source.spec.partitioned_by_key else RepartitionedStream(source)
