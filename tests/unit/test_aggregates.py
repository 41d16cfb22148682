import pytest
from hypothesis import given
from hypothesis import strategies as st

from windows.aggregates import InvalidField
from windows.aggregation_calls import parse_aggregation


def run(call: str, events: list[tuple[int, float]]) -> object:
    agg = parse_aggregation(call)
    state = agg.initialize()
    for arrival, (ts, value) in enumerate(events):
        state = agg.add(state, agg.extract({"x": value}), ts, arrival)
    return agg.result(state)


EVENTS = [(30, 2.0), (10, 5.0), (30, 7.0), (10, 1.0), (20, 3.0)]


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        ("count()", 5),
        ("sum(x)", 18.0),
        ("min(x)", 1.0),
        ("max(x)", 7.0),
        ("avg(x)", 3.6),
        # earliest timestamp is 10; of the two at 10 the first to arrive (5.0) wins
        ("first(x)", 5.0),
        # latest timestamp is 30; of the two at 30 the last to arrive (7.0) wins
        ("last(x)", 7.0),
    ],
)
def test_each_aggregation_over_out_of_order_events(call: str, expected: object) -> None:
    assert run(call, EVENTS) == expected


CALLS = ["count()", "sum(x)", "min(x)", "max(x)", "avg(x)", "first(x)", "last(x)"]


@pytest.mark.parametrize("call", CALLS)
@given(
    events=st.lists(st.tuples(st.integers(0, 5), st.integers(-50, 50)), max_size=12),
    side=st.lists(st.booleans(), min_size=12, max_size=12),
    swap=st.booleans(),
)
def test_merge_of_any_split_in_either_order_equals_one_pass(
    call: str, events: list[tuple[int, int]], side: list[bool], swap: bool
) -> None:
    """Sessions merge states built from interleaved arrivals; the tie rules of first/last must
    hold whichever side an event landed on and whichever state is passed first."""
    agg = parse_aggregation(call)
    a, b = agg.initialize(), agg.initialize()
    for arrival, (ts, v) in enumerate(events):
        if side[arrival]:
            a = agg.add(a, v, ts, arrival)
        else:
            b = agg.add(b, v, ts, arrival)
    merged = agg.merge(b, a) if swap else agg.merge(a, b)
    assert agg.result(merged) == run(call, events)


@pytest.mark.parametrize("payload", [{}, {"x": "12"}, {"x": None}, {"x": True}, {"x": [1]}])
def test_missing_or_non_numeric_field_is_invalid(payload: dict) -> None:
    with pytest.raises(InvalidField):
        parse_aggregation("sum(x)").extract(payload)


def test_empty_results() -> None:
    assert run("avg(x)", []) is None
    assert run("min(x)", []) is None
    assert run("first(x)", []) is None


@pytest.mark.parametrize("bad", ["count(x)", "sum()", "median(x)", "sum(x", "sum(x) + 1", ""])
def test_parse_rejects_unknown_or_malformed_calls_and_lists_the_allowed(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_aggregation(bad)
