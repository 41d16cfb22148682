"""The order of a commit, owned by one object: :class:`CommitSequence`.

A commit (Faust's timer, a backpressure commit, the last commit of a stop or a revocation) runs
under the commit gate (:mod:`agents.commit_gate`), so no batch is processed meanwhile, and goes
through these steps, each finished before the next starts:

1. ``HELD_BACK`` (:class:`HeldBackWrites`): stages queue in the sink, for the open
   transactions, what they hold back: progress reports of the source partitions, idle marks of
   inputs (which move a table's clock and close windows), ``emit = "update"`` records of the
   windows changed since the last commit. Before (2): after it, what they queue would wait in
   the sink past the commit, and its input's offset would commit without it (lost on a
   crash). Before (3): writing held-back records changes state (an idle mark closes and
   deletes windows), which (3) must persist in the same transaction.
2. ``OUTPUTS`` (:class:`OutputFlush`): the sink hands its queued records to the transactional
   producers. Before (5) and (6): a record still queued is in no transaction when it commits.
3. ``STATE`` (:class:`StateFlush`): the write-back caches send the changelog records of the
   changed state through the sink into the open transactions, and wait until they are
   delivered (their offsets are known). After (1), which changes state. Swapped with (5), the
   changelog would lag the offsets: a worker restoring the table after a crash would miss
   state whose input is committed. RocksDB is *not* written here: see (7).
4. ``SEND_BUFFER`` (:meth:`CommitTransport.drain_send_buffer`): Faust's send buffer is drained,
   every buffered record handed to its transactional producer. After (3), which fills it;
   before (5): a record still buffered when its transaction commits lands in the next one,
   after the offset it derives from.
5. ``OFFSETS`` (:meth:`CommitTransport.commit_offsets`): each input partition's transaction
   commits its offsets with the metadata the stages give (:class:`OffsetMetadata`), which also
   commits every record written into it by (1)-(4).
6. ``WRITES_WITHOUT_OFFSETS`` (:meth:`CommitTransport.commit_writes_without_offsets`): the
   transactions that hold records but whose offset did not move (records written while their
   partition had no input) commit too. After (5): a transaction whose offset moves commits
   there with its offset; committed here first, its records would be visible before the
   offset they derive from, and a crash in between would write them again.
7. ``AFTER`` (:class:`AfterCommit`, then the ``commit.done`` fault point): what runs once the
   commit is complete: the write-back caches apply the changes of (3) to RocksDB with the
   changelog offsets they reach. Anything earlier would see a commit that may still fail, and
   RocksDB would hold state that a crash leaves uncommitted.

Under ``at_least_once`` steps 4 and 6 do nothing, and step 5 is Faust's producer flush and
offset commit.

A step that raises ends the commit: no later step runs, and the error reaches whoever asked for
the commit. Within a step, hooks run in the order they were added.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from faust.types import TP

from agents.faults import FAULTS, FaultPoint, offsets_detail


class Step(enum.Enum):
    """The steps of a commit, in the order they run."""

    HELD_BACK = "held_back"
    OUTPUTS = "outputs"
    STATE = "state"
    SEND_BUFFER = "send_buffer"
    OFFSETS = "offsets"
    WRITES_WITHOUT_OFFSETS = "writes_without_offsets"
    AFTER = "after"


#: the fault point a commit passes just before each step (:mod:`agents.faults`)
STEP_POINTS = {step: FaultPoint(f"commit.{step.value}") for step in Step}


@dataclass(frozen=True)
class CommitRequest:
    """What a commit was asked for: Faust's ``topics`` filter (``None``: every partition) and
    whether each transaction it commits is followed by a new one (``False`` at the last commit
    of a stop or a revocation)."""

    topics: Any = None
    start_new_transaction: bool = True


@dataclass(frozen=True)
class CommitOutcome:
    """What step 5 committed: whether offsets were committed, and those that moved."""

    committed: bool
    moved: Mapping[TP, int] = field(default_factory=dict)


@dataclass(frozen=True)
class HeldBackWrites:
    """Step 1: a stage writes what it holds back into the open transactions (its sink)."""

    step: ClassVar[Step] = Step.HELD_BACK
    write: Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class OutputFlush:
    """Step 2: a sink hands its queued records to their producers."""

    step: ClassVar[Step] = Step.OUTPUTS
    flush: Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class StateFlush:
    """Step 3: a store sends the changelog records of its changed state."""

    step: ClassVar[Step] = Step.STATE
    flush: Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class AfterCommit:
    """Step 7: runs once the offsets and the transactions are committed."""

    step: ClassVar[Step] = Step.AFTER
    run: Callable[[CommitOutcome], object]


@dataclass(frozen=True)
class OffsetMetadata:
    """Step 5: what a stage stores with a partition's committed offset (``None``: nothing)."""

    step: ClassVar[Step] = Step.OFFSETS
    metadata_for: Callable[[TP], str | None]


Hook = HeldBackWrites | OutputFlush | StateFlush | AfterCommit | OffsetMetadata


class CommitTransport(Protocol):
    """Steps 4 to 6, which the Kafka transport's consumer carries out."""

    async def drain_send_buffer(self) -> None:
        """Step 4: hand every record in Faust's send buffer to its producer."""

    async def commit_offsets(self, request: CommitRequest) -> CommitOutcome:
        """Step 5: commit the offsets (with :meth:`CommitSequence.metadata_for`), in each input
        partition's transaction under ``exactly_once``."""

    async def commit_writes_without_offsets(self, request: CommitRequest) -> None:
        """Step 6: commit the transactions holding records but no moved offset."""


class CommitSequence:
    """Runs the steps of a commit in order (see the module docstring); stages add a typed hook
    for the step they take part in."""

    def __init__(self) -> None:
        self.held_back: list[HeldBackWrites] = []
        self.outputs: list[OutputFlush] = []
        self.state: list[StateFlush] = []
        self.offset_metadata: list[OffsetMetadata] = []
        self.after: list[AfterCommit] = []

    def add(self, hook: Hook) -> None:
        """Run ``hook`` in its step of every commit, after the hooks added before it."""
        if isinstance(hook, HeldBackWrites):
            self.held_back.append(hook)
        elif isinstance(hook, OutputFlush):
            self.outputs.append(hook)
        elif isinstance(hook, StateFlush):
            self.state.append(hook)
        elif isinstance(hook, OffsetMetadata):
            self.offset_metadata.append(hook)
        else:
            self.after.append(hook)

    def metadata_for(self, tp: TP) -> str:
        """The metadata committed with ``tp``'s offset: the first a stage gives, or ``""``."""
        for hook in self.offset_metadata:
            found = hook.metadata_for(tp)
            if found is not None:
                return found
        return ""

    async def run(self, transport: CommitTransport, request: CommitRequest) -> bool:
        """Commit, step by step; the caller holds the commit gate. Returns whether offsets were
        committed. A step that raises stops the sequence there. Before each step the worker
        passes that step's fault point (:data:`STEP_POINTS`), where a test can hold it."""
        await FAULTS.pass_point(STEP_POINTS[Step.HELD_BACK])
        for held_back in self.held_back:  # 1
            await held_back.write()
        await FAULTS.pass_point(STEP_POINTS[Step.OUTPUTS])
        for output in self.outputs:  # 2
            await output.flush()
        await FAULTS.pass_point(STEP_POINTS[Step.STATE])
        for state in self.state:  # 3
            await state.flush()
        await FAULTS.pass_point(STEP_POINTS[Step.SEND_BUFFER])
        await transport.drain_send_buffer()  # 4
        await FAULTS.pass_point(STEP_POINTS[Step.OFFSETS])
        outcome = await transport.commit_offsets(request)  # 5
        await FAULTS.pass_point(STEP_POINTS[Step.WRITES_WITHOUT_OFFSETS])
        await transport.commit_writes_without_offsets(request)  # 6
        await FAULTS.pass_point(STEP_POINTS[Step.AFTER])
        for after in self.after:  # 7
            after.run(outcome)
        if outcome.committed:
            FAULTS.reached(FaultPoint.COMMIT_DONE, offsets=offsets_detail(outcome.moved))
        return outcome.committed
