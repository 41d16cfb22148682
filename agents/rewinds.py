"""Where each assigned partition may be processed from: the bookkeeping of the consumer's
rewinds, apart from the I/O that carries them out (:class:`agents.transport.Consumer`).

A partition is processed only from the offset it was rewound to in its assignment (its stable
committed offset, :attr:`PartitionRewinds.positioned`), in order, each record once. The commit
gate (:mod:`agents.commit_gate`) drops a batch that cannot be processed (fetched before a
rebalance, before the partition was rewound, or by a fetch that began before the latest
rewind: an older :attr:`PartitionRewinds.seek_epoch`) and **marks** its partition: the fetch
position has moved past the dropped records, so nothing more of it is processed until the fetch
loop has sought it back to :meth:`PartitionRewinds.target` (the record after the last one
processed, else the offset it was rewound to).

A rewind to the committed offsets (Faust's ``perform_seek``) takes time: the consumer thread
seeks each partition, then waits for the broker (the offsets of partitions without a committed
offset). Meanwhile the fetch loop goes on: a fetch can return records from the new position and
the gate drop them (the partition not rewound yet in this assignment), moving the fetch position
past them. So the end of a rewind (:meth:`PartitionRewinds.seek_ended`) starts a new epoch (what
a fetch begun during it returns is dropped) and keeps every mark: a partition marked while the
rewind ran is sought again to its target before anything more of it is processed. Clearing the
marks there let a later batch be acknowledged past records nobody processed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from faust.types import TP


@dataclass
class PartitionRewinds:
    """The rewind state of one consumer's assignment."""

    #: counts the rewinds begun and ended: a fetch that began in an older epoch is stale
    seek_epoch: int = 0
    #: per partition, the stable committed offset it was rewound to in this assignment: nothing
    #: of it is processed before, or below it
    positioned: dict[TP, int] = field(default_factory=dict)
    #: partitions whose fetched records the gate dropped: none is processed until sought back
    rewind_needed: set[TP] = field(default_factory=set)
    #: per partition, the highest offset processed since it was assigned
    processed: dict[TP, int] = field(default_factory=dict)

    def seek_began(self) -> None:
        """A rewind to the committed offsets begins: a fetch in progress is from before it."""
        self.seek_epoch += 1

    def seek_ended(self, rewound: Mapping[TP, int]) -> None:
        """The rewind is done: ``rewound`` are the partitions it sought, with their offsets
        (those assigned since wait for the next rewind). Marks stay (see the module docstring)."""
        self.seek_epoch += 1
        self.positioned = dict(rewound)

    def mark(self, tp: TP) -> None:
        """The gate dropped fetched records of ``tp`` unprocessed."""
        self.rewind_needed.add(tp)

    def pending(self, tp: TP) -> bool:
        return tp in self.rewind_needed

    def target(self, tp: TP) -> int | None:
        """Where a marked partition reads again: the record after the last one processed in this
        assignment, else the offset it was rewound to (``None`` before that rewind: it waits)."""
        processed = self.processed.get(tp)
        return processed + 1 if processed is not None else self.positioned.get(tp)

    def sought_back(self, tp: TP) -> None:
        """The fetch loop sought marked partition ``tp`` to its :meth:`target`."""
        self.seek_epoch += 1
        self.rewind_needed.discard(tp)

    def forget(self, tps: Iterable[TP]) -> None:
        """``tps`` are no longer assigned."""
        for tp in tps:
            self.processed.pop(tp, None)
            self.positioned.pop(tp, None)
            self.rewind_needed.discard(tp)
