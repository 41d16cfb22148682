"""Hand-drawn examples of window assignment, the close rule, late events and session merging.
The random-stream checks against a reference model are in ``test_window_properties.py``."""

import pytest

from tests.unit.test_window_properties import CALLS
from windows.aggregates import InvalidField
from windows.aggregation_calls import parse_aggregation
from windows.keyed_state import KeyWindows, apply_event, results
from windows.partition import PartitionWindows
from windows.spec import SessionWindows, SlidingWindows, TumblingWindows, Window, tumbling_window
from windows.store import InMemoryWindowStore
from windows.stream_time import advance, is_closed
from windows.table import WindowedAggregate

NAMES = tuple(CALLS)
AGGS = tuple(parse_aggregation(c) for c in CALLS.values())


def test_tumbling_assignment_is_half_open() -> None:
    #   0        10        20
    #   [a-------)[b-------)
    #   events at 0, 9 -> a; 10, 19 -> b
    assert tumbling_window(0, 10) == Window(0, 10)
    assert tumbling_window(9, 10) == Window(0, 10)
    assert tumbling_window(10, 10) == Window(10, 20)
    assert tumbling_window(19, 10) == Window(10, 20)
    assert tumbling_window(-1, 10) == Window(-10, 0)


def test_sliding_assignment() -> None:
    #   0    5    10   15
    #   [w0-------)
    #        [w5-------)
    #             [w10------)
    #   size 10, slide 5: 7 -> w0, w5; 10 -> w5, w10
    spec = SlidingWindows(size_ms=10, slide_ms=5)
    assert spec.windows_for(7) == (Window(0, 10), Window(5, 15))
    assert spec.windows_for(10) == (Window(5, 15), Window(10, 20))
    assert spec.windows_for(-1) == (Window(-10, 0), Window(-5, 5))
    # size 10, slide 4: windows start at 0, 4, 8, ... -> 9 is in [0,10), [4,14), [8,18)
    assert SlidingWindows(size_ms=10, slide_ms=4).windows_for(9) == (
        Window(0, 10),
        Window(4, 14),
        Window(8, 18),
    )
    assert SlidingWindows(size_ms=10, slide_ms=4).windows_for(10) == (Window(4, 14), Window(8, 18))


def test_close_rule_and_late_event() -> None:
    #   0        10        20        30
    #   [w0------)[w1------)
    #             grace 5: w0 closes when stream time >= 15
    spec = TumblingWindows(size_ms=10, grace_ms=5, retention_ms=100)
    state, stream_time = KeyWindows(), None
    for arrival, ts in enumerate((3, 14)):  # 3 -> w0; 14 -> w1, stream time 14: w0 still open
        out = apply_event(state, spec, AGGS, {"x": 1}, ts, arrival, stream_time)
        assert not out.late
        stream_time = advance(stream_time, ts)
    out = apply_event(state, spec, AGGS, {"x": 1}, 9, 2, stream_time)  # 14 < 10 + 5: accepted
    assert [w.start for w in out.changed] == [0]
    stream_time = advance(stream_time, 15)
    assert is_closed(10, 5, stream_time)
    out = apply_event(state, spec, AGGS, {"x": 1}, 9, 3, stream_time)  # 15 >= 15: late
    assert out.late and out.changed == ()
    assert results(AGGS, NAMES, state.windows[Window(0, 10)])["n"] == 2


def test_invalid_event_changes_nothing() -> None:
    spec = TumblingWindows(size_ms=10)
    state = KeyWindows()
    apply_event(state, spec, AGGS, {"x": 1}, 1, 0, None)
    before = state.to_json()
    with pytest.raises(InvalidField):
        apply_event(state, spec, AGGS, {"x": "one"}, 2, 1, 1)
    assert state.to_json() == before


def table(spec: TumblingWindows | SlidingWindows | SessionWindows, emit: str = "change") -> WindowedAggregate:
    return WindowedAggregate(
        window=spec,
        aggregations=(parse_aggregation("count()"), parse_aggregation("sum(x)")),
        names=("n", "s"),
        emit=emit,
    )


def test_sessions_merge_three_ways_and_list_what_they_replace() -> None:
    #   0    5    10   15
    #   [s1--)                  gap 5, grace 20 (nothing closes here)
    #          [s2--)
    #                  [s3--)
    #       [ev at 4 -> [4, 9) bridges s1 and s2 ...
    #   ... then an event at 10 bridges [0, 12) and s3 -> [0, 20)
    pw = PartitionWindows(table(SessionWindows(gap_ms=5, grace_ms=20)), InMemoryWindowStore(), 0)
    pw.on_event("a", {"x": 1}, 0, 0)  # [0, 5) v1
    pw.on_event("a", {"x": 2}, 7, 1)  # [7, 12) v1
    pw.on_event("a", {"x": 2}, 9, 2)  # [7, 14) v2, replaces [7, 12)
    pw.on_event("a", {"x": 4}, 15, 3)  # [15, 20) v1
    out = pw.on_event("a", {"x": 8}, 4, 4).emissions  # [4,9) overlaps [0,5) and [7,14) -> [0, 14)
    assert [(e.start, e.end, e.version, e.value, e.replaces) for e in out] == [
        (0, 14, 3, {"n": 4, "s": 13}, (Window(0, 5), Window(7, 14)))
    ]
    out = pw.on_event("a", {"x": 16}, 10, 5).emissions  # [10, 15) overlaps [0, 14) only
    assert [(e.start, e.end, e.version, e.replaces) for e in out] == [(0, 15, 4, (Window(0, 14),))]
    out = pw.on_event("a", {"x": 32}, 11, 6).emissions  # [11, 16) overlaps [0,15) and [15,20)
    assert [(e.start, e.end, e.version, e.value, e.replaces) for e in out] == [
        (0, 20, 5, {"n": 7, "s": 65}, (Window(0, 15), Window(15, 20)))
    ]


def test_a_closed_session_never_merges() -> None:
    #   0    5    10
    #   [s1--)            gap 5, grace 0, retention 100: s1 closes at stream time 5
    #      [s2--)         an event at 3 after that does not join s1 ([3, 8) overlaps it): it
    #                     starts a new session, open since 5 < 8
    store = InMemoryWindowStore()
    pw = PartitionWindows(table(SessionWindows(gap_ms=5, retention_ms=100)), store, 0)
    pw.on_event("a", {"x": 1}, 0, 0)
    pw.on_event("b", {"x": 1}, 5, 1)  # stream time 5: [0, 5) of "a" closes
    result = pw.on_event("a", {"x": 2}, 3, 2)
    assert not result.late
    assert [(e.start, e.end, e.version, e.replaces) for e in result.emissions] == [(3, 8, 1, ())]
    stored = store.get(0, "a")
    assert stored is not None and sorted(stored.windows) == [Window(0, 5), Window(3, 8)]
    # [-2, 3) overlaps only the closed s1: it merges with nothing and is itself closed -> late
    assert pw.on_event("a", {"x": 4}, -2, 3).late
    # [0, 5) overlaps s1 and s2: it joins the open s2 only
    result = pw.on_event("a", {"x": 8}, 0, 4)
    assert [(e.start, e.end, e.version, e.value, e.replaces) for e in result.emissions] == [
        (0, 8, 2, {"n": 2, "s": 10}, (Window(3, 8),))
    ]
    stored = store.get(0, "a")
    assert stored is not None and sorted(stored.windows) == [Window(0, 5), Window(0, 8)]


def test_final_emissions_come_out_in_close_order_then_key_then_start() -> None:
    # sliding size 10 slide 5, grace 2: windows ending at 10 close at 12, ending at 15 at 17
    pw = PartitionWindows(
        table(SlidingWindows(size_ms=10, slide_ms=5, grace_ms=2), "final"), InMemoryWindowStore(), 0
    )
    pw.on_event("b", {"x": 1}, 1, 0)  # b: [-5, 5), [0, 10)
    pw.on_event("a", {"x": 2}, 6, 1)  # a: [0, 10), [5, 15)
    pw.on_event("b", {"x": 4}, 6, 2)  # b: [0, 10), [5, 15); nothing closed yet
    out = pw.on_event("c", {"x": 0}, 20, 3).emissions
    assert [(e.key, e.start, e.end, e.version, e.value) for e in out] == [
        ("b", -5, 5, 1, {"n": 1, "s": 1}),
        ("a", 0, 10, 1, {"n": 1, "s": 2}),
        ("b", 0, 10, 1, {"n": 2, "s": 5}),
        ("a", 5, 15, 1, {"n": 1, "s": 2}),
        ("b", 5, 15, 1, {"n": 1, "s": 4}),
    ]


def test_partitions_of_one_store_keep_their_own_stream_time() -> None:
    store = InMemoryWindowStore()
    spec = TumblingWindows(size_ms=10, retention_ms=100)
    p0, p1 = PartitionWindows(table(spec), store, 0), PartitionWindows(table(spec), store, 1)
    p0.on_event("a", {"x": 1}, 50, 0)
    assert p1.on_event("a", {"x": 1}, 5, 0).late is False  # partition 1 has seen nothing yet
    assert (store.get_stream_time(0), store.get_stream_time(1)) == (50, 5)
    assert p0.on_event("a", {"x": 1}, 5, 1).late
    a0, a1 = store.get(0, "a"), store.get(1, "a")
    assert a0 is not None and sorted(a0.windows) == [Window(50, 60)]
    assert a1 is not None and sorted(a1.windows) == [Window(0, 10)]
