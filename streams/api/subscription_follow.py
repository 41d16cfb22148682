"""What one subscription follows in a table's output topic, and the events its records become:
one key (:class:`KeyFollow`: the key's output partition, its records only) or the whole table
(:class:`TableFollow`: every partition). Both turn a ``Last-Event-ID`` into the offsets to read
from, name the position at the end of a snapshot, and give each output record its event id
(:mod:`streams.api.event_ids`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from streams.api.event_ids import KeyPosition, TablePosition
from streams.api.output_reader import OutputRecord


@dataclass(frozen=True)
class RecordEvent:
    """An output record as a subscription sends it: ``data`` is the record's JSON with its
    ``key``, ``partition`` and ``offset``; ``id`` the position right after it."""

    data: dict[str, Any]
    id: str


class Follow(Protocol):
    @property
    def partitions(self) -> list[int]:
        """The output partitions the subscription reads."""
        ...

    def resume(self, last_event_id: str) -> dict[int, int]:
        """The next offset to read per partition, after ``last_event_id``;
        :class:`~streams.api.event_ids.BadEventId` when it is not an id of this subscription."""
        ...

    def start_at(self, next_offsets: Mapping[int, int]) -> str:
        """Start from ``next_offsets`` (the end offsets a snapshot was taken after); the id
        that names that position."""
        ...

    def event(self, record: OutputRecord) -> RecordEvent | None:
        """The event of ``record`` (records are given in offset order per partition);
        ``None`` when the subscription does not send it (another key's, or not a JSON object)."""
        ...


def _record_data(record: OutputRecord) -> dict[str, Any] | None:
    try:
        value = orjson.loads(record.value) if record.value is not None else None
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, dict):
        return None
    key = record.key.decode(errors="replace") if record.key is not None else value.get("key")
    return {**value, "key": key, "partition": record.partition, "offset": record.offset}


@dataclass
class KeyFollow:
    """One key: its output partition, ids are the offsets of its records."""

    key: str
    partition: int

    @property
    def partitions(self) -> list[int]:
        return [self.partition]

    def resume(self, last_event_id: str) -> dict[int, int]:
        return {self.partition: KeyPosition.decode(last_event_id).next_offset}

    def start_at(self, next_offsets: Mapping[int, int]) -> str:
        return KeyPosition(next_offsets[self.partition] - 1).encode()

    def event(self, record: OutputRecord) -> RecordEvent | None:
        if record.partition != self.partition or record.key != self.key.encode():
            return None
        data = _record_data(record)
        return RecordEvent(data, KeyPosition(record.offset).encode()) if data is not None else None


@dataclass
class TableFollow:
    """Every key: all partitions, ids are the next offsets of every partition."""

    partition_count: int
    position: TablePosition = field(init=False)

    @property
    def partitions(self) -> list[int]:
        return list(range(self.partition_count))

    def resume(self, last_event_id: str) -> dict[int, int]:
        self.position = TablePosition.decode(last_event_id, self.partition_count)
        return dict(enumerate(self.position.next_offsets))

    def start_at(self, next_offsets: Mapping[int, int]) -> str:
        self.position = TablePosition.of(next_offsets)
        return self.position.encode()

    def event(self, record: OutputRecord) -> RecordEvent | None:
        self.position = self.position.advanced(record.partition, record.offset)
        data = _record_data(record)
        return RecordEvent(data, self.position.encode()) if data is not None else None
