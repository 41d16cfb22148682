"""The order of a commit (:mod:`agents.commit_order`), without a broker: every step's hooks run
in the documented order, hooks of one step in the order they were added, and a step that
raises stops every later one."""

from __future__ import annotations

from typing import Any

import pytest
from faust.types import TP

from agents import commit_order
from agents.commit_order import (
    AfterCommit,
    CommitOutcome,
    CommitRequest,
    CommitSequence,
    HeldBackWrites,
    OffsetMetadata,
    OutputFlush,
    StateFlush,
    Step,
)
from agents.faults import FaultPoint

MOVED = {TP("in", 0): 7}


class StepFailed(Exception):
    pass


class Recorder:
    """Records each step as it runs; raises in the step named ``fail_at``."""

    def __init__(self, fail_at: Step | None = None) -> None:
        self.fail_at = fail_at
        self.ran: list[str] = []

    def reached(self, step: Step, label: str = "") -> None:
        self.ran.append(f"{step.value}{label}")
        if step is self.fail_at:
            raise StepFailed(step.value)


class RecordingTransport:
    def __init__(self, recorder: Recorder, committed: bool = True) -> None:
        self.recorder = recorder
        self.committed = committed
        self.requests: list[CommitRequest] = []

    async def drain_send_buffer(self) -> None:
        self.recorder.reached(Step.SEND_BUFFER)

    async def commit_offsets(self, request: CommitRequest) -> CommitOutcome:
        self.requests.append(request)
        self.recorder.reached(Step.OFFSETS)
        return CommitOutcome(self.committed, MOVED if self.committed else {})

    async def commit_writes_without_offsets(self, request: CommitRequest) -> None:
        self.requests.append(request)
        self.recorder.reached(Step.WRITES_WITHOUT_OFFSETS)


class RecordingFaults:
    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    def reached(self, point: FaultPoint, **details: Any) -> None:
        self.recorder.ran.append(f"{point.value} {details}")

    async def pass_point(self, point: FaultPoint, **details: Any) -> None:
        """A point a commit passes before each step, where a test can hold it."""
        self.recorder.ran.append(f"@{point.value}")


def recording_sequence(recorder: Recorder) -> CommitSequence:
    """Two hooks for each stage step, added interleaved (as two stages add theirs)."""
    sequence = CommitSequence()
    for label in ("a", "b"):

        async def write(label: str = label) -> None:
            recorder.reached(Step.HELD_BACK, label)

        async def flush_outputs(label: str = label) -> None:
            recorder.reached(Step.OUTPUTS, label)

        async def flush_state(label: str = label) -> None:
            recorder.reached(Step.STATE, label)

        def after(outcome: CommitOutcome, label: str = label) -> None:
            assert outcome.moved == (MOVED if outcome.committed else {})
            recorder.reached(Step.AFTER, label)

        sequence.add(HeldBackWrites(write))
        sequence.add(OutputFlush(flush_outputs))
        sequence.add(StateFlush(flush_state))
        sequence.add(AfterCommit(after))
    return sequence


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    found = Recorder()
    monkeypatch.setattr(commit_order, "FAULTS", RecordingFaults(found))
    return found


EVERY_STEP = [
    "@commit.held_back",
    "held_backa",
    "held_backb",
    "@commit.outputs",
    "outputsa",
    "outputsb",
    "@commit.state",
    "statea",
    "stateb",
    "@commit.send_buffer",
    "send_buffer",
    "@commit.offsets",
    "offsets",
    "@commit.writes_without_offsets",
    "writes_without_offsets",
    "@commit.after",
    "aftera",
    "afterb",
]


async def test_the_steps_run_in_order(recorder: Recorder) -> None:
    transport = RecordingTransport(recorder)
    request = CommitRequest(topics={"in"}, start_new_transaction=False)
    assert await recording_sequence(recorder).run(transport, request) is True
    assert recorder.ran == [*EVERY_STEP, "commit.done {'offsets': {'in:0': 7}}"]
    assert transport.requests == [request, request]


def test_the_steps_are_listed_in_their_order() -> None:
    assert [step.value for step in Step] == [
        "held_back",
        "outputs",
        "state",
        "send_buffer",
        "offsets",
        "writes_without_offsets",
        "after",
    ]
    hooks = [HeldBackWrites, OutputFlush, StateFlush, OffsetMetadata, AfterCommit]
    assert [hook.step for hook in hooks] == [
        Step.HELD_BACK,
        Step.OUTPUTS,
        Step.STATE,
        Step.OFFSETS,
        Step.AFTER,
    ]


async def test_no_commit_done_when_no_offset_was_committed(recorder: Recorder) -> None:
    transport = RecordingTransport(recorder, committed=False)
    assert await recording_sequence(recorder).run(transport, CommitRequest()) is False
    assert recorder.ran == EVERY_STEP


@pytest.mark.parametrize("failing", list(Step), ids=lambda step: step.value)
async def test_a_failing_step_stops_the_later_ones(recorder: Recorder, failing: Step) -> None:
    recorder.fail_at = failing
    with pytest.raises(StepFailed, match=failing.value):
        await recording_sequence(recorder).run(RecordingTransport(recorder), CommitRequest())
    # the first hook of the failing step raised: nothing after it ran
    ran_until = EVERY_STEP.index(next(s for s in EVERY_STEP if s.startswith(failing.value))) + 1
    assert recorder.ran == EVERY_STEP[:ran_until]


def test_offset_metadata_is_the_first_a_stage_gives() -> None:
    sequence = CommitSequence()
    tp, other = TP("in", 0), TP("in", 1)
    sequence.add(OffsetMetadata(lambda t: None))
    sequence.add(OffsetMetadata(lambda t: "first" if t == tp else None))
    sequence.add(OffsetMetadata(lambda t: "second"))
    assert sequence.metadata_for(tp) == "first"
    assert sequence.metadata_for(other) == "second"
    assert CommitSequence().metadata_for(tp) == ""
