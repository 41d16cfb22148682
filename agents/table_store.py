"""The committed store of a windowed table (:class:`windows.ordered_store.OrderedStore`) on
RocksDB, one database per table partition as Faust keeps them.

One Faust table per windowed table, changelogged and co-partitioned with the table's keyed
stream. Its records are those of :mod:`windows.store_layout` (one per window, the time index,
stream time and inputs), the same in RocksDB and in the changelog. Faust opens the partition
databases, restores them from the changelog on assignment, and keeps standby replicas; this
module only reads them and applies committed batches.

**RocksDB holds committed state only.** A batch reaches RocksDB after the transaction carrying
its changelog records has committed (:meth:`RocksDBPartitions.apply`), in one RocksDB write
batch together with the changelog offset it reaches (under ``exactly_once`` the offset of the
transaction's commit marker, just after its last record), under the key Faust's recovery reads
(``Store.offset_key``). So after a crash, at any point, a partition's database is the
state of some committed transaction and names its changelog offset: Faust's recovery reads the
changelog from there on (``read_committed``), only the records committed since.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from rocksdict import ReadOptions, WriteBatch

from agents.faust_compat import FAUST_OFFSET_KEY, changelog_offset_key, open_partition_db, partition_db
from windows.ordered_store import MemoryOrderedStore, OrderedStore, Write


class TablePartitions(OrderedStore, Protocol):
    """The committed state of a table's partitions: an ordered store whose partitions a stage
    opens before it processes them (``db_for``)."""

    def db_for(self, partition: int) -> Any:
        """Open the partition's database (for writes); what it returns is the store's own."""
        ...


class MemoryTablePartitions(MemoryOrderedStore):
    """:class:`TablePartitions` in memory: every partition is open."""

    def db_for(self, partition: int) -> None:
        return None


class RocksDBPartitions:
    """An :class:`~windows.ordered_store.OrderedStore` on one RocksDB per partition.

    ``db_for(partition)`` opens the partition's database (for writes and for the partitions the
    worker processes); ``open_db_for(partition)`` returns it only if it is open already, so a
    read for a partition the worker does not hold (an HTTP query) finds nothing rather than
    creating a database."""

    def __init__(
        self,
        db_for: Callable[[int], Any],
        open_db_for: Callable[[int], Any | None] | None = None,
        offset_key: Callable[[], bytes] = lambda: FAUST_OFFSET_KEY,
    ) -> None:
        self.db_for = db_for
        self.open_db_for = open_db_for or db_for
        self._offset_key = offset_key

    @classmethod
    def on_faust_table(cls, table: Any) -> RocksDBPartitions:
        """On a Faust table's RocksDB store (looked up at each use: Faust makes it when the
        table starts)."""
        return cls(
            db_for=lambda partition: partition_db(table.data, partition),
            open_db_for=lambda partition: open_partition_db(table.data, partition),
            offset_key=lambda: changelog_offset_key(table.data),
        )

    @property
    def offset_key(self) -> bytes:
        return self._offset_key()

    def read(self, partition: int, key: bytes) -> bytes | None:
        db = self.open_db_for(partition)
        return None if db is None else db.get(key)

    def scan(self, partition: int, low: bytes, high: bytes) -> Iterator[tuple[bytes, bytes]]:
        db = self.open_db_for(partition)
        if db is None:
            return
        options = ReadOptions()
        options.set_iterate_upper_bound(high)
        it = db.iter(options)
        it.seek(low)
        while it.valid():
            yield it.key(), it.value()
            it.next()

    def apply(self, partition: int, writes: Sequence[Write], changelog_offset: int | None) -> None:
        batch = WriteBatch(raw_mode=True)
        for key, value in writes:
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
        if changelog_offset is not None:
            batch.put(self.offset_key, str(changelog_offset).encode())
        self.db_for(partition).write(batch)

    def changelog_offset(self, partition: int) -> int | None:
        raw = self.read(partition, self.offset_key)
        return None if raw is None else int(raw)
