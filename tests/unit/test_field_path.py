"""Named fields of a payload, nested ones by a dotted path (windows/field_path.py), as the key,
the event time, an aggregation's field and the event id read them."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.plan.causation import event_id
from streams.plan.envelope import decode_event
from streams.plan.errors import InvalidEvent
from windows.aggregates import InvalidField
from windows.aggregation_calls import parse_aggregation
from windows.field_path import field_value, has_field

names = st.sampled_from(["a", "b", "a.b", "b.c", "a.b.c"])
json_values: st.SearchStrategy[Any] = st.recursive(
    st.one_of(st.integers(-5, 5), st.text(max_size=2), st.none()),
    lambda inner: st.dictionaries(names, inner, max_size=3),
    max_leaves=8,
)


def model(payload: Any, field: str) -> Any:
    """The rule as stated: the top-level field as written, else the path through objects."""
    if field in payload:
        return payload[field]
    node = payload
    for part in field.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(field)
        node = node[part]
    return node


@given(payload=st.dictionaries(names, json_values, max_size=4), field=names)
def test_a_field_is_the_top_level_one_as_written_else_the_nested_path(payload: dict[str, Any], field: str):
    try:
        expected = model(payload, field)
    except KeyError:
        with pytest.raises(KeyError):
            field_value(payload, field)
        assert not has_field(payload, field)
    else:
        assert field_value(payload, field) == expected
        assert has_field(payload, field)


def test_a_top_level_field_with_dots_is_found_before_the_path():
    payload = {"a.b": 1, "a": {"b": 2}}
    assert field_value(payload, "a.b") == 1
    assert field_value({"a": {"b": 2}}, "a.b") == 2
    for missing in ({"a": 3}, {"a": [{"b": 1}]}, {"a": {"c": 1}}, {}):
        assert not has_field(missing, "a.b")


def decode(value: dict[str, Any], key: str = "account.id", timestamp: str | None = "meta.ts") -> Any:
    return decode_event(
        orjson.dumps(value),
        key_field=key,
        timestamp_field=timestamp,
        record_timestamp_ms=5,
        now_ms=10_000,
        max_future_ms=1_000,
    )


def test_nested_key_and_event_time_are_read_as_top_level_ones_are():
    envelope = decode({"account": {"id": 42}, "meta": {"ts": "1970-01-01T00:00:01Z"}})
    assert (envelope.key, envelope.timestamp_ms) == ("42", 1_000)
    with pytest.raises(InvalidEvent) as missing:
        decode({"account": {"name": "x"}, "meta": {"ts": 1}})
    assert missing.value.reason == "missing_key"
    with pytest.raises(InvalidEvent) as bad:
        decode({"account": {"id": {"deeper": 1}}, "meta": {"ts": 1}})
    assert bad.value.reason == "bad_key"
    with pytest.raises(InvalidEvent) as no_time:
        decode({"account": {"id": "x"}, "meta": 7})
    assert no_time.value.reason == "missing_timestamp"


def test_an_aggregation_and_the_event_id_read_nested_fields():
    total = parse_aggregation("sum(amount.cents)")
    payload = {"amount": {"cents": 250}, "ids": {"event": 7}}
    assert total.extract(payload) == 250
    assert event_id(payload, "ids.event") == "7"
    assert event_id(payload, "ids.other") is None
    with pytest.raises(InvalidField):
        total.extract({"amount": {"cents": "many"}})
    with pytest.raises(InvalidField):
        total.extract({"amount": 3})


@pytest.mark.parametrize("partitioned_by_key", [False, True])
def test_the_worker_stages_key_time_and_aggregate_by_nested_fields(partitioned_by_key: bool):
    """Through the worker's stages (the stage driver), on both source kinds: windows keyed by
    ``account.id``, timed by ``meta.ts``, summing ``amount.cents``; a record without the nested
    key is a dead letter, not a window."""
    import asyncio

    from agents.stage_driver import StageDriver
    from streams.kafka.partitioning import key_partition
    from streams.plan.pipeline import parse_pipeline

    source = {"name": "events", "topics": ["src"], "key": "account.id", "timestamp": "meta.ts"}
    pipeline = parse_pipeline(
        {
            "app": {"id": "nested"},
            "source": [{**source, "partitioned_by_key": partitioned_by_key}],
            "table": [
                {
                    "name": "spent",
                    "source": "events",
                    "window": {"type": "tumbling", "size": "10s", "grace": "0s", "retention": "1h"},
                    "aggregate": {"n": "count()", "cents": "sum(amount.cents)"},
                }
            ],
        }
    )
    driver = StageDriver(pipeline, 2)
    events = [("ann", 1_000, 5), ("ben", 2_000, 7), ("ann", 3_000, 11), ("ann", 12_000, 1)]
    for user, ts, cents in events:
        value = orjson.dumps({"account": {"id": user}, "meta": {"ts": ts}, "amount": {"cents": cents}})
        driver.send("src", key_partition(user.encode(), 2), [(user.encode(), value, [], 0)])
    driver.send("src", 0, [(b"x", orjson.dumps({"account": {}, "meta": {"ts": 1}}), [], 0)])
    asyncio.run(driver.run())
    table = driver.table("spent")
    windows = sorted(
        (key, w.start, table.aggregate.value(w)) for p in range(2) for key, w in table.store.scan_windows(p)
    )
    assert windows == [
        ("ann", 0, {"n": 2, "cents": 16}),
        ("ann", 10_000, {"n": 1, "cents": 1}),
        ("ben", 0, {"n": 1, "cents": 7}),
    ]
    dead = [r for records in driver.committed_records("nested-dead-letters").values() for r in records]
    assert [dict(r.headers).get("continust-reason") for r in dead] == [b"missing_key"]
