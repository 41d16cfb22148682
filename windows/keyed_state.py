"""The windows of one key and how one event changes them.

A key's state is the set of its live windows, each with its aggregation states and its
``version`` (the number of output records emitted for it so far). :func:`apply_event` is the
whole per-event rule, as a pure function of the key's state, the event and the partition's
stream time *before* the event:

1. every aggregation's field is extracted first; an invalid event changes nothing
   (:class:`~windows.aggregates.InvalidField`);
2. tumbling and sliding: the event updates each of its windows that is still open;
3. session: the event opens ``[t, t + gap)``; the key's open sessions overlapping it are merged
   with it into one session ``[min start, max end)``, their aggregation states merged; if that
   merged session is already closed the event updates nothing. A closed session never merges:
   an event close to it in time may start a new session that overlaps it;
4. an event that updates no window is late: nothing changes and the caller counts it.

Closing and deletion after retention are driven by stream time for the whole partition, in
:mod:`windows.partition`; which changes and closes become output records, in
:mod:`windows.emit_policy`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from windows.aggregates import Aggregation
from windows.spec import SessionWindows, Window, WindowSpec
from windows.stream_time import is_closed


@dataclass
class WindowState:
    """One window of one key: [start, end) in epoch ms, aggregation states, emitted version,
    and the ``cause`` of its last change: what the caller said caused the last event that
    changed it (a JSON-able value the windows never read; ``None``: not known), saved with the
    window and given to each record emitted for it."""

    start: int
    end: int
    states: list[Any]
    version: int = 0
    cause: Any = None

    @property
    def window(self) -> Window:
        return Window(self.start, self.end)

    def to_json(self) -> list[Any]:
        return [self.start, self.end, self.version, self.states]

    @classmethod
    def from_json(cls, raw: Sequence[Any]) -> WindowState:
        start, end, version, states = raw
        return cls(start=start, end=end, states=list(states), version=version)


@dataclass
class KeyWindows:
    """All live windows of one key, by ``Window(start, end)``."""

    windows: dict[Window, WindowState] = field(default_factory=dict)

    def in_order(self) -> list[WindowState]:
        """The windows sorted by (start, end)."""
        return [self.windows[w] for w in sorted(self.windows)]

    def to_json(self) -> list[Any]:
        return [w.to_json() for w in self.in_order()]

    @classmethod
    def from_json(cls, raw: Sequence[Any] | None) -> KeyWindows:
        windows = [WindowState.from_json(item) for item in raw or ()]
        return cls({w.window: w for w in windows})


class Outcome(NamedTuple):  # a tuple: built once per event, cheaper than a dataclass
    """What one event did to its key: the windows it updated (start order) and which of them it
    created; for a session, the earlier sessions the updated one replaced. ``late`` when it
    updated nothing."""

    changed: tuple[WindowState, ...]
    created: tuple[Window, ...]
    replaced: tuple[Window, ...]
    late: bool


LATE = Outcome(changed=(), created=(), replaced=(), late=True)


def apply_event(
    state: KeyWindows,
    spec: WindowSpec,
    aggregations: Sequence[Aggregation],
    payload: Mapping[str, Any],
    timestamp_ms: int,
    arrival: int,
    stream_time: int | None,
) -> Outcome:
    """Apply one event at ``timestamp_ms`` to ``state`` in place, given the partition's stream
    time before the event. ``arrival`` orders events of one key (see :mod:`windows.aggregates`).
    Raises ``InvalidField`` (state untouched) for an invalid event, and whatever an aggregation
    raises (a user's: :class:`~windows.custom_aggregation.AggregationFailed`) with the state
    untouched too: every new aggregation state is computed before any window changes."""
    values = [agg.extract(payload) for agg in aggregations]
    if isinstance(spec, SessionWindows):
        return _apply_session(state, spec, aggregations, values, timestamp_ms, arrival, stream_time)
    windows, grace = state.windows, spec.grace_ms
    # every new state first, then the windows: an aggregation that raises changes none of them
    updates: list[tuple[Window, WindowState | None, list[Any]]] = []
    for window in spec.windows_for(timestamp_ms):
        if stream_time is not None and stream_time >= window.end + grace:  # is_closed, inlined
            continue
        current = windows.get(window)
        states = [a.initialize() for a in aggregations] if current is None else current.states
        updates.append((window, current, _add(aggregations, states, values, timestamp_ms, arrival)))
    if not updates:
        return LATE
    changed: list[WindowState] = []
    created: list[Window] = []
    for window, current, states in updates:
        if current is None:
            current = windows[window] = WindowState(window.start, window.end, states)
            created.append(window)
        else:
            current.states = states
        changed.append(current)
    return Outcome(changed=tuple(changed), created=tuple(created), replaced=(), late=False)


def _apply_session(
    state: KeyWindows,
    spec: SessionWindows,
    aggregations: Sequence[Aggregation],
    values: list[Any],
    timestamp_ms: int,
    arrival: int,
    stream_time: int | None,
) -> Outcome:
    own = Window(timestamp_ms, timestamp_ms + spec.gap_ms)
    absorbed = sorted(
        (
            w
            for w in state.windows.values()
            if w.window.overlaps(own) and not is_closed(w.end, spec.grace_ms, stream_time)
        ),
        key=lambda w: w.window,
    )
    merged = Window(
        min([own.start, *(w.start for w in absorbed)]), max([own.end, *(w.end for w in absorbed)])
    )
    if is_closed(merged.end, spec.grace_ms, stream_time):
        return LATE
    states = [a.initialize() for a in aggregations]
    for w in absorbed:
        states = [a.merge(s, o) for a, s, o in zip(aggregations, states, w.states, strict=True)]
    states = _add(aggregations, states, values, timestamp_ms, arrival)
    # nothing raised: only now the sessions change
    for w in absorbed:
        del state.windows[w.window]
    session = WindowState(
        merged.start, merged.end, states, version=max((w.version for w in absorbed), default=0)
    )
    state.windows[merged] = session
    replaced = tuple(w.window for w in absorbed if w.window != merged)
    created = () if any(w.window == merged for w in absorbed) else (merged,)
    return Outcome(changed=(session,), created=created, replaced=replaced, late=False)


def _add(
    aggregations: Sequence[Aggregation], states: list[Any], values: list[Any], timestamp_ms: int, arrival: int
) -> list[Any]:
    return [
        agg.add(s, v, timestamp_ms, arrival) for agg, s, v in zip(aggregations, states, values, strict=True)
    ]


def results(aggregations: Sequence[Aggregation], names: Sequence[str], window: WindowState) -> dict[str, Any]:
    """The user-facing value of a window: aggregation results by their names in the pipeline."""
    return {name: agg.result(s) for name, agg, s in zip(names, aggregations, window.states, strict=True)}
