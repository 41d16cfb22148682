"""The windowed state store contract.

A table's state, per partition of its keyed stream: each key's live windows and the partition's
stream time. The engine keeps it in RocksDB behind Faust tables with changelog topics
(:mod:`agents.table_store`); :class:`InMemoryWindowStore` keeps it in dictionaries, for tests
and tools that need the window rules without a broker.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any, Protocol

from windows.keyed_state import KeyWindows
from windows.progress import PartitionClock


class WindowStore(Protocol):
    def get(self, partition: int, key: str) -> KeyWindows | None:
        """The key's windows, or ``None`` when the key has none."""
        ...

    def put(self, partition: int, key: str, windows: KeyWindows) -> None:
        """Replace the key's windows (``windows`` is not empty)."""
        ...

    def delete(self, partition: int, key: str) -> None:
        """Forget the key: its last window is gone."""
        ...

    def items(self, partition: int) -> Iterator[tuple[str, KeyWindows]]:
        """Every key of the partition with its windows."""
        ...

    def get_stream_time(self, partition: int) -> int | None:
        """The partition's stream time, or ``None`` before its first event."""
        ...

    def set_stream_time(self, partition: int, stream_time: int) -> None: ...

    def get_inputs(self, partition: int) -> Any:
        """The partition's inputs and clock as :meth:`PartitionClock.to_json` saved them, or
        ``None`` (a partition fed by one input keeps only its stream time)."""
        ...

    def set_inputs(self, partition: int, clock: PartitionClock) -> None:
        """Save the partition's inputs and clock (its state when the store writes it)."""
        ...


class InMemoryWindowStore:
    """A :class:`WindowStore` in dictionaries. Values are copied through their JSON form, so a
    caller never shares mutable state with the store, as with a real one."""

    def __init__(self) -> None:
        self.keys: dict[int, dict[str, list]] = {}
        self.stream_times: dict[int, int] = {}
        self.inputs: dict[int, Any] = {}

    def get(self, partition: int, key: str) -> KeyWindows | None:
        raw = self.keys.get(partition, {}).get(key)
        return None if raw is None else KeyWindows.from_json(raw)

    def put(self, partition: int, key: str, windows: KeyWindows) -> None:
        self.keys.setdefault(partition, {})[key] = copy.deepcopy(windows.to_json())

    def delete(self, partition: int, key: str) -> None:
        self.keys.get(partition, {}).pop(key, None)

    def items(self, partition: int) -> Iterator[tuple[str, KeyWindows]]:
        for key, raw in list(self.keys.get(partition, {}).items()):
            yield key, KeyWindows.from_json(raw)

    def get_stream_time(self, partition: int) -> int | None:
        return self.stream_times.get(partition)

    def set_stream_time(self, partition: int, stream_time: int) -> None:
        self.stream_times[partition] = stream_time

    def get_inputs(self, partition: int) -> Any:
        raw = self.inputs.get(partition)
        return None if raw is None else copy.deepcopy(raw)

    def set_inputs(self, partition: int, clock: PartitionClock) -> None:
        self.inputs[partition] = clock.to_json()
