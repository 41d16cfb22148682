"""One partition of one windowed table: events in, output records and state changes out.

:class:`PartitionWindows` applies :func:`~windows.keyed_state.apply_event` to each event, judged
by its own input partition's progress (:mod:`windows.progress`), moves the partition's stream
time to the clock its inputs allow, and does what stream time decides for *every* key of the
partition, in stream-time order. All times are integer epoch milliseconds and every window is
the half-open interval ``[start, end)``:

* an event that updates no window (each of its windows closed for the time it is judged by,
  :mod:`windows.keyed_state`) is late: it changes nothing and produces no record of its own,
  but still counts for its input's progress;
* a window closes once stream time >= end + grace;
* a closed window is deleted from the store once stream time >= end + grace + retention; a key
  whose last window is deleted is deleted itself.

Which changes and closes become output records is the table's emit policy
(:mod:`windows.emit_policy`, one class per ``emit`` mode, built by
:func:`~windows.emit_policy.emit_policy`); the engine saves the ``version`` each record counts.

Windows due at the same stream time are handled in ``(end + grace, key, start, end)`` order, so
the output sequence of a partition is a function of its input sequence alone: stream time never
depends on the wall clock (a caller that lets it follow one passes the time in, through
:meth:`PartitionWindows.advance_to`). The close schedule is the store's time index
(:mod:`windows.store_layout`), saved with the windows, so a restarted or reassigned partition
continues exactly where the committed state left it without reading any window to rebuild it.

An event reads and writes only its own windows: for tumbling and sliding windows the ones it
falls in (point reads), for sessions those of its key that end after it (one range scan, in
a store that orders sessions by end).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Any, Literal, NamedTuple

from windows.emission import Emission
from windows.emit_policy import emit_policy
from windows.keyed_state import KeyWindows, WindowState, apply_event
from windows.progress import PartitionClock
from windows.spec import SessionWindows, Window
from windows.store import WindowStore
from windows.store_layout import Scheduled
from windows.stream_time import is_closed
from windows.table import WindowedAggregate


class Tracked(enum.Enum):
    TRACKED = 0


TRACKED = Tracked.TRACKED
"""For :meth:`PartitionWindows.on_input_event`: the input's progress as the partition tracked it."""


class EventResult(NamedTuple):  # a tuple: built once per event, cheaper than a dataclass
    """What one event did: its output records in order, and whether it was late (then nothing
    changed). ``stream_time`` is the partition's stream time before the event."""

    emissions: tuple[Emission, ...]
    late: bool
    stream_time: int | None


class PartitionWindows:
    """The windows of every key of one partition of one table, its stream time and its close
    schedule, on a :class:`~windows.store.WindowStore`; what they emit is decided by the emit
    policy of the table's ``emit`` mode (:attr:`emit_policy`)."""

    def __init__(self, table: WindowedAggregate, store: WindowStore, partition: int, inputs: int = 1) -> None:
        """``inputs``: how many input partitions feed this partition (:mod:`windows.progress`);
        with one, the stream time is that input's progress and no input state is saved."""
        self.table = table
        self.store = store
        self.partition = partition
        self.stream_time = store.get_stream_time(partition)
        self.clock = (
            PartitionClock.single(self.stream_time)
            if inputs == 1
            else PartitionClock.from_json(store.get_inputs(partition), inputs, self.stream_time)
        )
        self.emit_policy = emit_policy(table)
        # nothing closes before stream time reaches _next_close, and nothing is deleted before
        # it reaches _next_delete + retention (None: not known, read the index)
        self._next_close: int | None = None
        self._next_delete: int | None = None
        self._open: int | None = None  # read from the store at first use

    @property
    def open_windows(self) -> int:
        """Windows created and not closed yet: saved with the partition's state, kept by the
        creations, session merges and closes (a store written before the count existed counts
        from 0, and never below it)."""
        if self._open is None:
            self._open = self.store.get_open_windows(self.partition)
        return self._open

    def _count_open(self, change: int) -> None:
        if change:
            self._open = max(0, self.open_windows + change)
            self.store.set_open_windows(self.partition, self._open)

    @property
    def scheduled(self) -> int:
        """Entries in the time index: windows waiting to close or to expire (a whole scan of
        the index: for tests and diagnostics)."""
        return len(self.store.index(self.partition))

    def on_event(
        self, key: str, payload: Mapping[str, Any], timestamp_ms: int, arrival: int, cause: Any = None
    ) -> EventResult:
        """Apply one event of a partition fed by one input (see :meth:`on_input_event`)."""
        return self.on_input_event(0, key, payload, timestamp_ms, arrival, cause=cause)

    def on_input_event(
        self,
        source: int,
        key: str,
        payload: Mapping[str, Any],
        timestamp_ms: int,
        arrival: int,
        own_progress: int | Literal[Tracked.TRACKED] | None = TRACKED,
        cause: Any = None,
    ) -> EventResult:
        """Apply one event of input ``source``, then move stream time to the clock the inputs
        allow. The event is judged by its own input's progress before it (and the clock):
        ``own_progress`` when the caller knows it (an upstream stage saw the whole input), else
        the progress this partition tracked from the input's valid events. ``stream_time`` in
        the result is the time it was judged by. Raises ``InvalidField`` (nothing changed) for
        an invalid event.

        ``cause`` becomes the cause of every window the event changes
        (:attr:`~windows.keyed_state.WindowState.cause`), saved with it and given to its records.

        A late event changes no window, but still counts for its input's progress."""
        clock = self.clock
        state = clock.inputs.get(source)
        own = (None if state is None else state.progress) if own_progress is TRACKED else own_progress
        before = clock.own_threshold(own)
        key_windows = self._windows_for(key, timestamp_ms, before)
        outcome = apply_event(
            key_windows, self.table.window, self.table.aggregations, payload, timestamp_ms, arrival, before
        )
        moved = state is None or state.progress is None or timestamp_ms > state.progress or state.idle
        if moved:
            clock.on_event(source, timestamp_ms)
        if outcome.late:
            closed = self.advance_clock() if moved else ()
            if moved and clock.expected > 1:
                self.store.set_inputs(self.partition, clock)
            return EventResult(emissions=closed, late=True, stream_time=before)
        if cause is not None:
            for changed in outcome.changed:
                changed.cause = cause
        self._save(key, outcome.changed, outcome.created, outcome.replaced)
        emissions = self.emit_policy.changed(key, outcome)
        if moved:
            allowed = clock.advance()
            if allowed is not None and (self.stream_time is None or allowed > self.stream_time):
                passed = self._advance(allowed)
                if passed:
                    emissions = [*emissions, *passed]
            if clock.expected > 1:
                self.store.set_inputs(self.partition, clock)
        return EventResult(emissions=tuple(emissions), late=False, stream_time=before)

    def _windows_for(self, key: str, timestamp_ms: int, stream_time: int | None) -> KeyWindows:
        """The key's windows an event at ``timestamp_ms`` may change: a session's every session
        of the key; otherwise the windows it falls in that are not closed and exist."""
        store, partition, spec = self.store, self.partition, self.table.window
        if isinstance(spec, SessionWindows):  # those it can merge with end after it
            return KeyWindows({w.window: w for w in store.key_windows(partition, key, timestamp_ms)})
        grace = spec.grace_ms
        found: dict[Window, WindowState] = {}
        for window in spec.windows_for(timestamp_ms):
            if stream_time is not None and stream_time >= window.end + grace:  # closed
                continue
            state = store.get_window(partition, key, window)
            if state is not None:
                found[window] = state
        return KeyWindows(found)

    def _save(
        self,
        key: str,
        changed: Sequence[WindowState],
        created: Sequence[Window],
        replaced: Sequence[Window],
    ) -> None:
        store, partition = self.store, self.partition
        self._count_open(len(created) - len(replaced))
        for window in replaced:  # sessions merged into another: open until now
            store.delete_window(partition, key, window)
            store.index_remove(partition, self._entry(key, window))
        for state in changed:
            store.put_window(partition, key, state)
        stream_time = self.stream_time
        for window in created:
            entry = self._entry(key, window)
            store.index_add(partition, entry)
            if self._next_close is not None and entry.due < self._next_close:
                self._next_close = entry.due
            if self._next_delete is not None and entry.due < self._next_delete:
                self._next_delete = entry.due
            if stream_time is not None and entry.due <= stream_time:
                # open for its own input's progress, closed for the partition's: it closes at
                # the next move of stream time
                store.overdue_add(partition, entry)

    def on_input_passed(self, source: int, timestamp_ms: int) -> tuple[Emission, ...]:
        """A valid event of input ``source`` that no window takes (the table's chain of user
        functions dropped it): it moves its input's progress, and stream time with it, exactly
        as :meth:`on_input_event` would, so a table that keeps few of its source's events still
        closes windows on time."""
        clock = self.clock
        state = clock.inputs.get(source)
        if not (state is None or state.progress is None or timestamp_ms > state.progress or state.idle):
            return ()
        clock.on_event(source, timestamp_ms)
        emissions = self.advance_clock()
        if clock.expected > 1:
            self.store.set_inputs(self.partition, clock)
        return emissions

    def on_input_progress(self, source: int, progress: int | None, idle: bool) -> tuple[Emission, ...]:
        """Input ``source`` reports its progress and idleness; stream time moves to the clock
        the inputs then allow."""
        self.clock.on_progress(source, progress, idle)
        emissions = self.advance_clock()
        self.store.set_inputs(self.partition, self.clock)
        return emissions

    def advance_clock(self) -> tuple[Emission, ...]:
        """Move stream time to the clock the inputs allow (never back), closing, emitting and
        expiring what it passes."""
        clock = self.clock.advance()
        if clock is None or (self.stream_time is not None and clock <= self.stream_time):
            return ()
        emissions = self._advance(clock)
        if self.clock.expected > 1:
            self.store.set_inputs(self.partition, self.clock)
        return tuple(emissions)

    @property
    def updated(self) -> int:
        """Windows changed since the last :meth:`emit_updates` whose record waits for it
        (``emit = "update"``; 0 otherwise)."""
        return self.emit_policy.pending

    def emit_updates(self) -> tuple[Emission, ...]:
        """The records due at a commit (called once per commit): under ``emit = "update"``,
        one per window changed since the last call, with its latest value, in the order the
        windows first changed; each counts one more ``version``, which is saved. Nothing under
        the other modes."""
        emissions = self.emit_policy.at_commit()
        if not emissions:
            return ()
        store, partition = self.store, self.partition
        for emission in emissions:
            state = store.get_window(partition, emission.key, Window(emission.start, emission.end))
            if state is not None:  # not deleted since
                state.version = emission.version
                store.put_window(partition, emission.key, state)
        return emissions

    def advance_to(self, stream_time: int) -> tuple[Emission, ...]:
        """Move stream time forward to ``stream_time`` (epoch ms) without an event, closing,
        emitting and expiring what it passes (``idle_timeout``: the caller computes the time
        from its clock); earlier times are ignored, since stream time never moves back."""
        if self.stream_time is not None and stream_time <= self.stream_time:
            return ()
        self.clock.raise_to(stream_time)
        return self.advance_clock()

    def _advance(self, stream_time: int) -> list[Emission]:
        """Move stream time to ``stream_time``: close (and emit) the windows it reaches in the
        time index, in ``(due, key, start, end)`` order, the overdue ones with them; then delete
        the windows whose retention it passes."""
        store, partition = self.store, self.partition
        before, self.stream_time = self.stream_time, stream_time
        store.set_stream_time(partition, stream_time)
        retention = self.table.window.retention_ms
        next_close, next_delete = self._next_close, self._next_delete
        if (
            next_close is not None
            and stream_time < next_close
            and next_delete is not None
            and stream_time - retention < next_delete
        ):
            return []  # nothing is due (an overdue window makes next_close <= before)
        emissions: list[Emission] = []
        closed = self.emit_policy.closed
        closes = 0
        closing = store.index_between(partition, before, stream_time, "close")
        overdue = store.take_overdue(partition)
        if overdue:
            closing = sorted({*closing, *overdue})
        for entry in closing:
            key = entry.key
            window = Window(entry.start, entry.end)
            state = store.get_window(partition, key, window)
            if state is None:  # merged into a later session
                continue
            closes += 1
            emission = closed(key, state)
            if entry.due + retention <= stream_time:  # no retention left: deleted at once
                store.delete_window(partition, key, window)
                store.index_remove(partition, entry)
            elif emission is not None:
                store.put_window(partition, key, state)  # its version
            if emission is not None:
                emissions.append(emission)
        self._count_open(-closes)
        after = None if before is None else before - retention
        for entry in store.index_between(partition, after, stream_time - retention, "delete"):
            store.delete_window(partition, entry.key, Window(entry.start, entry.end))
            store.index_remove(partition, entry)
        self._next_close = store.next_due(partition, "close")
        self._next_delete = store.next_due(partition, "delete")
        return emissions

    def _entry(self, key: str, window: Window) -> Scheduled:
        return Scheduled(window.end + self.table.window.grace_ms, key, window.start, window.end)


def live_windows(
    table: WindowedAggregate, windows: Sequence[WindowState], stream_time: int | None
) -> Sequence[tuple[WindowState, bool]]:
    """The windows (in (start, end) order) with whether each is closed."""
    grace = table.window.grace_ms
    return [(w, is_closed(w.end, grace, stream_time)) for w in windows]
