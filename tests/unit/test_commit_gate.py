"""The commit gate's rule for dropped records (:meth:`agents.commit_gate.CommitGate.process_batch`):
a batch it drops unprocessed stops the partition until the consumer rewinds it to the next
record to process, so no later batch is acknowledged past the dropped records.

Checked against a model of one partition's consumer: its fetch position, the rewinds of a
rebalance's recovery (to the committed offset) that can land while a fetched batch waits at the
gate, and the rewinds after a drop. Whatever the interleaving, the offsets acknowledged are
every offset from the committed one, in order, each once."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from faust.types import TP
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.commit_gate import Batch, CommitGate
from agents.rewinds import PartitionRewinds

TP0 = TP("src", 0)
LOG_END = 60


@dataclass
class Record:
    offset: int


@dataclass
class PartitionConsumer:
    """One partition's consumer as the gate and the fetch loop use it (the model of
    :class:`agents.transport.Consumer`): its fetch position, with the consumer's own rewind
    bookkeeping (:class:`agents.rewinds.PartitionRewinds`). A rewind to the committed offset
    (``perform_seek``) runs in three parts, between which the fetch loop goes on: it begins (a
    new epoch), the consumer thread seeks, it ends (once the thread has also waited for the
    broker)."""

    committed: int = 0
    position: int = 0
    rewinds: PartitionRewinds = field(default_factory=PartitionRewinds)
    flow_active: bool = True
    acked: list[int] = field(default_factory=list)
    sought: dict[TP, int] = field(default_factory=dict)

    # the gate's interface
    @property
    def seek_epoch(self) -> int:
        return self.rewinds.seek_epoch

    def rewind_pending(self, tp: TP) -> bool:
        return self.rewinds.pending(tp)

    def mark_rewind(self, tp: TP) -> None:
        self.rewinds.mark(tp)

    def resume_offset(self, tp: TP) -> int | None:
        return self.rewinds.positioned.get(tp)

    def processed_offset(self, tp: TP) -> int:
        return self.rewinds.processed.get(tp, -1)

    def ack_processed(self, tp: TP, offsets: list[int]) -> None:
        self.acked.extend(offsets)
        self.rewinds.processed[tp] = offsets[-1]

    # the fetch loop's side
    def fetch(self, count: int) -> tuple[int, list[Record]]:
        """The seek epoch when the fetch began, and the records it returned."""
        records = [Record(o) for o in range(self.position, min(LOG_END, self.position + count))]
        self.position += len(records)
        return self.seek_epoch, records

    def seek_begins(self) -> None:
        self.rewinds.seek_began()

    def seek_in_thread(self) -> None:
        self.position = self.committed
        self.sought = {TP0: self.committed}

    def seek_ends(self) -> None:
        self.rewinds.seek_ended(self.sought)

    def recovery_rewind(self) -> None:
        """``perform_seek`` with nothing in between its parts."""
        self.seek_begins()
        self.seek_in_thread()
        self.seek_ends()

    def rewind_dropped(self) -> None:
        """The fetch loop's rewind of a marked partition, before its next fetch."""
        rewinds = self.rewinds
        target = rewinds.target(TP0)
        if not rewinds.pending(TP0) or target is None:
            return
        rewinds.sought_back(TP0)
        self.position = target


class App:
    """What the gate reads of the app (weakly referenced, as the worker's app is)."""

    def __init__(self, consumer: PartitionConsumer) -> None:
        self.consumer = consumer
        self.consumer_generation_id = 1
        self.flow_control = SimpleNamespace(is_active=lambda: True)
        self.should_stop = False


def app_of(consumer: PartitionConsumer) -> Any:
    return App(consumer)


async def handler(batch: Batch) -> None:
    return None


def through_gate(gate: CommitGate, app: Any, epoch: int, records: list[Record]) -> None:
    if records:
        asyncio.run(gate.process_batch(app, Batch(TP0, 1, records, epoch), handler))


def test_a_batch_fetched_before_a_rewind_and_processed_after_it_acknowledges_nothing_past_a_drop() -> None:
    """The race that skipped records: a first fetch is dropped (the partition not rewound yet in
    this assignment), a second one waits at the gate while the recovery rewinds the partition,
    then reaches the gate. Both are dropped; the rewind reads them again, in order."""
    consumer = PartitionConsumer(committed=10, position=10)
    gate, app = CommitGate(), app_of(consumer)
    first = consumer.fetch(5)  # 10..14: the partition is not rewound in this assignment yet
    through_gate(gate, app, *first)
    assert consumer.acked == [] and consumer.rewind_pending(TP0)
    second = consumer.fetch(5)  # 15..19, fetched before the rewind ...
    consumer.recovery_rewind()  # ... which lands while it waits at the gate
    through_gate(gate, app, *second)
    assert consumer.acked == [], "acknowledging 15..19 would commit past 10..14, never processed"
    consumer.rewind_dropped()
    while consumer.position < LOG_END:
        through_gate(gate, app, *consumer.fetch(7))
        consumer.rewind_dropped()
    assert consumer.acked == list(range(10, LOG_END))


def test_records_dropped_while_a_rewind_waits_for_the_broker_are_read_again_after_it() -> None:
    """The rewind's thread has sought the partition and waits for the broker (the offsets of
    partitions without a committed one); meanwhile a fetch returns the records from the
    committed offset on, and the gate drops them (not rewound yet in this assignment): the
    fetch position is past them. The rewind ends: the next fetch must not be acknowledged past
    the dropped records."""
    consumer = PartitionConsumer(committed=10, position=10)
    gate, app = CommitGate(), app_of(consumer)
    consumer.seek_begins()
    consumer.seek_in_thread()
    through_gate(gate, app, *consumer.fetch(5))  # 10..14, dropped: not rewound yet
    consumer.rewind_dropped()  # nowhere to go yet: the rewind has not ended
    assert consumer.position == 15 and consumer.acked == []
    consumer.seek_ends()
    consumer.rewind_dropped()
    through_gate(gate, app, *consumer.fetch(5))
    assert consumer.acked == list(range(10, 15)), "read again from the committed offset"


# one step of the fetch loop and the rebalances around it: fetch n records and hand them to the
# gate, with a rewind to the committed offset whose three parts (Begin, Thread seek, End) land
# anywhere around the fetch (F) and the gate (G), in order, or no rewind
PARTS = ["BTEFG", "BTFEG", "BTFGE", "BFTEG", "BFTGE", "BFGTE", "FBTEG", "FBTGE", "FBGTE", "FGBTE", "FG"]
STEPS = st.lists(st.tuples(st.integers(1, 9), st.sampled_from(PARTS)), max_size=40)


@settings(max_examples=300, deadline=None)
@given(committed=st.integers(0, 20), steps=STEPS)
def test_whatever_the_rewinds_the_acknowledged_offsets_run_from_the_committed_one_without_a_gap(
    committed: int, steps: list[tuple[int, str]]
) -> None:
    consumer = PartitionConsumer(committed=committed, position=committed)
    gate, app = CommitGate(), app_of(consumer)
    for count, order in steps:
        consumer.rewind_dropped()
        fetched: tuple[int, list[Record]] = (0, [])
        for part in order:
            if part == "B":
                consumer.seek_begins()
            elif part == "T":
                consumer.seek_in_thread()
            elif part == "E":
                consumer.seek_ends()
            elif part == "F":
                fetched = consumer.fetch(count)
            else:
                through_gate(gate, app, *fetched)
        acked = consumer.acked
        assert acked == list(range(committed, committed + len(acked))), (committed, steps, acked)
