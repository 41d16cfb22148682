"""Committed state of a windowed table's partitions, as ordered bytes.

:class:`OrderedStore` holds the records :mod:`windows.store_layout` describes, as the last
committed transaction left them: point reads, range scans, and :meth:`~OrderedStore.apply` of a
batch of writes (the same records as the changelog) together with the changelog offset they
reflect, as one atomic step. RocksDB behind Faust's tables (:mod:`agents.table_store`) and
:class:`MemoryOrderedStore` implement it.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from typing import Protocol

#: one changelog record / one write of a batch: key, and value (``None``: delete)
Write = tuple[bytes, bytes | None]


class OrderedStore(Protocol):
    """Committed state of a table's partitions, as ordered bytes keys and values."""

    def read(self, partition: int, key: bytes) -> bytes | None:
        """The value under ``key``, or ``None``."""
        ...

    def scan(self, partition: int, low: bytes, high: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Every record with ``low <= key < high``, in key order."""
        ...

    def apply(self, partition: int, writes: Sequence[Write], changelog_offset: int | None) -> None:
        """Apply ``writes`` in order, and record ``changelog_offset`` (the offset of the last of
        them in the partition's changelog; ``None``: keep the one recorded), as one atomic
        step."""
        ...

    def changelog_offset(self, partition: int) -> int | None:
        """The changelog offset the partition's state reflects, or ``None``."""
        ...


class MemoryOrderedStore:
    """An :class:`OrderedStore` in sorted lists and dictionaries."""

    def __init__(self) -> None:
        self._values: dict[int, dict[bytes, bytes]] = {}
        self._keys: dict[int, list[bytes]] = {}
        self._offsets: dict[int, int] = {}

    def read(self, partition: int, key: bytes) -> bytes | None:
        return self._values.get(partition, {}).get(key)

    def scan(self, partition: int, low: bytes, high: bytes) -> Iterator[tuple[bytes, bytes]]:
        keys = self._keys.get(partition, [])
        values = self._values.get(partition, {})
        found = keys[bisect.bisect_left(keys, low) : bisect.bisect_left(keys, high)]
        return iter([(key, values[key]) for key in found])  # a copy: applies may follow

    def apply(self, partition: int, writes: Sequence[Write], changelog_offset: int | None) -> None:
        values = self._values.setdefault(partition, {})
        keys = self._keys.setdefault(partition, [])
        for key, value in writes:
            if value is None:
                if values.pop(key, None) is not None:
                    del keys[bisect.bisect_left(keys, key)]
            else:
                if key not in values:
                    bisect.insort(keys, key)
                values[key] = value
        if changelog_offset is not None:
            self._offsets[partition] = changelog_offset

    def changelog_offset(self, partition: int) -> int | None:
        return self._offsets.get(partition)
