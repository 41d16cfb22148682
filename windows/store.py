"""The windowed state store contracts.

A table's state, per partition of its keyed stream, laid out as :mod:`windows.store_layout`
describes: one record per window, a time index of what stream time does next to each window,
and the partition's stream time and input progress.

Two levels:

* :class:`~windows.ordered_store.OrderedStore` holds *committed* state as ordered bytes:
  point reads, range scans, and ``apply`` of a batch of writes (the same records as the changelog) with
  the changelog offset they reflect, atomically. RocksDB behind Faust's tables
  (:mod:`agents.table_store`) and :class:`MemoryOrderedStore` implement it.
* :class:`WindowStore` is what the window engine (:mod:`windows.partition`) reads and changes:
  windows by key and ``[start, end)``, the index, stream time and inputs. Its implementation,
  :class:`~windows.write_back.WriteBackStore`, keeps every change in memory until the commit
  that makes it durable, then applies it to an :class:`OrderedStore`.

:class:`InMemoryWindowStore` is the whole stack in memory, for tests and tools that need the
window rules without a broker.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from windows.keyed_state import KeyWindows, WindowState
from windows.ordered_store import MemoryOrderedStore, OrderedStore, Write
from windows.progress import PartitionClock
from windows.spec import Window
from windows.store_layout import Scheduled
from windows.write_back import WriteBackStore


class WindowStore(Protocol):
    """The state the window engine of one table works on, per partition."""

    def get_window(self, partition: int, key: str, window: Window) -> WindowState | None:
        """The key's window ``[start, end)``, or ``None``."""
        ...

    def key_windows(self, partition: int, key: str, ends_after: int | None = None) -> list[WindowState]:
        """Every window of the key (with ``ends_after``: those that end later), in
        ``(start, end)`` order."""
        ...

    def put_window(self, partition: int, key: str, state: WindowState) -> None: ...

    def delete_window(self, partition: int, key: str, window: Window) -> None: ...

    def index_add(self, partition: int, entry: Scheduled) -> None:
        """Add a window's entry to the time index."""
        ...

    def index_remove(self, partition: int, entry: Scheduled) -> None:
        """Remove an entry from the time index (absent: nothing happens)."""
        ...

    def index_between(self, partition: int, after: int | None, up_to: int, view: str) -> list[Scheduled]:
        """The index entries with ``after < due <= up_to`` (``after`` ``None``: from the
        first), in order. ``view`` names the caller's sequence of such reads, each usually
        continuing from the last (the store may use it to skip reading its committed part)."""
        ...

    def next_due(self, partition: int, view: str) -> int | None:
        """The due time of the first index entry after the ``up_to`` of the last
        :meth:`index_between` of ``view`` (:data:`~windows.store_layout.NO_DUE`: there is
        none; ``None``: not known, no such read): until stream time reaches it, that view has
        nothing due (unless an entry is added before it)."""
        ...

    def overdue_add(self, partition: int, entry: Scheduled) -> None:
        """Mark a window to close at the next move of stream time (its due time is past)."""
        ...

    def take_overdue(self, partition: int) -> list[Scheduled]:
        """Remove and return the windows marked overdue, in order."""
        ...

    def index(self, partition: int) -> list[Scheduled]:
        """Every entry of the time index, in order (a whole scan: for tests and diagnostics)."""
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

    def get_open_windows(self, partition: int) -> int:
        """Windows of the partition created and not closed yet (0 before any, and in a store
        written before the count existed)."""
        ...

    def set_open_windows(self, partition: int, count: int) -> None:
        """Save the partition's count of open windows."""
        ...


class InMemoryWindowStore(WriteBackStore):
    """A :class:`~windows.write_back.WriteBackStore` on a :class:`MemoryOrderedStore`. It is
    also an :class:`OrderedStore` of its committed state, so another write-back cache can stand
    in front of it (each read or apply through that level first commits its own changes)."""

    def __init__(self) -> None:
        super().__init__(MemoryOrderedStore())

    def read(self, partition: int, key: bytes) -> bytes | None:
        self.flush()
        return self.inner.read(partition, key)

    def scan(self, partition: int, low: bytes, high: bytes) -> Iterator[tuple[bytes, bytes]]:
        self.flush()
        return self.inner.scan(partition, low, high)

    def apply(self, partition: int, writes: Sequence[Write], changelog_offset: int | None) -> None:
        self.flush()
        self.inner.apply(partition, writes, changelog_offset)
        self.forget(partition)  # its cached reads are older than these writes

    def changelog_offset(self, partition: int) -> int | None:
        return self.inner.changelog_offset(partition)


__all__ = [
    "InMemoryWindowStore",
    "KeyWindows",
    "MemoryOrderedStore",
    "OrderedStore",
    "Scheduled",
    "WindowStore",
    "Write",
]
