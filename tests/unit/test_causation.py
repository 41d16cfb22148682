"""Causation headers (:mod:`streams.plan.causation`): the W3C ``traceparent`` rules, the header
encoding and its reading back, the event id, the dead letter's headers; and the cause saved
with a window's state on the real RocksDB store, surviving a reopen, in the old state format
too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import rocksdict
from hypothesis import given
from hypothesis import strategies as st

from agents.table_store import RocksDBPartitions
from streams.plan.causation import (
    CAUSE_ID,
    CAUSE_OFFSET,
    CAUSE_PARTITION,
    CAUSE_TOPIC,
    TRACEPARENT,
    TraceParent,
    cause_headers,
    event_id,
    event_id_of_value,
    parse_traceparent,
    read_cause,
    traceparent_of,
)
from streams.plan.dead_letters import DeadLetter
from windows.aggregation_calls import parse_aggregation
from windows.partition import PartitionWindows
from windows.spec import SessionWindows, TumblingWindows, Window
from windows.store_layout import window_key
from windows.table import WindowedAggregate
from windows.write_back import WriteBackStore

HEX = "0123456789abcdef"


def hex_text(length: int) -> st.SearchStrategy[str]:
    return st.text(HEX, min_size=length, max_size=length)


trace_ids = hex_text(32).filter(lambda t: t != "0" * 32)
span_ids = hex_text(16).filter(lambda s: s != "0" * 16)
flags = st.integers(0, 255)


@given(trace_ids, span_ids, flags)
def test_a_valid_traceparent_parses_to_its_fields_and_writes_back_the_same(
    trace_id: str, span_id: str, flag: int
) -> None:
    header = f"00-{trace_id}-{span_id}-{flag:02x}"
    parsed = parse_traceparent(header.encode())
    assert parsed == TraceParent(trace_id, span_id, flag)
    assert parsed.header() == header
    assert parsed.sampled == bool(flag & 1)
    assert traceparent_of([("other", b"x"), (TRACEPARENT, header.encode())]) == header


@given(hex_text(2).filter(lambda v: v not in ("00", "ff")), trace_ids, span_ids, flags, st.text(HEX + "-"))
def test_a_later_version_may_append_fields_and_is_read_as_version_00(
    version: str, trace_id: str, span_id: str, flag: int, rest: str
) -> None:
    header = f"{version}-{trace_id}-{span_id}-{flag:02x}" + (f"-{rest}" if rest else "")
    assert parse_traceparent(header) == TraceParent(trace_id, span_id, flag)


@given(trace_ids, span_ids, flags, st.data())
def test_a_broken_traceparent_is_not_read(
    trace_id: str, span_id: str, flag: int, data: st.DataObject
) -> None:
    good = f"00-{trace_id}-{span_id}-{flag:02x}"
    broken = data.draw(
        st.sampled_from(
            [
                f"ff-{trace_id}-{span_id}-{flag:02x}",  # the forbidden version
                f"00-{'0' * 32}-{span_id}-{flag:02x}",  # an all-zero trace id
                f"00-{trace_id}-{'0' * 16}-{flag:02x}",  # an all-zero parent id
                good + "-00",  # version 00 has exactly four fields
                good.upper(),  # hex is lowercase
                good[:-1],  # a field too short
                f"00-{trace_id}x-{span_id}-{flag:02x}",  # not hex
                good.replace("-", "_"),
                "",
            ]
        )
    )
    assert parse_traceparent(broken) is None
    assert traceparent_of([(TRACEPARENT, broken.encode())]) is None


def test_a_traceparent_that_is_not_ascii_or_missing_is_not_read() -> None:
    assert parse_traceparent(b"\xff\xfe") is None
    assert parse_traceparent(None) is None
    assert traceparent_of(None) is None
    assert traceparent_of([("tracestate", b"a=b")]) is None


causes = st.tuples(
    st.text(min_size=1, max_size=20),
    st.integers(0, 10_000),
    st.integers(0, 2**62),
    st.none() | st.text(max_size=30),
    st.none() | st.builds(lambda t, s, f: f"00-{t}-{s}-{f:02x}", trace_ids, span_ids, flags),
)


@given(causes)
def test_cause_headers_read_back_as_the_cause(cause: Any) -> None:
    headers = cause_headers(cause)
    assert read_cause(headers) == cause
    assert read_cause(iter(headers)) == cause, "any iterable of headers"
    names = [name for name, _ in headers]
    assert names[:3] == [CAUSE_TOPIC, CAUSE_PARTITION, CAUSE_OFFSET]
    assert (CAUSE_ID in names) == (cause[3] is not None)
    assert (TRACEPARENT in names) == (cause[4] is not None)
    assert cause_headers(list(cause)) == headers, "a saved cause (a list) writes the same headers"


def test_headers_without_a_whole_cause_name_none() -> None:
    assert read_cause(None) is None
    assert read_cause([(CAUSE_TOPIC, b"t"), (CAUSE_PARTITION, b"1")]) is None
    assert read_cause([(CAUSE_TOPIC, b"t"), (CAUSE_PARTITION, b"x"), (CAUSE_OFFSET, b"2")]) is None


def test_the_event_id_is_the_fields_text_when_the_source_names_one() -> None:
    payload = {"id": "e-1", "n": 7, "f": 1.5, "o": {"a": [1]}, "none": None}
    assert event_id(payload, "id") == "e-1"
    assert event_id(payload, "n") == "7"
    assert event_id(payload, "f") == "1.5"
    assert event_id(payload, "o") == '{"a":[1]}'
    assert event_id(payload, "none") is None
    assert event_id(payload, "missing") is None
    assert event_id(payload, None) is None
    assert event_id_of_value(b'{"id": 3}', "id") == "3"
    assert event_id_of_value(b"not json", "id") is None
    assert event_id_of_value(b"[1]", "id") is None
    assert event_id_of_value(None, "id") is None
    assert event_id_of_value(b'{"id": 3}', None) is None


def test_a_dead_letter_names_its_input_record_in_the_cause_headers() -> None:
    parent = "00-" + "a" * 32 + "-" + "b" * 16 + "-01"
    letter = DeadLetter("not_json", "bad", "clicks", "in", 2, 40, cause=("in", 2, 40, "e-9", parent))
    headers = letter.headers()
    assert read_cause(headers) == ("in", 2, 40, "e-9", parent)
    assert dict(headers)["continust-reason"] == b"not_json"
    bare = DeadLetter("not_json", "bad", "clicks", "in", 1, 5)
    assert read_cause(bare.headers()) == ("in", 1, 5, None, None), "without a cause: its own record"


# -- the cause saved with the window state, on the real RocksDB store ---------------------------


class RocksDBDir:
    """One partition's RocksDB database in a directory, opened as Faust opens it (raw mode),
    and reopened as after a restart."""

    def __init__(self, root: Path) -> None:
        self.path = str(root / "p0.db")
        self.db: Any = None
        self.open()

    def open(self) -> None:
        self.db = rocksdict.Rdict(self.path, options=rocksdict.Options(raw_mode=True))

    def reopen(self) -> None:
        self.db.close()
        self.open()

    def store(self) -> RocksDBPartitions:
        return RocksDBPartitions(db_for=lambda _: self.db, open_db_for=lambda _: self.db)


def final_table(window: Any) -> WindowedAggregate:
    return WindowedAggregate(window, (parse_aggregation("count()"),), ("n",), "final")


def commit(store: WriteBackStore, offset: int) -> None:
    store.committed(store.changes(), {0: offset})


@pytest.fixture
def rocks(tmp_path: Path) -> Any:
    opened = RocksDBDir(tmp_path)
    yield opened
    opened.db.close()


def cause(offset: int) -> tuple[str, int, int, str, None]:
    return ("clicks", 1, offset, f"e{offset}", None)


def test_a_final_emission_after_a_restart_names_the_last_event_of_its_window(rocks: RocksDBDir) -> None:
    table = final_table(TumblingWindows(size_ms=100))
    store = WriteBackStore(rocks.store())
    windows = PartitionWindows(table, store, 0)
    for offset, (key, ts) in enumerate([("a", 10), ("b", 20), ("a", 50), ("b", 30)]):
        assert windows.on_event(key, {}, ts, offset, cause=cause(offset)).emissions == ()
    commit(store, 3)
    rocks.reopen()  # the worker restarts: nothing but the committed state is left
    restarted = PartitionWindows(table, WriteBackStore(rocks.store()), 0)
    assert restarted.on_event("a", {}, 60, 4, cause=cause(4)).emissions == ()
    emitted = restarted.on_event("c", {}, 250, 5, cause=cause(5)).emissions
    assert [(e.key, e.start, e.value, e.cause) for e in emitted] == [
        ("a", 0, {"n": 3}, cause(4)),  # changed since the restart
        ("b", 0, {"n": 2}, list(cause(3))),  # as saved: read back from JSON
    ]


def test_a_session_merged_from_others_is_caused_by_the_event_that_merged_them(rocks: RocksDBDir) -> None:
    table = final_table(SessionWindows(gap_ms=20, grace_ms=50))
    store = WriteBackStore(rocks.store())
    windows = PartitionWindows(table, store, 0)
    windows.on_event("k", {}, 0, 0, cause=cause(0))
    windows.on_event("k", {}, 30, 1, cause=cause(1))
    windows.on_event("k", {}, 15, 2, cause=cause(2))  # bridges the two sessions
    commit(store, 2)
    rocks.reopen()
    emitted = PartitionWindows(table, WriteBackStore(rocks.store()), 0).on_event("x", {}, 150, 3).emissions
    assert [(e.start, e.end, e.cause) for e in emitted] == [(0, 50, list(cause(2)))]


def test_a_window_saved_before_causes_existed_reads_with_none_until_an_event_changes_it(
    rocks: RocksDBDir,
) -> None:
    table = final_table(TumblingWindows(size_ms=100))
    store = WriteBackStore(rocks.store())
    windows = PartitionWindows(table, store, 0)
    windows.on_event("old", {}, 10, 0)
    windows.on_event("kept", {}, 20, 1)
    commit(store, 1)
    rocks.reopen()
    # what a worker of the earlier format wrote for these windows: [version, states]
    for key in ("old", "kept"):
        raw = rocks.db[window_key(key, 0, 100)]
        version, states, *rest = orjson.loads(raw)
        assert rest == [], "no cause given, none saved"
        assert raw == orjson.dumps([version, states])
    restarted = PartitionWindows(table, WriteBackStore(rocks.store()), 0)
    assert restarted.store.get_window(0, "old", Window(0, 100)) is not None
    restarted.on_event("kept", {}, 30, 2, cause=cause(2))
    emitted = restarted.on_event("x", {}, 250, 3).emissions
    assert {e.key: (e.value, e.cause) for e in emitted} == {
        "old": ({"n": 1}, None),
        "kept": ({"n": 2}, cause(2)),
    }
