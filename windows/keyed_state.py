"""The windows of one key and how one event changes them.

A key's state is the list of its live windows, each with its aggregation states and its
``version`` (the number of output records emitted for it so far). :func:`apply_event` is the
whole per-event rule, as a pure function:

1. extract every aggregation's field (an invalid event changes nothing: :class:`InvalidField`);
2. the event updates each of its windows that is still open at the stream time *before* it;
3. if it updates none, it is late: nothing changes and the caller counts it;
4. windows that have been closed for longer than the retention are dropped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from windows.aggregates import Aggregation
from windows.spec import TumblingWindows
from windows.stream_time import is_closed, is_expired


@dataclass
class WindowState:
    """One window of one key: [start, end) in epoch ms, aggregation states, emitted version."""

    start: int
    end: int
    states: list[Any]
    version: int = 0

    def to_json(self) -> list[Any]:
        return [self.start, self.end, self.version, self.states]

    @classmethod
    def from_json(cls, raw: Sequence[Any]) -> WindowState:
        start, end, version, states = raw
        return cls(start=start, end=end, states=list(states), version=version)


@dataclass
class KeyWindows:
    """All live windows of one key, by window start."""

    windows: dict[int, WindowState] = field(default_factory=dict)

    def to_json(self) -> list[Any]:
        return [w.to_json() for w in sorted(self.windows.values(), key=lambda w: w.start)]

    @classmethod
    def from_json(cls, raw: Sequence[Any] | None) -> KeyWindows:
        windows = [WindowState.from_json(item) for item in raw or ()]
        return cls({w.start: w for w in windows})


@dataclass(frozen=True)
class Outcome:
    """What one event did: the windows it changed (in start order), or that it was late."""

    changed: tuple[WindowState, ...]
    late: bool
    expired: int


def apply_event(
    state: KeyWindows,
    spec: TumblingWindows,
    aggregations: Sequence[Aggregation],
    payload: Mapping[str, Any],
    timestamp_ms: int,
    stream_time: int | None,
) -> Outcome:
    """Apply one event at ``timestamp_ms`` to ``state`` in place, given the partition's stream
    time before the event. Raises ``InvalidField`` (state untouched) for an invalid event."""
    values = [agg.extract(payload) for agg in aggregations]
    changed: list[WindowState] = []
    for window in spec.windows_for(timestamp_ms):
        if is_closed(window.end, spec.grace_ms, stream_time):
            continue
        current = state.windows.get(window.start)
        if current is None:
            current = WindowState(window.start, window.end, [a.initialize() for a in aggregations])
            state.windows[window.start] = current
        current.states = [
            agg.add(s, v, timestamp_ms)
            for agg, s, v in zip(aggregations, current.states, values, strict=False)
        ]
        changed.append(current)
    expired = drop_expired(state, spec, stream_time)
    return Outcome(changed=tuple(changed), late=not changed, expired=expired)


def drop_expired(state: KeyWindows, spec: TumblingWindows, stream_time: int | None) -> int:
    """Remove the windows whose retention has passed; return how many were removed."""
    gone = [
        start
        for start, w in state.windows.items()
        if is_expired(w.end, spec.grace_ms, spec.retention_ms, stream_time)
    ]
    for start in gone:
        del state.windows[start]
    return len(gone)


def results(aggregations: Sequence[Aggregation], names: Sequence[str], window: WindowState) -> dict[str, Any]:
    """The user-facing value of a window: aggregation results by their names in the pipeline."""
    return {name: agg.result(s) for name, agg, s in zip(names, aggregations, window.states, strict=False)}
