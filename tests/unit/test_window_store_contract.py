"""The window store contract, run against every committed store (in memory, and RocksDB as the
worker opens it), through the write-back cache the engine uses.

get, range, put, delete, the time index (expiry), stream time and inputs; what reaches the
committed store and when (only at a commit, only what changed, with the changelog offset);
recovery from the changelog (replaying the records a commit sent gives the same store); and
the costs the layout promises: loading a partition reads nothing, an event reads and writes
its own windows only.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import rocksdict
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.table_store import FAUST_OFFSET_KEY, RocksDBPartitions
from windows.aggregation_calls import parse_aggregation
from windows.keyed_state import WindowState
from windows.ordered_store import MemoryOrderedStore, OrderedStore, Write
from windows.partition import PartitionWindows
from windows.progress import PartitionClock
from windows.spec import SessionWindows, SlidingWindows, TumblingWindows, Window
from windows.store_layout import (
    NO_DUE,
    OVERDUE,
    Scheduled,
    index_key,
    key_range,
    parse_index_key,
    parse_window_key,
    window_key,
)
from windows.table import WindowedAggregate
from windows.write_back import WriteBackStore


class RocksDBDirs:
    """One rocksdict database per partition in a directory, as Faust opens them (raw mode)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dbs: dict[int, Any] = {}

    def db(self, partition: int) -> Any:
        if partition not in self.dbs:
            path = self.root / f"p{partition}.db"
            self.dbs[partition] = rocksdict.Rdict(str(path), options=rocksdict.Options(raw_mode=True))
        return self.dbs[partition]

    def open_db(self, partition: int) -> Any | None:
        return self.dbs.get(partition)

    def close(self) -> None:
        for db in self.dbs.values():
            db.close()


@pytest.fixture(params=["memory", "rocksdb"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], OrderedStore]]:
    """A factory of empty committed stores of the kind under test."""
    opened: list[RocksDBDirs] = []

    def make() -> OrderedStore:
        if request.param == "memory":
            return MemoryOrderedStore()
        dirs = RocksDBDirs(tmp_path / f"store{len(opened)}")
        opened.append(dirs)
        return RocksDBPartitions(db_for=dirs.db, open_db_for=dirs.open_db)

    yield make
    for dirs in opened:
        dirs.close()


def w(start: int, end: int, n: int = 1, version: int = 0) -> WindowState:
    return WindowState(start=start, end=end, states=[n], version=version)


def as_tuples(states: Sequence[WindowState]) -> list[tuple[int, int, list[Any], int]]:
    return [(s.start, s.end, s.states, s.version) for s in states]


def commit(cache: WriteBackStore, offsets: dict[int, int] | None = None) -> dict[int, list[Write]]:
    changes = cache.changes()
    cache.committed(changes, offsets)
    return changes


# -- get, range, put, delete -------------------------------------------------------------------


def test_put_get_delete_and_range_in_time_order(make_store: Callable[[], OrderedStore]) -> None:
    inner = make_store()
    cache = WriteBackStore(inner)
    for start in (20, 0, 10):
        cache.put_window(0, "k", w(start, start + 10, n=start))
    cache.put_window(0, "k\x00", w(5, 15))  # a key that extends another's bytes
    cache.put_window(0, "", w(1, 2))
    cache.put_window(1, "k", w(0, 10, n=99))
    assert as_tuples(cache.key_windows(0, "k")) == [(0, 10, [0], 0), (10, 20, [10], 0), (20, 30, [20], 0)]
    commit(cache)
    fresh = WriteBackStore(inner)  # reads the committed store only
    assert as_tuples(fresh.key_windows(0, "k")) == [(0, 10, [0], 0), (10, 20, [10], 0), (20, 30, [20], 0)]
    assert as_tuples(fresh.key_windows(0, "k\x00")) == [(5, 15, [1], 0)]
    assert as_tuples(fresh.key_windows(0, "")) == [(1, 2, [1], 0)]
    assert as_tuples(fresh.key_windows(1, "k")) == [(0, 10, [99], 0)]
    assert fresh.get_window(0, "k", Window(10, 20)) == w(10, 20, n=10)
    assert fresh.get_window(0, "k", Window(10, 21)) is None
    assert fresh.get_window(2, "k", Window(10, 20)) is None
    fresh.delete_window(0, "k", Window(10, 20))
    assert fresh.get_window(0, "k", Window(10, 20)) is None, "reads see the cached delete"
    assert [s.start for s in fresh.key_windows(0, "k")] == [0, 20]
    commit(fresh)
    again = WriteBackStore(inner)
    assert [s.start for s in again.key_windows(0, "k")] == [0, 20]
    assert sorted(key for key, _ in again.items(0)) == ["", "k", "k\x00"]


def test_negative_and_large_times_keep_their_order(make_store: Callable[[], OrderedStore]) -> None:
    inner = make_store()
    cache = WriteBackStore(inner)
    starts = [-(2**62), -10, -1, 0, 1, 2**40, 2**62]
    for start in reversed(starts):
        cache.put_window(0, "k", w(start, start + 1))
    commit(cache)
    assert [s.start for s in WriteBackStore(inner).key_windows(0, "k")] == starts


# -- nothing reaches the committed store before the commit; only what changed at it -------------


def test_the_committed_store_changes_only_at_a_commit_and_only_by_what_changed(
    make_store: Callable[[], OrderedStore],
) -> None:
    inner = make_store()
    cache = WriteBackStore(inner)
    for start in range(0, 1000, 10):
        cache.put_window(0, "k", w(start, start + 10))
    cache.set_stream_time(0, 5)
    assert inner.read(0, window_key("k", 0, 10)) is None
    assert len(commit(cache, {0: 41})[0]) == 101  # 100 windows and the stream time
    assert inner.changelog_offset(0) == 41
    state = cache.get_window(0, "k", Window(500, 510))
    assert state is not None
    state.states = [7]
    cache.put_window(0, "k", state)
    changes = commit(cache, {0: 42})
    assert changes == {0: [(window_key("k", 500, 510), b"[0,[7]]")]}, "one window changed: one write"
    assert inner.changelog_offset(0) == 42
    assert commit(cache) == {}, "nothing changed: nothing written"


def test_forgotten_changes_never_reach_the_store(make_store: Callable[[], OrderedStore]) -> None:
    inner = make_store()
    cache = WriteBackStore(inner)
    cache.put_window(0, "k", w(0, 10))
    cache.set_stream_time(0, 3)
    commit(cache, {0: 7})
    cache.put_window(0, "k", w(0, 10, n=2))
    cache.put_window(0, "j", w(0, 10))
    cache.set_stream_time(0, 9)
    cache.forget(0)  # the transaction aborted
    assert cache.get_window(0, "k", Window(0, 10)) == w(0, 10)
    assert cache.key_windows(0, "j") == []
    assert cache.get_stream_time(0) == 3
    assert inner.changelog_offset(0) == 7


# -- the time index: what stream time closes and expires ---------------------------------------


def test_index_between_reads_what_is_due_in_order(make_store: Callable[[], OrderedStore]) -> None:
    inner = make_store()
    cache = WriteBackStore(inner)
    entries = [Scheduled(due, key, due - 10, due) for due in (30, 10, 20) for key in ("b", "a", "a\x00")]
    for entry in entries[:6]:
        cache.index_add(0, entry)
    commit(cache)
    for entry in entries[6:]:
        cache.index_add(0, entry)  # in the cache, not committed
    cache.index_remove(0, Scheduled(10, "a", 0, 10))  # committed, then removed
    live = sorted(set(entries) - {Scheduled(10, "a", 0, 10)})
    assert cache.index_between(0, None, 9, "close") == []
    assert cache.index_between(0, 9, 20, "close") == [e for e in live if e.due <= 20]
    assert cache.index_between(0, 20, 25, "close") == []
    assert cache.next_due(0, "close") == 30
    assert cache.index_between(0, 25, 30, "close") == [e for e in live if e.due == 30]
    assert cache.next_due(0, "close") == NO_DUE
    cache.index_add(0, Scheduled(40, "z", 30, 40))
    assert cache.next_due(0, "close") == 40, "an added entry counts"
    cache.index_remove(0, Scheduled(40, "z", 30, 40))
    assert cache.index_between(0, None, 30, "other") == live, "reads do not remove"
    assert cache.index_between(0, 10, 20, "other") == [e for e in live if e.due == 20]
    commit(cache)
    fresh = WriteBackStore(inner)
    assert fresh.index(0) == live
    for entry in live:
        fresh.index_remove(0, entry)
    assert fresh.index_between(0, None, 100, "close") == []
    commit(fresh)
    assert WriteBackStore(inner).index(0) == []


def test_an_entry_removed_and_added_again_is_there(make_store: Callable[[], OrderedStore]) -> None:
    inner = make_store()
    cache = WriteBackStore(inner)
    entry = Scheduled(10, "k", 0, 10)
    cache.index_add(0, entry)
    commit(cache)
    assert cache.index_between(0, None, 10, "close") == [entry]
    cache.index_remove(0, entry)
    assert cache.index_between(0, None, 10, "close") == []
    cache.index_add(0, entry)
    assert cache.index_between(0, None, 10, "close") == [entry]
    commit(cache)
    assert WriteBackStore(inner).index(0) == [entry]


def test_overdue_entries_are_taken_once_across_commits(make_store: Callable[[], OrderedStore]) -> None:
    inner = make_store()
    cache = WriteBackStore(inner)
    late, later = Scheduled(5, "k", 0, 5), Scheduled(7, "j", 2, 7)
    cache.overdue_add(0, later)
    commit(cache)
    assert inner.read(0, index_key(later, OVERDUE)) == b""
    cache.overdue_add(0, late)
    assert cache.take_overdue(0) == [late, later]
    assert cache.take_overdue(0) == []
    commit(cache)
    assert WriteBackStore(inner).take_overdue(0) == []
    assert inner.read(0, index_key(later, OVERDUE)) is None


@settings(max_examples=60, deadline=None)
@given(
    ops=st.lists(
        st.tuples(
            st.sampled_from(["add", "remove", "between", "commit"]),
            st.integers(0, 20),
            st.integers(0, 20),
            st.sampled_from(["a", "b", "a\x00", ""]),
        ),
        max_size=60,
    )
)
def test_the_index_behaves_as_a_sorted_set(ops: list[tuple[str, int, int, str]]) -> None:
    """Against a reference (a Python set), whatever the commits in between, with reads that
    continue from the last one (as the engine reads) and reads that do not."""
    inner = MemoryOrderedStore()
    cache = WriteBackStore(inner)
    reference: set[Scheduled] = set()
    last_up_to: int | None = None
    for op, due, other, key in ops:
        entry = Scheduled(due, key, due - 5, due)
        if op == "add":
            cache.index_add(0, entry)
            reference.add(entry)
        elif op == "remove":
            cache.index_remove(0, entry)
            reference.discard(entry)
        elif op == "between":
            for view, after, up_to in (("close", last_up_to, max(due, last_up_to or 0)), ("any", other, due)):
                want = sorted(e for e in reference if (after is None or e.due > after) and e.due <= up_to)
                assert cache.index_between(0, after, up_to, view) == want
            last_up_to = max(due, last_up_to or 0)
        else:
            commit(cache)
        assert cache.index(0) == sorted(reference)
    commit(cache)
    assert WriteBackStore(inner).index(0) == sorted(reference)


# -- stream time and inputs --------------------------------------------------------------------


def test_stream_time_and_inputs_per_partition(make_store: Callable[[], OrderedStore]) -> None:
    inner = make_store()
    cache = WriteBackStore(inner)
    assert cache.get_stream_time(0) is None and cache.get_inputs(0) is None
    clock = PartitionClock.from_json(None, 2, None)
    clock.on_event(0, 100)
    cache.set_stream_time(0, 100)
    cache.set_inputs(0, clock)
    cache.set_stream_time(3, -5)
    clock.on_event(1, 50)  # saved as it is at the commit
    commit(cache)
    fresh = WriteBackStore(inner)
    assert fresh.get_stream_time(0) == 100 and fresh.get_stream_time(3) == -5
    assert fresh.get_inputs(0) == clock.to_json()
    assert fresh.get_inputs(3) is None


# -- recovery from the changelog ----------------------------------------------------------------


def scan_all(store: OrderedStore, partition: int) -> list[tuple[bytes, bytes]]:
    return list(store.scan(partition, b"", b"\xff"))


def test_replaying_the_changelog_rebuilds_the_store(make_store: Callable[[], OrderedStore]) -> None:
    """The records each commit sends to the changelog, applied in order to an empty store (as
    Faust's recovery does), give the committed store; replaying from the offset it names
    (re-reading that record too, as Faust does) changes nothing."""
    table = count_table(SessionWindows(gap_ms=10, grace_ms=5, retention_ms=20), emit="final")
    inner = make_store()
    cache = WriteBackStore(inner)
    pw = PartitionWindows(table, cache, 0)
    changelog: list[Write] = []
    for arrival, (key, t) in enumerate(itertools.product("abc", range(0, 200, 7))):
        pw.on_event(key, {}, t + ord(key), arrival)
        if arrival % 5 == 0:
            changes = cache.changes()
            records = changes.get(0, [])
            changelog.extend(records)
            cache.committed(changes, {0: len(changelog) - 1} if records else None)
    changes = cache.changes()
    changelog.extend(changes.get(0, []))
    cache.committed(changes, {0: len(changelog) - 1})
    restored = make_store()
    restored.apply(0, changelog, len(changelog) - 1)
    assert scan_all(restored, 0) == scan_all(inner, 0)
    offset = inner.changelog_offset(0)
    assert offset == len(changelog) - 1
    inner.apply(0, changelog[offset:], offset)
    assert scan_all(restored, 0) == scan_all(inner, 0)
    assert restored.changelog_offset(0) == offset


def test_the_offset_is_stored_where_faust_recovery_reads_it(tmp_path: Path) -> None:
    dirs = RocksDBDirs(tmp_path)
    store = RocksDBPartitions(db_for=dirs.db, open_db_for=dirs.open_db)
    store.apply(2, [(b"Wx", b"1")], 1234)
    assert dirs.db(2).get(FAUST_OFFSET_KEY) == b"1234"  # faust's Store.persisted_offset format
    assert [key for key, _ in store.scan(2, b"W", b"X")] == [b"Wx"]
    assert store.read(5, b"Wx") is None, "a partition not held is not opened by a read"
    assert 5 not in dirs.dbs
    dirs.close()


# -- what the engine reads and writes ----------------------------------------------------------


def count_table(window: Any, emit: str = "change") -> WindowedAggregate:
    return WindowedAggregate(
        window=window, aggregations=(parse_aggregation("count()"),), names=("n",), emit=emit
    )


class CountingStore(MemoryOrderedStore):
    def __init__(self) -> None:
        super().__init__()
        self.reads: list[bytes] = []
        self.scans: list[tuple[bytes, bytes]] = []
        self.rows: list[bytes] = []  # every key a scan yielded

    def read(self, partition: int, key: bytes) -> bytes | None:
        self.reads.append(key)
        return super().read(partition, key)

    def scan(self, partition: int, low: bytes, high: bytes) -> Iterator[tuple[bytes, bytes]]:
        self.scans.append((low, high))
        for key, value in super().scan(partition, low, high):
            self.rows.append(key)
            yield key, value


def test_loading_a_partition_and_an_event_read_only_what_they_need() -> None:
    """A partition with 1,000 keys of 50 retained windows each: loading it reads its stream time
    (no window, no index); an event reads its own window, and the index entries of the windows
    the stream time it reaches closes; its commit writes the windows it changed, the new one's
    index entry and the stream time."""
    table = count_table(TumblingWindows(size_ms=10, grace_ms=0, retention_ms=10**9))
    inner = CountingStore()
    cache = WriteBackStore(inner)
    pw = PartitionWindows(table, cache, 0)
    for t in range(0, 500, 10):
        for key in range(1000):
            pw.on_event(str(key), {}, t, t * 1000 + key)
    commit(cache)
    inner.reads.clear()
    inner.scans.clear()
    cache = WriteBackStore(inner)
    pw = PartitionWindows(table, cache, 0)
    assert inner.scans == [] and len(inner.reads) == 1, "only the stream time is read at load"
    pw.on_event("7", {}, 490, 10**9)  # at the stream time
    assert window_key("7", 490, 500) in inner.reads and len(inner.reads) == 2
    assert len(inner.scans) == 0, "stream time did not move: no index read"
    pw.on_event("8", {}, 505, 10**9 + 1)  # moves stream time: closes the windows ending at 500
    assert not [s for s in inner.scans if s[0].startswith(b"W")], "no window is scanned"
    # of the 50,000 index entries: the 1,000 due to close (the last of the committed index),
    # and for deletions the first entry, which is not due
    assert len([key for key in inner.rows if key.startswith(b"T")]) == 1000 + 1
    changes = cache.changes()[0]
    changed_windows = [parse_window_key(k) for k, _ in changes if k.startswith(b"W")]
    assert changed_windows == [("7", 490, 500), ("8", 500, 510)], "closing changed no window (emit change)"
    assert [parse_index_key(k) for k, _ in changes if k.startswith(b"T")] == [Scheduled(510, "8", 500, 510)]


def test_a_session_event_reads_its_key_only() -> None:
    table = count_table(SessionWindows(gap_ms=10, grace_ms=0, retention_ms=10**9))
    inner = CountingStore()
    cache = WriteBackStore(inner)
    pw = PartitionWindows(table, cache, 0)
    for key in ("a", "b", "c"):
        pw.on_event(key, {}, 0, 0)
    commit(cache)
    inner.scans.clear()
    pw = PartitionWindows(table, WriteBackStore(inner), 0)
    pw.on_event("b", {}, 5, 1)
    assert [s for s in inner.scans if s[0].startswith(b"W")] == [key_range("b")]


def test_sliding_windows_read_each_window_they_fall_in() -> None:
    table = count_table(SlidingWindows(size_ms=30, slide_ms=10, grace_ms=0, retention_ms=10**9))
    inner = CountingStore()
    pw = PartitionWindows(table, WriteBackStore(inner), 0)
    pw.on_event("k", {}, 25, 0)
    assert [parse_window_key(k) for k in inner.reads if k.startswith(b"W")] == [
        ("k", 0, 30),
        ("k", 10, 40),
        ("k", 20, 50),
    ]


def test_index_keys_sort_as_their_entries() -> None:
    entries = [
        Scheduled(due, key, start, start + 1)
        for due in (-5, 0, 7)
        for key in ("", "a", "a\x00", "a\x00b", "ab", "é", "\x00")
        for start in (-3, 4)
    ]
    assert sorted(entries, key=index_key) == sorted(entries)
    assert [parse_index_key(index_key(e)) for e in entries] == entries


# -- sessions ordered by end -------------------------------------------------------------------


def test_sessions_by_end_read_only_those_ending_after_the_event(
    make_store: Callable[[], OrderedStore],
) -> None:
    inner = make_store()
    cache = WriteBackStore(inner, by_end=True)
    for start, end in ((0, 10), (20, 25), (30, 60), (40, 45)):
        cache.put_window(0, "k", w(start, end))
    commit(cache)
    fresh = WriteBackStore(inner, by_end=True)
    assert [(s.start, s.end) for s in fresh.key_windows(0, "k")] == [(0, 10), (20, 25), (30, 60), (40, 45)]
    assert [(s.start, s.end) for s in fresh.key_windows(0, "k", 25)] == [(30, 60), (40, 45)]
    assert fresh.get_window(0, "k", Window(40, 45)) == w(40, 45)
    assert [key for key, _ in fresh.items(0)] == ["k"]


@settings(max_examples=80, deadline=None)
@given(
    events=st.lists(
        st.tuples(st.sampled_from("abc"), st.integers(0, 300)),
        max_size=60,
    ),
    commits=st.sets(st.integers(0, 59)),
)
def test_session_tables_give_the_same_results_in_either_order(
    events: list[tuple[str, int]], commits: set[int]
) -> None:
    """Metamorphic: the engine on a store ordering sessions by end, and on one ordering them by
    start, emits the same records and keeps the same windows, with commits anywhere."""
    table = count_table(SessionWindows(gap_ms=20, grace_ms=15, retention_ms=40), emit="final")
    outputs, views = [], []
    for by_end in (False, True):
        cache = WriteBackStore(MemoryOrderedStore(), by_end=by_end)
        pw = PartitionWindows(table, cache, 0)
        emitted = []
        for i, (key, t) in enumerate(events):
            emitted.append(pw.on_event(key, {}, t, i))
            if i in commits:
                commit(cache)
        commit(cache)
        outputs.append(emitted)
        views.append([(k, kw.to_json()) for k, kw in cache.items(0)])
    assert outputs[0] == outputs[1]
    assert views[0] == views[1]


def test_a_session_event_reads_the_sessions_ending_after_it_only() -> None:
    table = count_table(SessionWindows(gap_ms=10, grace_ms=1000, retention_ms=10**9))
    inner = CountingStore()
    cache = WriteBackStore(inner, by_end=True)
    pw = PartitionWindows(table, cache, 0)
    for t in range(0, 1000, 100):  # ten sessions of "k", far apart
        pw.on_event("k", {}, t, t)
    commit(cache)
    inner.rows.clear()
    pw = PartitionWindows(table, WriteBackStore(inner, by_end=True), 0)
    pw.on_event("k", {}, 905, 1000)  # merges with [900, 910) only
    assert [parse_window_key(k, by_end=True) for k in inner.rows if k.startswith(b"W")] == [("k", 900, 910)]


# -- scans over a partition's keys -------------------------------------------------------------

SCAN_KEYS = ["", "a", "a\x00", "ab", "b", "é", "a\x00b"]


@pytest.mark.parametrize("kind", ["memory", "rocksdb"])
@pytest.mark.parametrize("by_end", [False, True], ids=["by_start", "by_end"])
@settings(max_examples=40, deadline=None)
@given(
    ops=st.lists(
        st.tuples(
            st.sampled_from(["put", "put", "delete", "commit", "scan"]),
            st.sampled_from(SCAN_KEYS),
            st.integers(-3, 5),
            st.integers(1, 3),
            st.sampled_from(["", "a", "a\x00", "b", "z"]),
        ),
        max_size=50,
    )
)
def test_a_scan_is_the_sorted_model_after_the_cursor(
    kind: str, by_end: bool, ops: list[tuple[str, str, int, int, str]], tmp_path_factory: Any
) -> None:
    """``scan_windows`` against a model dict, whatever the commits in between: every window of
    the keys with the prefix, strictly after the cursor, in (key, start, end) order; paging
    through it two at a time (the cursor is the last window returned) gives the same list; a
    fresh cache over the committed store scans what was committed."""
    dirs = RocksDBDirs(tmp_path_factory.mktemp("scan")) if kind == "rocksdb" else None
    inner: OrderedStore = (
        MemoryOrderedStore() if dirs is None else RocksDBPartitions(db_for=dirs.db, open_db_for=dirs.open_db)
    )
    try:
        cache = WriteBackStore(inner, by_end=by_end)
        model: dict[tuple[str, int, int], int] = {}
        committed: dict[tuple[str, int, int], int] = {}
        for n, (op, key, start, length, prefix) in enumerate(ops):
            span = (key, start, start + length)
            if op == "put":
                cache.put_window(0, key, w(start, start + length, n))
                model[span] = n
            elif op == "delete":
                cache.delete_window(0, key, Window(start, start + length))
                model.pop(span, None)
            elif op == "commit":
                commit(cache)
                committed = dict(model)
            else:
                after = None if start < 0 else span
                want = [
                    (k, s, e, model[(k, s, e)])
                    for k, s, e in sorted(model)
                    if k.startswith(prefix) and (after is None or (k, s, e) > after)
                ]
                got = [(k, st.start, st.end, st.states[0]) for k, st in cache.scan_windows(0, after, prefix)]
                assert got == want
                paged: list[tuple[str, int, int, int]] = []
                cursor = after
                while True:
                    page = list(itertools.islice(cache.scan_windows(0, cursor, prefix), 2))
                    paged += [(k, st.start, st.end, st.states[0]) for k, st in page]
                    if len(page) < 2:
                        break
                    cursor = (page[-1][0], page[-1][1].start, page[-1][1].end)
                assert paged == want
            fresh = WriteBackStore(inner, by_end=by_end)
            assert [(k, st.start, st.end, st.states[0]) for k, st in fresh.scan_windows(0)] == [
                (*span, value) for span, value in sorted(committed.items())
            ]
    finally:
        if dirs is not None:
            dirs.close()


def test_processed_offsets_are_saved_with_the_partition(make_store: Callable[[], OrderedStore]) -> None:
    """Absent (a store written before offsets existed) reads as nothing processed; saved
    offsets reach the committed store at the commit, per partition."""
    inner = make_store()
    cache = WriteBackStore(inner)
    assert cache.get_offsets(0) == {}
    cache.set_offsets(0, {"t:0": 5, "t:1": 7})
    assert cache.get_offsets(0) == {"t:0": 5, "t:1": 7}
    assert WriteBackStore(inner).get_offsets(0) == {}, "not before the commit"
    commit(cache)
    assert WriteBackStore(inner).get_offsets(0) == {"t:0": 5, "t:1": 7}
    assert WriteBackStore(inner).get_offsets(1) == {}
