"""A write-back cache in front of a :class:`~windows.store.WindowStore`.

Between two commits a key's windows change once per event; its store (RocksDB and a changelog
record each time) needs only the last state. :class:`WriteBackStore` keeps the keys read or
written since the last :meth:`~WriteBackStore.flush` in memory and writes each changed key and
stream time once per flush, in the order they first changed. Reads see the cached state.

The owner flushes before every commit (the changelog records must be in the transaction that
commits the offsets of the events behind them) and drops the cache of a partition it loses
(:meth:`~WriteBackStore.forget`): unflushed changes belong to a transaction that never commits.
Memory is bounded by the keys touched between two flushes, since a flush empties the cache.
:attr:`WriteBackStore.approx_bytes` estimates what the cache holds (:data:`KEY_BYTES` per
cached key plus ``window_bytes`` per cached window, an estimate of the Python objects), so the
owner can flush early when it passes a limit.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from windows.keyed_state import KeyWindows
from windows.progress import PartitionClock
from windows.store import WindowStore

_ABSENT = None
#: estimated bytes of one cached key (the key, its dict entries, its KeyWindows)
KEY_BYTES = 250


def window_bytes_for(aggregations: int) -> int:
    """Estimated bytes of one window's Python objects with ``aggregations`` aggregation states
    (measured with tracemalloc: about 650 bytes for five)."""
    return 200 + 90 * aggregations


class WriteBackStore:
    def __init__(self, inner: WindowStore, window_bytes: int = window_bytes_for(1)) -> None:
        self.inner = inner
        self.window_bytes = window_bytes
        #: estimated bytes the cache holds (see the module docstring)
        self.approx_bytes = 0
        self._sizes: dict[tuple[int, str], int] = {}
        # partition -> key -> windows (None: no windows); insertion order = first change order
        self._keys: dict[int, dict[str, KeyWindows | None]] = {}
        self._dirty: dict[int, dict[str, None]] = {}
        self._stream_times: dict[int, int | None] = {}
        self._stream_time_dirty: set[int] = set()
        self._inputs: dict[int, PartitionClock] = {}  # written at the flush, as they are then

    def get(self, partition: int, key: str) -> KeyWindows | None:
        keys = self._keys.setdefault(partition, {})
        if key in keys:
            return keys[key]
        windows = self.inner.get(partition, key)
        keys[key] = windows
        self._resize(partition, key, windows)
        return windows

    def put(self, partition: int, key: str, windows: KeyWindows) -> None:
        self._keys.setdefault(partition, {})[key] = windows
        self._dirty.setdefault(partition, {})[key] = None
        self._resize(partition, key, windows)

    def delete(self, partition: int, key: str) -> None:
        self._keys.setdefault(partition, {})[key] = _ABSENT
        self._dirty.setdefault(partition, {})[key] = None
        self._resize(partition, key, None)

    def _resize(self, partition: int, key: str, windows: KeyWindows | None) -> None:
        size = KEY_BYTES + (0 if windows is None else len(windows.windows) * self.window_bytes)
        before = self._sizes.get((partition, key), 0)
        self._sizes[(partition, key)] = size
        self.approx_bytes += size - before

    def items(self, partition: int) -> Iterator[tuple[str, KeyWindows]]:
        cached = self._keys.get(partition, {})
        for key, windows in self.inner.items(partition):
            if key not in cached:
                yield key, windows
        for key, maybe in list(cached.items()):
            if maybe is not None and maybe.windows:
                yield key, maybe

    def get_stream_time(self, partition: int) -> int | None:
        if partition in self._stream_times:
            return self._stream_times[partition]
        stream_time = self.inner.get_stream_time(partition)
        self._stream_times[partition] = stream_time
        return stream_time

    def set_stream_time(self, partition: int, stream_time: int) -> None:
        self._stream_times[partition] = stream_time
        self._stream_time_dirty.add(partition)

    def get_inputs(self, partition: int) -> Any:
        clock = self._inputs.get(partition)
        return self.inner.get_inputs(partition) if clock is None else clock.to_json()

    def set_inputs(self, partition: int, clock: PartitionClock) -> None:
        self._inputs[partition] = clock

    @property
    def dirty(self) -> bool:
        return bool(self._stream_time_dirty) or bool(self._inputs) or any(self._dirty.values())

    def flush(self) -> int:
        """Write every changed key and stream time to the inner store, then empty the cache.
        Returns the number of writes."""
        writes = 0
        for partition, dirty in self._dirty.items():
            keys = self._keys.get(partition, {})
            for key in dirty:
                windows = keys.get(key)
                if windows is None or not windows.windows:
                    self.inner.delete(partition, key)
                else:
                    self.inner.put(partition, key, windows)
                writes += 1
        for partition in sorted(self._stream_time_dirty):
            stream_time = self._stream_times[partition]
            if stream_time is not None:
                self.inner.set_stream_time(partition, stream_time)
                writes += 1
        for partition in sorted(self._inputs):
            self.inner.set_inputs(partition, self._inputs[partition])
            writes += 1
        self._inputs.clear()
        self._keys.clear()
        self._dirty.clear()
        self._stream_times.clear()
        self._stream_time_dirty.clear()
        self._sizes.clear()
        self.approx_bytes = 0
        return writes

    def forget(self, partition: int | None = None) -> None:
        """Drop the cached state (of one partition, or all) without writing it."""
        if partition is None:
            self._keys.clear()
            self._dirty.clear()
            self._stream_times.clear()
            self._stream_time_dirty.clear()
            self._inputs.clear()
            self._sizes.clear()
            self.approx_bytes = 0
            return
        for key in self._keys.get(partition, {}):
            self.approx_bytes -= self._sizes.pop((partition, key), 0)
        self._keys.pop(partition, None)
        self._dirty.pop(partition, None)
        self._stream_times.pop(partition, None)
        self._stream_time_dirty.discard(partition)
        self._inputs.pop(partition, None)
