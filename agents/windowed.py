"""Table stage: aggregate a source's repartitioned stream into a windowed table.

State lives in two Faust tables on RocksDB, both changelogged and co-partitioned with the
repartition topic: ``<table>`` maps a key to its live windows, ``<table>-stream-time`` maps a
partition to its stream time, so both survive restarts and rebalances. For each event the
pure rule in :mod:`windows.keyed_state` decides what changes; every changed window is emitted
to the output topic (``emit = "update"``) on the same partition, in the same transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import faust
import orjson
from faust.types import EventT

from agents.commit_gate import install_gated_agent
from agents.merge import EVENT_TIME_HEADER, SourceStage
from agents.sink import Sink
from streams.codec import JSON, TEXT
from streams.dead_letters import late_event_headers
from streams.errors import InvalidEvent
from streams.logfmt import logfmt
from streams.metrics import EVENTS_LATE, OUTPUTS, STREAM_TIME
from streams.partitioning import key_partition
from streams.pipeline import TableSpec
from windows.aggregates import InvalidField
from windows.keyed_state import KeyWindows, WindowState, apply_event, results
from windows.stream_time import advance, is_closed, is_expired

log = logging.getLogger("continust.table")


def read_repartitioned(message: Any) -> tuple[str, int, dict[str, Any]]:
    """Key, event time and payload of a record of the repartition topic. The source stage
    writes only valid records there; anything else (a foreign producer) is an invalid event,
    not a crash."""
    try:
        timestamp_ms = int(dict(message.headers or ())[EVENT_TIME_HEADER])
        key = message.key.decode()
        payload = orjson.loads(message.value)
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise InvalidEvent("bad_repartition_record", repr(exc)) from None
    if not isinstance(payload, dict):
        raise InvalidEvent("bad_repartition_record", "value is not a JSON object")
    return key, timestamp_ms, payload


@dataclass
class TableStage:
    app: faust.App
    spec: TableSpec
    source: SourceStage
    sink: Sink
    partitions: int

    def __post_init__(self) -> None:
        self.windows: Any = self.app.Table(
            self.spec.name,
            partitions=self.partitions,
            store="rocksdb://",
            schema=faust.Schema(key_serializer=TEXT, value_serializer=JSON),
        )
        self.stream_times: Any = self.app.Table(
            f"{self.spec.name}-stream-time",
            partitions=self.partitions,
            store="rocksdb://",
            schema=faust.Schema(key_serializer=JSON, value_serializer=JSON),
        )

        self._late = EVENTS_LATE.labels(table=self.spec.name)
        self._outputs = OUTPUTS.labels(table=self.spec.name)

    def install(self) -> None:
        channel = self.app.topic(
            self.source.repartition,
            key_serializer="raw",
            value_serializer="raw",
            partitions=self.partitions,
        )
        install_gated_agent(self.app, channel, f"continust.table.{self.spec.name}", self.process)

    async def process(self, event: EventT) -> None:
        message = event.message
        try:
            key, timestamp_ms, payload = read_repartitioned(message)
        except InvalidEvent as exc:
            await self.source.reject(event, exc, table=self.spec.name)
            return
        stream_time = self.stream_times.get(message.partition)
        state = KeyWindows.from_json(self.windows.get(key))
        try:
            outcome = apply_event(
                state, self.spec.window, self.spec.aggregations, payload, timestamp_ms, stream_time
            )
        except InvalidField as exc:
            await self.source.reject(event, InvalidEvent("invalid_field", str(exc)), table=self.spec.name)
            return
        if outcome.late:
            self._late.inc()
            log.debug(
                logfmt(
                    "event.late",
                    table=self.spec.name,
                    key=key,
                    ts=timestamp_ms,
                    stream_time=stream_time,
                    partition=message.partition,
                    offset=message.offset,
                )
            )
            late_topic = self.source.spec.late_topic
            if late_topic is not None:
                late_headers = late_event_headers(self.spec.name, timestamp_ms, stream_time)
                await self.sink.send(
                    message.tp, late_topic, message.key, message.value, message.partition, late_headers
                )
            if outcome.expired:
                self.windows[key] = state.to_json()
            return
        for window in outcome.changed:
            window.version += 1
            if self.spec.output is not None:
                await self.emit(event, key, window)
        self.windows[key] = state.to_json()
        new_time = advance(stream_time, timestamp_ms)
        if new_time != stream_time:
            self.stream_times[message.partition] = new_time
            STREAM_TIME.labels(table=self.spec.name, partition=str(message.partition)).set(new_time)

    async def emit(self, event: EventT, key: str, window: WindowState) -> None:
        assert self.spec.output is not None
        record = {
            "table": self.spec.name,
            "key": key,
            "start": window.start,
            "end": window.end,
            "version": window.version,
            "value": results(self.spec.aggregations, self.spec.aggregate_names, window),
        }
        message = event.message
        await self.sink.send(
            message.tp, self.spec.output, message.key, orjson.dumps(record), message.partition
        )
        self._outputs.inc()

    # -- queries (HTTP) ---------------------------------------------------------------------

    def query(self, key: str, start_ms: int | None, end_ms: int | None) -> list[dict[str, Any]]:
        """The key's windows overlapping [start_ms, end_ms), sorted by start; windows past their
        retention are left out even before they are deleted."""
        stream_time = self.stream_times.get(key_partition(key.encode(), self.partitions))
        spec = self.spec.window
        answer = []
        for w in sorted(KeyWindows.from_json(self.windows.get(key)).windows.values(), key=lambda w: w.start):
            if is_expired(w.end, spec.grace_ms, spec.retention_ms, stream_time):
                continue
            if (start_ms is not None and w.end <= start_ms) or (end_ms is not None and w.start >= end_ms):
                continue
            answer.append(
                {
                    "start": w.start,
                    "end": w.end,
                    "closed": is_closed(w.end, spec.grace_ms, stream_time),
                    "value": results(self.spec.aggregations, self.spec.aggregate_names, w),
                    "version": w.version,
                }
            )
        return answer
