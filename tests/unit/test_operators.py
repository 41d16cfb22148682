"""A table's chain of user functions (streams/plan/operators.py) through the worker's own
stages (the stage driver, no broker): any chain of filters, maps and flat_maps gives the windows
a plain-Python model gives; a step that fails dead-letters the whole record with its reason and
the exception's type and message, and no window takes any of it; a table that drops events still
closes its windows on time; the file names functions as "module:function"."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.stage_driver import StageDriver
from streams.kafka.partitioning import key_partition
from streams.plan.errors import PipelineError
from streams.plan.operators import Chain, Operator, UserFunctionFailed
from streams.plan.pipeline import Pipeline, load_pipeline, parse_pipeline
from streams.telemetry.metrics import OPERATOR_ERRORS, OPERATOR_EVENTS

PARTITIONS = 2
USERS = ["ann", "ben", "cai"]
SIZE_MS = 1_000
Step = tuple[str, int]


def function_of(step: Step) -> Callable[[dict[str, Any]], Any]:
    kind, n = step
    if kind == "filter":
        return lambda p: p["x"] % n != 0
    if kind == "map":
        return lambda p: {"x": p["x"] + n, "from": p["x"]}
    return lambda p: [{**p, "x": p["x"] * 10 + i} for i in range(n)]


def pipeline(steps: list[Step], partitioned_by_key: bool, emit: str = "update") -> Pipeline:
    return with_operators([{kind: function_of((kind, n))} for kind, n in steps], partitioned_by_key, emit)


def with_operators(
    operators: list[dict[str, Any]], partitioned_by_key: bool, emit: str = "update"
) -> Pipeline:
    """Table ``t`` (tumbling 1 s, grace 10 s: count and sum of x) of source ``events`` (topic
    ``src``, keyed by ``user``, timed by ``ts``) through ``operators``, to topic ``out``."""
    source = {"name": "events", "topics": ["src"], "key": "user", "timestamp": "ts"}
    return parse_pipeline(
        {
            "app": {"id": "ops"},
            "source": [{**source, "partitioned_by_key": partitioned_by_key}],
            "table": [
                {
                    "name": "t",
                    "source": "events",
                    "window": {"type": "tumbling", "size": "1s", "grace": "10s", "retention": "1h"},
                    "aggregate": {"n": "count()", "s": "sum(x)"},
                    "emit": emit,
                    "output": "out",
                    "operators": operators,
                }
            ],
        }
    )


def model(steps: list[Step], events: list[tuple[str, int, int]]) -> dict[tuple[str, int], dict[str, int]]:
    """Per (key, window start), count and sum of x over the payloads the chain gives."""
    windows: dict[tuple[str, int], dict[str, int]] = {}
    for user, ts, x in events:
        payloads = [{"user": user, "ts": ts, "x": x}]
        for kind, n in steps:
            if kind == "filter":
                payloads = [p for p in payloads if p["x"] % n != 0]
            elif kind == "map":
                payloads = [{"x": p["x"] + n} for p in payloads]
            else:
                payloads = [{"x": p["x"] * 10 + i} for p in payloads for i in range(n)]
        for p in payloads:
            w = windows.setdefault((user, ts - ts % SIZE_MS), {"n": 0, "s": 0})
            w["n"] += 1
            w["s"] += p["x"]
    return windows


def run(driver: StageDriver, events: list[tuple[str, int, int]], partitioned_by_key: bool) -> None:
    for i, (user, ts, x) in enumerate(events):
        partition = key_partition(user.encode(), PARTITIONS) if partitioned_by_key else i % PARTITIONS
        value = orjson.dumps({"user": user, "ts": ts, "x": x})
        driver.send("src", partition, [(user.encode(), value, [], 0)])
    asyncio.run(driver.run())


def table_windows(driver: StageDriver) -> dict[tuple[str, int], dict[str, int]]:
    table = driver.table("t")
    return {
        (key, w.start): table.aggregate.value(w)
        for p in range(PARTITIONS)
        for key, w in table.store.scan_windows(p)
    }


steps_strategy = st.lists(
    st.one_of(
        st.tuples(st.just("filter"), st.integers(2, 3)),
        st.tuples(st.just("map"), st.integers(-2, 2)),
        st.tuples(st.just("flat_map"), st.integers(0, 2)),
    ),
    max_size=4,
)
events_strategy = st.lists(
    st.tuples(st.sampled_from(USERS), st.integers(0, 3_000), st.integers(-5, 9)), min_size=1, max_size=30
)


@settings(max_examples=60, deadline=None)
@given(steps=steps_strategy, events=events_strategy, partitioned_by_key=st.booleans())
def test_any_chain_gives_the_windows_of_the_plain_python_model(
    steps: list[Step], events: list[tuple[str, int, int]], partitioned_by_key: bool
) -> None:
    driver = StageDriver(pipeline(steps, partitioned_by_key), PARTITIONS)
    run(driver, events, partitioned_by_key)
    assert table_windows(driver) == model(steps, events)


def dead_letters(driver: StageDriver) -> list[dict[str, bytes]]:
    return [
        dict(r.headers) for records in driver.committed_records("ops-dead-letters").values() for r in records
    ]


@pytest.mark.parametrize("partitioned_by_key", [False, True])
def test_a_failing_step_dead_letters_the_whole_record_and_no_window_takes_any_of_it(
    partitioned_by_key: bool,
) -> None:
    def split(p: dict[str, Any]) -> list[dict[str, Any]]:
        if p["x"] == 4:
            raise ZeroDivisionError("no fours")
        if p["x"] == 5:  # the second payload lacks the field the sum reads
            return [{"x": 1}, {"y": 1}]
        return [p, p]

    driver = StageDriver(with_operators([{"flat_map": split}], partitioned_by_key), PARTITIONS)
    label = f"flat_map({split.__module__}:{split.__qualname__})"
    failed_before = OPERATOR_ERRORS.labels(table="t", operator=label)._value.get()
    run(driver, [("ann", 100, 1), ("ann", 200, 4), ("ann", 300, 5), ("ann", 400, 2)], partitioned_by_key)
    assert table_windows(driver) == {("ann", 0): {"n": 4, "s": 6}}
    letters = sorted(
        dead_letters(driver), key=lambda h: h["continust-reason"] + h.get("continust-operator", b"")
    )
    assert [h["continust-reason"] for h in letters] == [b"invalid_field", b"user_error"]
    user_error = letters[1]
    assert user_error["continust-operator"] == label.encode()
    assert user_error["continust-error-type"] == b"ZeroDivisionError"
    assert user_error["continust-error-message"] == b"no fours"
    assert user_error["continust-table"] == b"t"
    assert OPERATOR_ERRORS.labels(table="t", operator=label)._value.get() == failed_before + 1


@pytest.mark.parametrize("partitioned_by_key", [False, True])
def test_events_a_filter_drops_still_move_the_clock_and_close_windows(partitioned_by_key: bool) -> None:
    """Only ann's events pass; ben's, on every partition, move the clock past the grace, so
    ann's first window closes and is emitted (emit = "final")."""
    keep_ann = with_operators([{"filter": lambda p: p["user"] == "ann"}], partitioned_by_key, emit="final")
    driver = StageDriver(keep_ann, PARTITIONS)
    events = [("ann", 100, 1)] + [(u, 20_000, 1) for u in ["ben", "cai", "dee", "eve"] for _ in range(2)]
    run(driver, events, partitioned_by_key)
    finals = [orjson.loads(r.value) for records in driver.committed_records("out").values() for r in records]
    assert [(f["key"], f["start"], f["value"]) for f in finals] == [("ann", 0, {"n": 1, "s": 1})]


def test_a_chain_counts_each_steps_events_in_and_out() -> None:
    chain = Chain(
        [
            Operator("flat_map", lambda p: [p, p, p], "m:three"),
            Operator("filter", lambda p: p["x"] > 1, "m:big"),
            Operator("map", lambda p: {"y": p["x"]}, "m:rename"),
        ]
    )
    assert chain.run({"x": 1}) == []
    assert chain.run({"x": 2}) == [{"y": 2}] * 3
    with pytest.raises(UserFunctionFailed) as failed:
        Chain([Operator("map", lambda p: [p], "m:listed")]).run({"x": 1})
    assert (failed.value.reason, failed.value.error_type) == ("user_error", "TypeError")
    assert chain.take_counts() == [
        ("flat_map(m:three)", 2, 6, 0),
        ("filter(m:big)", 6, 3, 0),
        ("map(m:rename)", 3, 3, 0),
    ]
    assert [c[1:] for c in chain.take_counts()] == [(0, 0, 0)] * 3


def write_pipeline(tmp_path: Path, operators: str) -> Path:
    (tmp_path / "my_rules.py").write_text("def keep(p):\n    return p['amount'] > 1\n")
    path = tmp_path / "pipeline.toml"
    path.write_text(
        f"""
[app]
id = "shop"
[[source]]
name = "purchases"
topics = ["purchases"]
key = "user"
[[table]]
name = "big"
source = "purchases"
window = {{ type = "tumbling", size = "1m" }}
aggregate = {{ n = "count()" }}
operators = {operators}
"""
    )
    return path


def test_the_file_names_functions_as_module_colon_function(tmp_path: Path) -> None:
    chain = (
        load_pipeline(
            write_pipeline(
                tmp_path,
                '[{ filter = "my_rules:keep" }, { map = "tests.unit.chain_functions.shop:in_cents" },'
                ' { flat_map = "tests.unit.chain_functions.shop:items" }]',
            )
        )
        .tables[0]
        .operators
    )
    assert [(op.kind, op.name) for op in chain] == [
        ("filter", "my_rules:keep"),
        ("map", "tests.unit.chain_functions.shop:in_cents"),
        ("flat_map", "tests.unit.chain_functions.shop:items"),
    ]
    assert chain[0].function({"amount": 2}) is True  # from the file's own directory
    for operators, problem in [
        ('[{ filter = "no_such_module:f" }]', "cannot import module 'no_such_module'"),
        ('[{ filter = "my_rules:nothing" }]', "has no 'nothing'"),
        ('[{ filter = "tests.unit.chain_functions.shop:NOT_A_FUNCTION" }]', "is not callable"),
        ('[{ filter = "my_rules" }]', 'as "module:function"'),
        ('[{ reduce = "my_rules:keep" }]', "'reduce' is not an operator; allowed: filter, map, flat_map"),
        ('[{ filter = "my_rules:keep", map = "my_rules:keep" }]', "must be one of"),
        ('{ filter = "my_rules:keep" }', "must be a list"),
    ]:
        with pytest.raises(PipelineError) as error:
            load_pipeline(write_pipeline(tmp_path, operators))
        assert problem in str(error.value) and "table 'big'" in str(error.value), operators


def test_the_operator_metrics_count_events_per_step() -> None:
    driver = StageDriver(pipeline([("filter", 2)], partitioned_by_key=True), PARTITIONS)
    label = driver.pipeline.tables[0].operators[0].label
    taken = OPERATOR_EVENTS.labels(table="t", operator=label, direction="in")._value.get()
    given_ = OPERATOR_EVENTS.labels(table="t", operator=label, direction="out")._value.get()
    run(driver, [("ann", 1, x) for x in range(10)], partitioned_by_key=True)
    assert OPERATOR_EVENTS.labels(table="t", operator=label, direction="in")._value.get() == taken + 10
    assert OPERATOR_EVENTS.labels(table="t", operator=label, direction="out")._value.get() == given_ + 5
    assert Counter(k for k, _ in table_windows(driver)) == Counter({"ann": 1})
