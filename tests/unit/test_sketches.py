"""percentile(f, q) and count_distinct(f) (windows/sketches.py) against exact answers: exact
while small, within their stated bounds when large, the same after sessions merge; and in a
table, per key and window, through the harness."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.harness import Input, run_pipeline
from streams.plan.python_front import App, tumbling
from windows.aggregates import InvalidField
from windows.aggregation_calls import parse_aggregation
from windows.sketches import CountDistinct, Percentile


def fold(aggregation: Percentile | CountDistinct, values: list[object]) -> object:
    state = aggregation.initialize()
    for value in values:
        state = aggregation.add(state, aggregation.extract({"f": value}), 0, 0)
    return state


def exact_quantile(values: list[float], q: float) -> float:
    """The smallest value whose rank (the share of values at or below it) is at least q."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.integers(-1_000, 1_000), min_size=1, max_size=200),
    q=st.sampled_from([0.0, 0.01, 0.5, 0.95, 0.99, 1.0]),
)
def test_percentile_is_exact_up_to_200_events(values: list[int], q: float) -> None:
    p = Percentile("f", q)
    assert p.result(fold(p, values)) == exact_quantile([float(v) for v in values], q)


def test_percentile_of_many_events_is_within_its_rank_error_and_merges() -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(3, 1) for _ in range(20_000)]
    p = Percentile("f", 0.95)
    whole = p.result(fold(p, values))
    merged = p.result(p.merge(fold(p, values[:7_000]), fold(p, values[7_000:])))
    ordered = sorted(values)
    for answer in (whole, merged):
        assert answer is not None
        rank = sum(1 for v in ordered if v <= answer) / len(ordered)
        assert abs(rank - 0.95) <= 0.0133, rank
    assert p.result(None) is None


def test_count_distinct_is_exact_while_small_within_its_error_when_large_and_merges() -> None:
    c = CountDistinct("f")
    assert c.result(fold(c, ["a", "b", "a", 1, "1", 2.5, "2.5"])) == 4  # 1 is "1"; 2.5 is "2.5"
    many = [f"user-{i}" for i in range(100_000)]
    estimate = c.result(fold(c, many))
    assert abs(estimate - 100_000) / 100_000 <= 3 * 0.0163
    merged = c.result(c.merge(fold(c, many[:60_000]), fold(c, many[40_000:])))
    assert abs(merged - 100_000) / 100_000 <= 3 * 0.0163
    assert c.result(c.initialize()) == 0
    for bad in (True, None, {"x": 1}, [1]):
        with pytest.raises(InvalidField):
            c.extract({"f": bad})


def test_the_calls_parse_and_refuse_what_they_cannot_be() -> None:
    assert parse_aggregation("percentile(latency.ms, 0.95)") == Percentile("latency.ms", 0.95)
    assert parse_aggregation("count_distinct(user)") == CountDistinct("user")
    for text, problem in [
        ("percentile(ms, 1.5)", "from 0 to 1"),
        ("percentile(ms)", "a field and a quantile"),
        ("count_distinct()", "needs a field"),
    ]:
        with pytest.raises(ValueError, match=problem):
            parse_aggregation(text)


def test_p95_latency_per_endpoint_per_minute_in_a_table() -> None:
    app = App("lat")
    app.source("requests", topics=["requests"], key="endpoint", timestamp="ts").table(
        "latency",
        window=tumbling("1m", retention="1h"),
        aggregate={"p95": "percentile(ms, 0.95)", "users": "count_distinct(user)", "n": "count()"},
    )
    rng = random.Random(3)
    requests = sorted(  # in event-time order: none late
        (
            (endpoint, rng.randrange(120_000), rng.randrange(1, 500), f"u{rng.randrange(40)}")
            for endpoint in ("/a", "/b")
            for _ in range(150)
        ),
        key=lambda r: r[1],
    )
    result = run_pipeline(
        app,
        [Input("requests", {"endpoint": e, "ts": t, "ms": ms, "user": u}, key=e) for e, t, ms, u in requests],
        partitions=2,
    )
    for (endpoint, start, _end), value in result.windows["latency"].items():
        mine = [(ms, u) for e, t, ms, u in requests if e == endpoint and start <= t < start + 60_000]
        assert value == {
            "p95": exact_quantile([float(ms) for ms, _ in mine], 0.95),
            "users": len({u for _, u in mine}),
            "n": len(mine),
        }
    assert len(result.windows["latency"]) == 4
