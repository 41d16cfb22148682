"""Event-time progress of the input partitions that feed one table partition, and the clock that
closes its windows.

Every partition of every topic of a source is an *input*. A table partition is fed by several
of them: by every source partition when the source is repartitioned, by partition ``p`` of each
of the source's topics when it is ``partitioned_by_key``. Inputs are numbered ``0..n-1``.

* An input's **progress** is the largest event time accepted from it (``None`` before any).
* An input is **idle** when it has nothing left to read and has received nothing for the
  source's ``idle_after``: it stops holding the clock back until it has records again.
  Idleness is part of the partition's saved state, like progress: a restored partition
  (restart, rebalance) resumes with the inputs as its input records last left them, so the
  same input records give the same windows however often the worker restarts. (Whoever
  reports idleness reports an input active again when it has records to read.)
* The table partition's **clock** (its stream time) is the smallest progress over the inputs
  that are not idle, once every input has reported (an event, a progress record or idleness);
  the largest progress when every input is idle; ``None`` before that. It never moves back.
  Windows close (``end + grace <= clock``), are emitted and expire by this clock alone.
* An event is judged by its **own** input: it updates exactly those of its windows with
  ``end + grace > max(own progress before it, clock)``; an event that updates none is late.
  When no input is idle the clock is at most the event's own progress, so the verdict depends
  on the event's own partition alone: an event at most ``grace`` behind its own partition's
  progress is never late, however far other partitions have run, and one further behind is
  late for exactly the windows its own partition has passed.

Timeline, two inputs, grace 0, a backlog read input 0 first::

    input 0:  1 4 9 12          (progress 12)
    input 1:           3 7 11   (progress 3, 7, 11)
    clock:    - - - -  3 7 11   (None until input 1 reports; then min(12, input 1))

Without the minimum, the clock would be 12 when input 1's events arrive, and all three late.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class InputState:
    """One input as a table partition knows it: its progress (epoch ms) and whether it is idle."""

    progress: int | None = None
    idle: bool = False


def combined_clock(inputs: Mapping[int, InputState], expected: int) -> int | None:
    """The clock the inputs allow (without the never-back rule): ``None`` until each of the
    ``expected`` inputs has reported, then the minimum progress of the inputs that are not idle
    (an input not idle without progress yet holds it at ``None``), or the maximum progress when
    all are idle."""
    if len(inputs) < expected:
        return None
    active = [s.progress for s in inputs.values() if not s.idle]
    if active:
        if None in active:
            return None
        return min(p for p in active if p is not None)
    known = [s.progress for s in inputs.values() if s.progress is not None]
    return max(known) if known else None


@dataclass
class PartitionClock:
    """The inputs of one table partition and its clock. ``expected``: how many inputs feed it."""

    expected: int = 1
    inputs: dict[int, InputState] = field(default_factory=dict)
    clock: int | None = None

    def on_event(self, source: int, timestamp_ms: int) -> int | None:
        """An event of input ``source`` was accepted; returns the input's progress before it.
        The input is no longer idle."""
        state = self.inputs.get(source)
        if state is None:
            state = self.inputs[source] = InputState()
        before = state.progress
        if before is None or timestamp_ms > before:
            state.progress = timestamp_ms
        state.idle = False
        return before

    def on_progress(self, source: int, progress: int | None, idle: bool) -> None:
        """Input ``source`` reports its progress (which never moves back) and idleness."""
        state = self.inputs.get(source)
        if state is None:
            state = self.inputs[source] = InputState()
        if progress is not None and (state.progress is None or progress > state.progress):
            state.progress = progress
        state.idle = idle

    def own_threshold(self, own_progress: int | None) -> int | None:
        """The time an event of an input with ``own_progress`` is judged by (see module doc)."""
        if own_progress is None:
            return self.clock
        if self.clock is None:
            return own_progress
        return own_progress if own_progress > self.clock else self.clock

    def advance(self) -> int | None:
        """Recompute the clock from the inputs; it never moves back. Returns it."""
        if self.expected == 1:  # one input: its progress
            state = self.inputs.get(0)
            allowed = None if state is None else state.progress
        else:
            allowed = combined_clock(self.inputs, self.expected)
        if allowed is not None and (self.clock is None or allowed > self.clock):
            self.clock = allowed
        return self.clock

    def raise_to(self, clock: int) -> None:
        """Move the clock forward without the inputs (``idle_timeout``: a stopped stream)."""
        if self.clock is None or clock > self.clock:
            self.clock = clock

    def holding(self) -> list[int]:
        """The inputs that hold the clock where it is: not idle, and at or behind it (or not yet
        reported)."""
        held = [i for i in range(self.expected) if i not in self.inputs]
        for i, s in sorted(self.inputs.items()):
            if not s.idle and (s.progress is None or self.clock is None or s.progress <= self.clock):
                held.append(i)
        return sorted(held)

    def to_json(self) -> list[Any]:
        return [self.clock, [[i, s.progress, s.idle] for i, s in sorted(self.inputs.items())]]

    @classmethod
    def from_json(cls, raw: Any, expected: int, clock: int | None = None) -> PartitionClock:
        """Rebuild from :meth:`to_json` (``None``: a partition with no saved inputs). ``clock``:
        the partition's saved stream time, which the clock is at least. Progress and idleness
        are restored as saved."""
        if raw is None:
            return cls(expected=expected, clock=clock)
        saved_clock, inputs = raw
        if clock is not None and (saved_clock is None or clock > saved_clock):
            saved_clock = clock
        return cls(
            expected=expected,
            inputs={int(i): InputState(progress, bool(idle)) for i, progress, idle in inputs},
            clock=saved_clock,
        )

    @classmethod
    def single(cls, clock: int | None) -> PartitionClock:
        """A partition fed by one input, whose progress is the clock."""
        inputs: Iterable[tuple[int, InputState]] = () if clock is None else [(0, InputState(clock))]
        return cls(expected=1, inputs=dict(inputs), clock=clock)
