"""Tumbling windows: assignment, the close rule and late events, checked against a reference
model written independently of the engine."""

import contextlib
from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from windows.aggregates import parse_aggregation
from windows.keyed_state import KeyWindows, apply_event, results
from windows.spec import TumblingWindows, Window, tumbling_window
from windows.stream_time import advance, is_closed, is_expired

CALLS = {
    "n": "count()",
    "s": "sum(x)",
    "lo": "min(x)",
    "hi": "max(x)",
    "mean": "avg(x)",
    "first": "first(x)",
    "last": "last(x)",
}
NAMES = tuple(CALLS)
AGGS = tuple(parse_aggregation(c) for c in CALLS.values())


def test_assignment_is_half_open() -> None:
    #   0        10        20
    #   [a-------)[b-------)
    #   events at 0, 9 -> a; 10, 19 -> b
    assert tumbling_window(0, 10) == Window(0, 10)
    assert tumbling_window(9, 10) == Window(0, 10)
    assert tumbling_window(10, 10) == Window(10, 20)
    assert tumbling_window(19, 10) == Window(10, 20)
    assert tumbling_window(-1, 10) == Window(-10, 0)


def test_close_rule_and_late_event() -> None:
    #   0        10        20        30
    #   [w0------)[w1------)
    #             grace 5: w0 closes when stream time >= 15
    spec = TumblingWindows(size_ms=10, grace_ms=5, retention_ms=100)
    state, stream_time = KeyWindows(), None
    for ts in (3, 14):  # 3 -> w0; 14 -> w1, stream time 14: w0 still open
        out = apply_event(state, spec, AGGS, {"x": 1}, ts, stream_time)
        assert not out.late
        stream_time = advance(stream_time, ts)
    out = apply_event(state, spec, AGGS, {"x": 1}, 9, stream_time)  # 14 < 10 + 5: accepted
    assert [w.start for w in out.changed] == [0]
    stream_time = advance(stream_time, 15)
    assert is_closed(10, 5, stream_time)
    out = apply_event(state, spec, AGGS, {"x": 1}, 9, stream_time)  # 15 >= 15: late
    assert out.late and out.changed == ()
    assert state.windows[0].states[0] == 2


def test_invalid_event_changes_nothing() -> None:
    spec = TumblingWindows(size_ms=10)
    state = KeyWindows()
    apply_event(state, spec, AGGS, {"x": 1}, 1, None)
    before = state.to_json()
    with contextlib.suppress(ValueError):
        apply_event(state, spec, AGGS, {"x": "one"}, 2, 1)
    assert state.to_json() == before


def reference(events, size, grace, retention):
    """Per partition stream time = max accepted timestamp; an event is late when its window's
    end + grace <= stream time before it. Returns live windows and the indexes of late events."""
    stream_time: dict[int, int] = {}
    accepted = defaultdict(list)
    late = []
    for i, (key, partition, ts, x) in enumerate(events):
        start = (ts // size) * size
        before = stream_time.get(partition)
        if before is not None and before >= start + size + grace:
            late.append(i)
            continue
        accepted[(key, start)].append((ts, x))
        stream_time[partition] = ts if before is None else max(before, ts)
    live = {}
    for (key, start), items in accepted.items():
        partition = next(p for k, p, _, _ in events if k == key)
        if stream_time[partition] >= start + size + grace + retention:
            continue
        xs = [x for _, x in items]
        first_ts = min(t for t, _ in items)
        last_ts = max(t for t, _ in items)
        live[(key, start)] = {
            "n": len(xs),
            "s": sum(xs),
            "lo": min(xs),
            "hi": max(xs),
            "mean": sum(xs) / len(xs),
            "first": next(x for t, x in items if t == first_ts),
            "last": [x for t, x in items if t == last_ts][-1],
            "version": len(xs),
        }
    return live, late


events_strategy = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", "d"]),
        st.integers(min_value=-50, max_value=400),  # event time, ms
        st.integers(min_value=-100, max_value=100),  # field value
    ),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(
    raw=events_strategy,
    size=st.integers(min_value=1, max_value=60),
    grace=st.integers(min_value=0, max_value=40),
    retention=st.integers(min_value=0, max_value=200),
)
def test_random_out_of_order_streams_match_the_reference(raw, size, grace, retention) -> None:
    partition_of = {"a": 0, "b": 0, "c": 1, "d": 2}  # keys share or own partitions
    events = [(k, partition_of[k], ts, x) for k, ts, x in raw]
    spec = TumblingWindows(size_ms=size, grace_ms=grace, retention_ms=retention)
    states: dict[str, KeyWindows] = defaultdict(KeyWindows)
    stream_time: dict[int, int | None] = defaultdict(lambda: None)
    late = []
    for i, (key, p, ts, x) in enumerate(events):
        out = apply_event(states[key], spec, AGGS, {"x": x}, ts, stream_time[p])
        if out.late:
            late.append(i)
            continue
        assert [(w.start, w.end) for w in out.changed] == [tuple(tumbling_window(ts, size))]
        for w in out.changed:
            w.version += 1
        stream_time[p] = advance(stream_time[p], ts)
    engine = {}
    for key, state in states.items():
        for w in state.windows.values():
            if not is_expired(w.end, grace, retention, stream_time[partition_of[key]]):
                engine[(key, w.start)] = {**results(AGGS, NAMES, w), "version": w.version}
    expected, expected_late = reference(events, size, grace, retention)
    assert late == expected_late
    assert engine == expected
