"""Event-time progress across inputs (:mod:`windows.progress`): a table partition fed by several
input partitions closes windows by the smallest progress of its inputs, and judges each event by
its own input.

The metamorphic properties: when every input is at most ``grace`` out of order, any
interleaving of the inputs, in batches of any size, with commits and crashes that replay from the
last commit, gives the windows, values, final emissions and (no) late events of the
event-time-ordered merge run through a partition with one input. With events further behind
than grace, tumbling and sliding windows still give one result whatever the interleaving: the
verdict on an event depends on its own input alone.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.test_window_properties import (
    ALL,
    KEYS,
    Config,
    ReferenceInputs,
    configs,
    payloads,
    plain,
    raw_store,
    store_view,
)
from windows.aggregates import InvalidField
from windows.partition import TRACKED, PartitionWindows
from windows.progress import InputState, PartitionClock, combined_clock
from windows.store import InMemoryWindowStore
from windows.table import WindowedAggregate
from windows.write_back import WriteBackStore

# (key, payload, timestamp) of one input's events, in the input's order
Input = list[tuple[str, dict[str, Any], int]]
MAX_INPUTS = 4
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def valid(table: WindowedAggregate, payload: dict[str, Any]) -> bool:
    try:
        for aggregation in table.aggregations:
            aggregation.extract(payload)
    except InvalidField:
        return False
    return True


def last_values(emitted: list[Any], windows: set[tuple[str, int, int]]) -> dict[Any, Any]:
    """The value of the last record of each of ``windows``."""
    return {e[:3]: e[4] for e in emitted if e[:3] in windows}


def arrival(source: int, offset: int) -> int:
    """A total order over the events of all inputs that no interleaving changes."""
    return offset * MAX_INPUTS + source


# --------------------------------------------------------------------------------------------
# The clock
# --------------------------------------------------------------------------------------------


def test_the_docstring_timeline_a_backlog_read_one_input_first() -> None:
    #   input 0:  1 4 9 12
    #   input 1:           3 7 11
    #   clock:    - - - -  3 7 11
    clock = PartitionClock(expected=2)
    seen = []
    for source, t in [(0, 1), (0, 4), (0, 9), (0, 12), (1, 3), (1, 7), (1, 11)]:
        clock.on_event(source, t)
        seen.append(clock.advance())
    assert seen == [None, None, None, None, 3, 7, 11]
    assert clock.holding() == [1]


def test_an_idle_input_stops_holding_the_clock_and_all_idle_runs_to_the_largest() -> None:
    clock = PartitionClock(expected=3)
    clock.on_event(0, 50)
    clock.on_event(1, 20)
    assert clock.advance() is None  # input 2 has not reported: it may have a backlog
    clock.on_progress(2, None, idle=True)  # empty and caught up
    assert clock.advance() == 20
    clock.on_progress(1, 20, idle=True)
    assert clock.advance() == 50  # only input 0 is active
    clock.on_progress(0, 50, idle=True)
    clock.on_event(1, 60)  # input 1 wakes up past input 0
    assert clock.advance() == 60
    clock.on_event(2, 10)  # a woken input behind the clock does not move it back
    assert clock.advance() == 60
    assert clock.own_threshold(10) == 60 and clock.own_threshold(70) == 70


def test_combined_clock_rules() -> None:
    assert combined_clock({}, 0) is None
    assert combined_clock({0: InputState(5)}, 2) is None
    assert combined_clock({0: InputState(5), 1: InputState(None)}, 2) is None
    assert combined_clock({0: InputState(5), 1: InputState(None, idle=True)}, 2) == 5
    assert combined_clock({0: InputState(5, idle=True), 1: InputState(None, idle=True)}, 2) == 5
    assert combined_clock({0: InputState(None, idle=True)}, 1) is None


def test_the_clock_round_trips_through_its_saved_form() -> None:
    clock = PartitionClock(expected=3)
    clock.on_event(0, 7)
    clock.on_progress(2, 4, idle=True)
    clock.advance()
    again = PartitionClock.from_json(clock.to_json(), 3)
    # progress and idleness come back as saved: the restored clock goes on as the first would
    assert again == clock
    assert again.inputs == {0: InputState(7), 2: InputState(4, idle=True)}
    clock.on_event(1, 9)
    again.on_event(1, 9)
    assert clock.advance() == again.advance() == 7  # input 2 is idle: min(7, 9)
    assert PartitionClock.from_json(None, 3, clock=9) == PartitionClock(expected=3, clock=9)


def test_a_partition_saves_its_inputs_with_its_state() -> None:
    table = Config("tumbling", "final", ("n",), grace=0, retention=100, size=10).table()
    store = InMemoryWindowStore()
    pw = PartitionWindows(table, store, 4, inputs=2)
    assert pw.on_input_event(0, "a", {}, 25, 0).emissions == ()  # input 1 not reported yet
    assert pw.on_input_event(1, "a", {}, 12, 1).emissions == ()  # clock 12: [0, 10) had no event
    # clock min(25, 31): [10, 20) closes, [20, 30) and [30, 40) stay open
    closed = pw.on_input_event(1, "a", {}, 31, 2).emissions
    assert [(e.start, e.value) for e in closed] == [(10, {"n": 1})]
    assert pw.advance_clock() == ()
    again = PartitionWindows(table, store, 4, inputs=2)
    assert again.stream_time == 25 and again.clock == pw.clock


# --------------------------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------------------------


@st.composite
def inputs(draw: st.DrawFn, grace: int, beyond_grace: bool = False) -> list[Input]:
    """2..4 inputs, each its own clock moving by small steps; an event is stamped up to ``grace``
    behind its input's clock (so at most ``grace`` out of order), or, with ``beyond_grace``,
    sometimes much further."""
    keys = draw(st.sampled_from([KEYS[:1], KEYS]))
    made = []
    for _ in range(draw(st.integers(2, MAX_INPUTS))):
        clock = draw(st.integers(-10, 30))
        events: Input = []
        for _ in range(draw(st.integers(0, 15))):
            clock += draw(st.integers(0, 6))
            lag = draw(st.integers(0, grace))
            if beyond_grace and draw(st.integers(0, 5)) == 0:
                lag = draw(st.integers(grace, grace + 40))
            events.append((draw(st.sampled_from(keys)), draw(payloads), clock - lag))
        made.append(events)
    return made


def run_in_order(cfg: Config, made: list[Input]) -> tuple[list[Any], InMemoryWindowStore, int]:
    """The event-time-ordered merge through a partition with one input."""
    merged = sorted(
        (t, source, offset, key, payload)
        for source, events in enumerate(made)
        for offset, (key, payload, t) in enumerate(events)
    )
    store = InMemoryWindowStore()
    pw = PartitionWindows(cfg.table(), store, 0)
    emitted: list[Any] = []
    late = 0
    for t, source, offset, key, payload in merged:
        try:
            result = pw.on_event(key, payload, t, arrival(source, offset))
        except InvalidField:
            continue
        late += result.late
        emitted.extend(plain(result.emissions))
    emitted.extend(plain(pw.emit_updates()))
    return emitted, store, late


def run_interleaved(
    cfg: Config, made: list[Input], data: st.DataObject, crashes: bool = True
) -> tuple[list[Any], InMemoryWindowStore, set[tuple[int, int]]]:
    """The inputs read in a random interleaving of random batches, the clock advanced after each
    batch; at random commits the cache is flushed (and ``emit = "update"`` emits), at random
    crashes it is lost and every input is read again from the last commit, in a new interleaving.
    At the end every input has caught up: all are idle. Returns the committed emissions, the
    store and the late events (input, offset)."""
    inner = InMemoryWindowStore()
    cached = WriteBackStore(inner)
    n = len(made)
    pw = PartitionWindows(cfg.table(), cached, 0, inputs=n)
    position, committed_at = [0] * n, [0] * n
    committed: list[Any] = []
    pending: list[Any] = []
    late: set[tuple[int, int]] = set()
    pending_late: set[tuple[int, int]] = set()
    crashed = 0

    def commit() -> None:
        nonlocal pending, pending_late
        pending.extend(plain(pw.emit_updates()))
        cached.flush()
        committed.extend(pending)
        late.update(pending_late)
        pending, pending_late = [], set()
        committed_at[:] = position

    while True:
        open_inputs = [i for i in range(n) if position[i] < len(made[i])]
        if not open_inputs:
            break
        source = data.draw(st.sampled_from(open_inputs))
        size = data.draw(st.integers(1, 5))
        for offset in range(position[source], min(position[source] + size, len(made[source]))):
            key, payload, t = made[source][offset]
            try:
                result = pw.on_input_event(source, key, payload, t, arrival(source, offset))
            except InvalidField:
                continue
            finally:
                position[source] = offset + 1
            if result.late:
                pending_late.add((source, offset))
            pending.extend(plain(result.emissions))
        assert pw.advance_clock() == ()  # the clock moved with the events
        action = data.draw(st.sampled_from(["go", "go", "commit", "crash"]))
        if action == "commit":
            commit()
        elif action == "crash" and crashes and crashed < 3:
            crashed += 1
            cached.forget()
            pending, pending_late = [], set()
            position[:] = committed_at
            pw = PartitionWindows(cfg.table(), cached, 0, inputs=n)
    for source in range(n):  # caught up and quiet
        pending.extend(plain(pw.on_input_progress(source, None, idle=True)))
    assert pw.advance_clock() == ()
    commit()
    return committed, inner, late


# --------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "emit"), [*ALL, ("tumbling", "update"), ("session", "update")])
@FAST
@given(data=st.data())
def test_within_grace_every_interleaving_gives_the_ordered_merge(kind: str, emit: str, data: st.DataObject):
    cfg = data.draw(configs(kind, emit), label="config")
    made = data.draw(inputs(cfg.grace), label="inputs")
    want_emitted, want_store, want_late = run_in_order(cfg, made)
    got_emitted, got_store, got_late = run_interleaved(cfg, made, data)
    assert want_late == 0 and got_late == set()
    table = cfg.table()
    assert store_view(table, got_store, 0) == store_view(table, want_store, 0)
    assert got_store.get_stream_time(0) == want_store.get_stream_time(0)
    if emit == "final":  # one record per window, at its close, in close order
        assert got_emitted == want_emitted
        assert raw_store(got_store, 0) == raw_store(want_store, 0)
    else:  # how changes fall into records may differ (and which sessions were in between), but
        # every window's last record holds its final value
        live = {(k, w[0], w[1]) for k, ws in store_view(table, want_store, 0).items() for w in ws}
        assert last_values(got_emitted, live) == last_values(want_emitted, live)
        if kind != "session":
            assert {e[:3] for e in got_emitted} == {e[:3] for e in want_emitted}


@pytest.mark.parametrize(("kind", "emit"), [(k, e) for k, e in ALL if k != "session"])
@FAST
@given(data=st.data())
def test_beyond_grace_the_verdict_depends_on_the_events_own_input(kind: str, emit: str, data: st.DataObject):
    """Two interleavings of the same inputs, some events far behind their input: the same
    events are late, and the same windows hold the same values. (Sessions are the exception
    documented in the README: a session event too late for its own window may still join a
    session that other inputs opened, so its verdict depends on what it meets.)"""
    cfg = data.draw(configs(kind, emit), label="config")
    made = data.draw(inputs(cfg.grace, beyond_grace=True), label="inputs")
    first_emitted, first_store, first_late = run_interleaved(cfg, made, data, crashes=False)
    second_emitted, second_store, second_late = run_interleaved(cfg, made, data)
    assert first_late == second_late
    table = cfg.table()
    assert store_view(table, first_store, 0) == store_view(table, second_store, 0)
    if emit == "final":
        assert sorted(map(repr, first_emitted)) == sorted(map(repr, second_emitted))
    # the verdict, from the event's own input alone: late iff every window it falls in has
    # end + grace <= its input's progress before it
    spec = cfg.spec()
    for source, events in enumerate(made):
        progress: int | None = None
        for offset, (_key, payload, t) in enumerate(events):
            if not valid(table, payload):
                continue
            own_late = progress is not None and all(
                w.end + cfg.grace <= progress for w in spec.windows_for(t)
            )
            assert ((source, offset) in first_late) == own_late, (source, offset, t, progress)
            if not own_late:
                progress = t if progress is None else max(progress, t)


@pytest.mark.parametrize("own_from", ["tracked", "upstream"])
@pytest.mark.parametrize(("kind", "emit"), ALL)
@FAST
@given(data=st.data())
def test_engine_matches_the_inputs_model_record_by_record(
    kind: str, emit: str, own_from: str, data: st.DataObject
) -> None:
    """Any interleaving of inputs (some events far behind their input) and of progress reports,
    some saying an input is idle: the engine and :class:`ReferenceInputs` agree on every
    verdict and every emission, and on the final windows. ``upstream``: each event carries its
    input's progress before it, as the source stage computes it over all of the input's events
    (repartitioned sources); ``tracked``: the partition tracks it (partitioned by key). At
    random points the partition is restored from its store, as a restarted worker or a new
    owner after a rebalance loads it: restores change nothing."""
    cfg = data.draw(configs(kind, emit), label="config")
    made = data.draw(inputs(cfg.grace, beyond_grace=True), label="inputs")
    n = len(made)
    store = InMemoryWindowStore()
    pw = PartitionWindows(cfg.table(), store, 0, inputs=n)
    model = ReferenceInputs(cfg.reference(), n)
    position = [0] * n
    upstream: list[int | None] = [None] * n  # each input's progress over all its events so far
    while any(position[i] < len(made[i]) for i in range(n)):
        source = data.draw(st.sampled_from([i for i in range(n) if position[i] < len(made[i])]))
        if data.draw(st.integers(0, 9)) == 0:  # a restore from the store
            pw = PartitionWindows(cfg.table(), store, 0, inputs=n)
            continue
        if data.draw(st.integers(0, 5)) == 0:  # a report: progress so far, maybe idle
            idle = data.draw(st.booleans())
            assert plain(pw.on_input_progress(source, upstream[source], idle)) == model.report(
                source, upstream[source], idle
            )
            continue
        offset = position[source]
        key, payload, t = made[source][offset]
        position[source] += 1
        own = upstream[source] if own_from == "upstream" else "tracked"
        upstream[source] = t if upstream[source] is None else max(upstream[source], t)  # type: ignore[type-var]
        want = model.event(source, own, key, payload, t, arrival(source, offset))
        try:
            result = pw.on_input_event(
                source, key, payload, t, arrival(source, offset), TRACKED if own == "tracked" else own
            )
        except InvalidField:
            assert want[0] != "ok"
            continue
        assert ("ok", result.late, plain(result.emissions)) == want
    assert store_view(cfg.table(), store, 0) == model.ref.view()
    assert store.get_stream_time(0) == model.ref.stream_time
