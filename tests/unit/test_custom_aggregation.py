"""Users' aggregations (windows/custom_aggregation.py) in tables: one equal to sum gives the
built-in sum's windows for every window type; one that fails, changes its state in place or
gives a state that is not JSON dead-letters the event as user_error with no window changed; the
file names them as "module:Class(field)"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.harness import Input, Result, run_pipeline
from streams.plan.errors import PipelineError
from streams.plan.pipeline import load_pipeline
from streams.plan.python_front import App, custom, session, sliding, tumbling
from tests.unit.chain_functions.aggs import Distinct, EncodeOnly, FragileDistinct, Picky, Total

WINDOWS = {
    "tumbling": tumbling("10s", grace="5s", retention="1h"),
    "sliding": sliding("10s", "5s", grace="5s", retention="1h"),
    "session": session("4s", grace="5s", retention="1h"),
}


def app(partitioned_by_key: bool, aggregate: dict[str, Any], kind: str = "sliding") -> App:
    built = App("aggs")
    events = built.source(
        "events", topics=["src"], key="user", timestamp="ts", partitioned_by_key=partitioned_by_key
    )
    for name, window in WINDOWS.items():
        if kind in (name, "all"):
            events.table(name, window=window, aggregate=aggregate)
    return built


def inputs(events: list[tuple[str, int, Any]], by_key: bool = False) -> list[Input]:
    """On the partition of the key (a source partitioned by key) or spread over both."""
    return [
        Input("src", {"user": u, "ts": ts, "x": x}, key=u, partition=None if by_key else i % 2)
        for i, (u, ts, x) in enumerate(events)
    ]


#: (user, event time, x): two users, times within 40 s, small values that repeat
EVENTS = st.lists(
    st.tuples(st.sampled_from(["ann", "ben"]), st.integers(0, 40_000), st.integers(-3, 9)), max_size=25
)


@settings(max_examples=40, deadline=None)
@given(events=EVENTS, partitioned_by_key=st.booleans())
def test_a_users_sum_gives_the_built_in_sums_windows(
    events: list[tuple[str, int, int]], partitioned_by_key: bool
):
    both = {"builtin": "sum(x)", "users": custom(Total(), "x")}
    result = run_pipeline(
        app(partitioned_by_key, both, "all"), inputs(events, partitioned_by_key), partitions=2
    )
    for name in WINDOWS:
        windows = result.windows[name]
        assert all(value["users"] == value["builtin"] for value in windows.values()), name


@settings(max_examples=40, deadline=None)
@given(events=EVENTS, partitioned_by_key=st.booleans())
def test_a_state_that_is_not_json_declares_its_codec(
    events: list[tuple[str, int, int]], partitioned_by_key: bool
):
    """A set of the values seen, saved as a sorted list: the same windows as the built-in exact
    distinct count, sessions merged included."""
    both = {"builtin": "count_distinct(x)", "users": custom(Distinct(), "x")}
    result = run_pipeline(
        app(partitioned_by_key, both, "all"), inputs(events, partitioned_by_key), partitions=2
    )
    assert result.dead_letters == []
    for name in WINDOWS:
        windows = result.windows[name]
        assert all(value["users"] == value["builtin"] for value in windows.values()), name


def test_a_codec_that_fails_dead_letters_the_event_and_needs_both_halves(tmp_path: Path):
    aggregate = {"n": "count()", "distinct": custom(FragileDistinct(), "x")}
    events = [("ann", 6_000, 1), ("ann", 7_000, 13), ("ann", 8_000, 2)]
    result = run_pipeline(app(False, aggregate, "tumbling"), inputs(events, by_key=True), partitions=2)
    # 13 is saved (encode), then cannot be read back when 2 arrives
    (letter,) = result.dead_letters
    name = "tests.unit.chain_functions.aggs:FragileDistinct"
    assert letter.headers["continust-operator"] == f"aggregate({name}.decode)".encode()
    assert letter.headers["continust-error-message"] == b"cannot read 13 back"
    assert result.windows["tumbling"][("ann", 0, 10_000)] == {"n": 2, "distinct": None}
    with pytest.raises(ValueError, match="encode\\(\\) without its pair"):
        custom(EncodeOnly(), "x")
    with pytest.raises(PipelineError, match="without its pair"):
        load_pipeline(write(tmp_path, '{ m = "tests.unit.chain_functions.aggs:EncodeOnly(x)" }'))


def picky_run(events: list[tuple[str, int, Any]]) -> Result:
    return run_pipeline(
        app(False, {"n": "count()", "seen": custom(Picky(), "x")}), inputs(events, by_key=True), partitions=2
    )


def test_a_failing_users_aggregation_changes_no_window_and_dead_letters_the_event():
    good = [("ann", 6_000, 1), ("ann", 7_000, 2)]
    clean = picky_run(good)
    for bad, error_type in ((13, "ValueError"), (7, "TypeError")):
        result = picky_run([*good, ("ann", 8_000, bad)])
        # 8 s falls in two sliding windows, [0, 10 s) and [5 s, 15 s): neither took any of it
        assert result.windows == clean.windows
        (letter,) = result.dead_letters
        assert (letter.reason, letter.table) == ("user_error", "sliding")
        assert letter.headers["continust-operator"] == b"aggregate(tests.unit.chain_functions.aggs:Picky.add)"
        assert letter.headers["continust-error-type"] == error_type.encode()
    assert clean.windows["sliding"][("ann", 5_000, 15_000)] == {"n": 2, "seen": [1, 2]}


def test_an_aggregation_failing_in_one_window_of_an_event_changes_none_of_its_windows():
    """At 8 s the event falls in [0, 10 s), where the aggregation takes it, and in [5 s, 15 s),
    where it fails: neither window takes it."""
    good = [("ann", 3_000, 4), ("ann", 11_000, 1), ("ann", 12_000, 2)]
    result = picky_run([*good, ("ann", 8_000, 5)])
    assert result.windows == picky_run(good).windows
    assert [letter.headers["continust-error-message"] for letter in result.dead_letters] == [b"crowded"]


def test_a_result_that_fails_is_null_and_the_worker_goes_on():
    result = picky_run([("ann", 6_000, 99), ("ann", 7_000, 2)])
    assert result.windows["sliding"][("ann", 5_000, 15_000)] == {"n": 2, "seen": None}
    assert result.dead_letters == []


def write(tmp_path: Path, aggregate: str) -> Path:
    path = tmp_path / "aggs.toml"
    path.write_text(
        '[app]\nid = "a"\n[[source]]\nname = "s"\ntopics = ["t"]\nkey = "user"\n'
        '[[table]]\nname = "t"\nsource = "s"\nwindow = { type = "session", gap = "1m" }\n'
        f"aggregate = {aggregate}\n"
    )
    return path


def test_the_file_names_a_users_aggregation_as_module_class_and_field(tmp_path: Path):
    table = load_pipeline(
        write(tmp_path, '{ total = "tests.unit.chain_functions.aggs:Total(amount.cents)", n = "count()" }')
    ).tables[0]
    total = table.aggregations[0]
    assert (total.name, total.field) == ("tests.unit.chain_functions.aggs:Total", "amount.cents")
    assert total.extract({"amount": {"cents": 5}}) == 5
    for aggregate, problem in [
        ('{ m = "tests.unit.chain_functions.aggs:NoMerge(x)" }', "lacks merge (an aggregation has"),
        ('{ m = "tests.unit.chain_functions.aggs:Nothing(x)" }', "has no 'Nothing'"),
        ('{ m = "nowhere:Total(x)" }', "cannot import module 'nowhere'"),
    ]:
        with pytest.raises(PipelineError) as error:
            load_pipeline(write(tmp_path, aggregate))
        assert problem in str(error.value) and "table 't' aggregate" in str(error.value), aggregate


def test_the_readme_aggregations_are_working_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    blocks = []
    for name in ("Spread", "Distinct"):
        start = readme.index(f"```python\nclass {name}:") + len("```python\n")
        blocks.append(readme[start : readme.index("```", start)])
    (tmp_path / "my_aggs.py").write_text("\n\n".join(blocks))
    path = write(tmp_path, '{ spread = "my_aggs:Spread(amount)", users = "my_aggs:Distinct(who)" }')
    result = run_pipeline(
        load_pipeline(path),
        [
            Input("t", {"user": "ann", "amount": a, "who": who}, key="ann", timestamp_ms=ts)
            for a, who, ts in ((3, "x", 0), (9, "y", 1), (4, "x", 2))
        ],
    )
    assert result.windows["t"] == {("ann", 0, 60_002): {"spread": 6, "users": 2}}
