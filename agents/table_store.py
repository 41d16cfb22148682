"""The windowed state store (:class:`windows.store.WindowStore`) on Faust tables.

Two Faust tables on RocksDB, both changelogged and co-partitioned with the table's keyed
stream: ``<table>`` maps a key to its live windows, ``<table>-stream-time`` holds a partition's
stream time and, for a partition fed by several inputs, their progress (:mod:`windows.progress`,
key ``inputs``). Faust keeps one RocksDB per table partition, recovers it from the changelog on
assignment, and keeps standby replicas.

Reads and writes name their partition explicitly, instead of taking it from the event being
processed as Faust's table API does: stream time also moves without an event (idle
partitions), and the windows it closes and deletes belong to other keys of the partition. A
write goes to RocksDB and to the changelog partition of the same number, through the
transaction of the input partition that caused it.

Keys are UTF-8 text; values are the orjson form of :meth:`KeyWindows.to_json` and of the stream
time. Deleting a key writes a tombstone to the changelog, so compaction forgets it too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from agents.faust_compat import open_partition_db, partition_db, visible_items
from windows.keyed_state import KeyWindows
from windows.progress import PartitionClock

STREAM_TIME_KEY = b"stream-time"
INPUTS_KEY = b"inputs"


class FaustWindowStore:
    def __init__(self, windows: Any, stream_times: Any) -> None:
        self.windows = windows
        self.stream_times = stream_times

    @staticmethod
    def _db(table: Any, partition: int) -> Any:
        """The partition's RocksDB, opened if needed (for the partitions this worker processes)."""
        return partition_db(table.data, partition)

    @staticmethod
    def _open_db(table: Any, partition: int) -> Any:
        """The partition's RocksDB if this worker has it open (assigned, active or standby);
        a read never opens a database for a partition the worker does not hold."""
        return open_partition_db(table.data, partition)

    @staticmethod
    def _write(table: Any, partition: int, key: bytes, value: bytes | None) -> None:
        db = partition_db(table.data, partition)
        if value is None:
            db.delete(key)
        else:
            db.put(key, value)
        table.send_changelog(partition, key, value, key_serializer="raw", value_serializer="raw")

    def open_partition(self, partition: int) -> None:
        """Open the partition's databases, before it is processed."""
        self._db(self.windows, partition)
        self._db(self.stream_times, partition)

    def get(self, partition: int, key: str) -> KeyWindows | None:
        db = self._open_db(self.windows, partition)
        raw = None if db is None else db.get(key.encode())
        return None if raw is None else KeyWindows.from_json(orjson.loads(raw))

    def put(self, partition: int, key: str, windows: KeyWindows) -> None:
        self._write(self.windows, partition, key.encode(), orjson.dumps(windows.to_json()))

    def delete(self, partition: int, key: str) -> None:
        self._write(self.windows, partition, key.encode(), None)

    def items(self, partition: int) -> Iterator[tuple[str, KeyWindows]]:
        store = self.windows.data
        for key, value in visible_items(store, self._db(self.windows, partition)):
            yield key.decode(), KeyWindows.from_json(orjson.loads(value))

    def get_stream_time(self, partition: int) -> int | None:
        db = self._open_db(self.stream_times, partition)
        raw = None if db is None else db.get(STREAM_TIME_KEY)
        return None if raw is None else int(orjson.loads(raw))

    def set_stream_time(self, partition: int, stream_time: int) -> None:
        self._write(self.stream_times, partition, STREAM_TIME_KEY, orjson.dumps(stream_time))

    def get_inputs(self, partition: int) -> Any:
        db = self._open_db(self.stream_times, partition)
        raw = None if db is None else db.get(INPUTS_KEY)
        return None if raw is None else orjson.loads(raw)

    def set_inputs(self, partition: int, clock: PartitionClock) -> None:
        self._write(self.stream_times, partition, INPUTS_KEY, orjson.dumps(clock.to_json()))
