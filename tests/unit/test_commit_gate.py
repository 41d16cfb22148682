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

TP0 = TP("src", 0)
LOG_END = 60


@dataclass
class Record:
    offset: int


@dataclass
class PartitionConsumer:
    """One partition's consumer as the gate and the fetch loop use it (the model of
    :class:`agents.transport.Consumer`): rewinds move the fetch position and count an epoch."""

    committed: int = 0
    position: int = 0
    seek_epoch: int = 0
    positioned: int | None = None
    processed: int | None = None
    rewind_needed: bool = False
    flow_active: bool = True
    acked: list[int] = field(default_factory=list)

    # the gate's interface
    def rewind_pending(self, tp: TP) -> bool:
        return self.rewind_needed

    def mark_rewind(self, tp: TP) -> None:
        self.rewind_needed = True

    def resume_offset(self, tp: TP) -> int | None:
        return self.positioned

    def processed_offset(self, tp: TP) -> int:
        return -1 if self.processed is None else self.processed

    def ack_processed(self, tp: TP, offsets: list[int]) -> None:
        self.acked.extend(offsets)
        self.processed = offsets[-1]

    # the fetch loop's side
    def fetch(self, count: int) -> tuple[int, list[Record]]:
        """The seek epoch when the fetch began, and the records it returned."""
        records = [Record(o) for o in range(self.position, min(LOG_END, self.position + count))]
        self.position += len(records)
        return self.seek_epoch, records

    def recovery_rewind(self) -> None:
        """``perform_seek``: every partition back to its committed offset."""
        self.seek_epoch += 1
        self.position = self.positioned = self.committed
        self.rewind_needed = False

    def rewind_dropped(self) -> None:
        if not self.rewind_needed or self.positioned is None:
            return
        target = self.processed + 1 if self.processed is not None else self.positioned
        self.seek_epoch += 1
        self.position = target
        self.rewind_needed = False


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
    assert consumer.acked == [] and consumer.rewind_needed
    second = consumer.fetch(5)  # 15..19, fetched before the rewind ...
    consumer.recovery_rewind()  # ... which lands while it waits at the gate
    through_gate(gate, app, *second)
    assert consumer.acked == [], "acknowledging 15..19 would commit past 10..14, never processed"
    consumer.rewind_dropped()
    while consumer.position < LOG_END:
        through_gate(gate, app, *consumer.fetch(7))
        consumer.rewind_dropped()
    assert consumer.acked == list(range(10, LOG_END))


# one step of the fetch loop and the rebalances around it: fetch n records and hand them to the
# gate, with a recovery rewind (0, 1) landing before the fetch or while the batch waits
STEPS = st.lists(st.tuples(st.integers(1, 9), st.sampled_from(["none", "before", "waiting"])), max_size=40)


@settings(max_examples=200, deadline=None)
@given(committed=st.integers(0, 20), steps=STEPS)
def test_whatever_the_rewinds_the_acknowledged_offsets_run_from_the_committed_one_without_a_gap(
    committed: int, steps: list[tuple[int, str]]
) -> None:
    consumer = PartitionConsumer(committed=committed, position=committed)
    gate, app = CommitGate(), app_of(consumer)
    for count, rewind in steps:
        consumer.rewind_dropped()
        if rewind == "before":
            consumer.recovery_rewind()
        epoch, records = consumer.fetch(count)
        if rewind == "waiting":
            consumer.recovery_rewind()
        through_gate(gate, app, epoch, records)
        acked = consumer.acked
        assert acked == list(range(committed, committed + len(acked))), (committed, steps, acked)
