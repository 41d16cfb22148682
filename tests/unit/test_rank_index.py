"""The ranked windows a top-N query reads (windows/rank_index.py) against the whole-partition
read (windows/table_read.py ``top_keys``) as the reference: any history of writes, commits and
changes in progress, the ranks built at any point of it (in slices, with commits between), any
query, the same answer."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from windows.aggregation_calls import parse_aggregation
from windows.keyed_state import WindowState
from windows.ordered_store import MemoryOrderedStore
from windows.rank_index import MAX_MERGED_STARTS, PartitionRanks, RankedStore, TableRanks
from windows.spec import SessionWindows, SlidingWindows, TumblingWindows, Window
from windows.table import WindowedAggregate
from windows.table_read import PartitionView, WindowFilter, top_keys
from windows.write_back import WriteBackStore

NAMES = ("n", "total", "largest")
AGGREGATIONS = tuple(parse_aggregation(text) for text in ("count()", "sum(amount)", "max(amount)"))
SPECS = {
    "tumbling": TumblingWindows(10, grace_ms=5, retention_ms=40),
    "sliding": SlidingWindows(20, 10, grace_ms=5, retention_ms=40),
    "session": SessionWindows(5, grace_ms=5, retention_ms=40),
}
KEYS = ("a", "b", "bb", "c", "d\x00", "é")

#: one change: (key, window number, count, sum, max or None); or a deletion: (key, window number)
change = st.one_of(
    st.tuples(
        st.sampled_from(KEYS),
        st.integers(0, 6),
        st.integers(0, 3),  # few values: ties, broken by key then start, are the hard part
        st.one_of(st.integers(-3, 3), st.sampled_from([-1.5, 0.0, 2.5])),
        st.one_of(st.none(), st.integers(-2, 2)),
    ),
    st.tuples(st.sampled_from(KEYS), st.integers(0, 6)),
)
#: changes, a commit, a slice of the ranks' build reading that many windows, or a top-N reading
#: the ranks (which takes the writes queued for them)
step = st.one_of(
    st.lists(change, min_size=1, max_size=8),
    st.just("commit"),
    st.integers(1, 4),
    st.just("read"),
    st.just("catch up"),  # what a worker does after a commit, in the background
)
query = st.fixed_dictionaries(
    {
        "by": st.sampled_from(NAMES),
        "n": st.integers(1, 8),
        "descending": st.booleans(),
        "from_ms": st.one_of(st.none(), st.integers(-10, 80)),
        "to_ms": st.one_of(st.none(), st.integers(-10, 80)),
        "closed": st.one_of(st.none(), st.booleans()),
    }
)


def window_of(kind: str, number: int) -> Window:
    if kind == "session":
        return Window(number * 10, number * 10 + 3 + number % 3)
    return Window(number * 10, number * 10 + (10 if kind == "tumbling" else 20))


def apply_change(store: WriteBackStore, kind: str, item: tuple[Any, ...]) -> None:
    window = window_of(kind, item[1])
    if len(item) == 2:
        store.delete_window(0, item[0], window)
        return
    key, _, count, total, largest = item
    store.put_window(0, key, WindowState(window.start, window.end, [count, total, largest], version=1))


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(sorted(SPECS)),
    steps=st.lists(step, min_size=1, max_size=10),
    stream_time=st.one_of(st.none(), st.integers(0, 120)),
    queries=st.lists(query, min_size=1, max_size=4),
    min_queued=st.sampled_from([1, 4, 10_000]),  # ranks released at a commit, or kept
)
def test_ranked_top_equals_reading_the_whole_partition(
    kind: str, steps: list[Any], stream_time: int | None, queries: list[dict[str, Any]], min_queued: int
) -> None:
    spec = SPECS[kind]
    aggregate = WindowedAggregate(spec, AGGREGATIONS, NAMES)
    by_end = kind == "session"
    size_ms = None if kind == "session" else spec.size_ms  # type: ignore[attr-defined]
    ranks = TableRanks(aggregate, by_end, size_ms, min_queued=min_queued)
    committed = RankedStore(MemoryOrderedStore(), ranks)
    store = WriteBackStore(committed, by_end=by_end)
    for item in steps:
        if item == "commit":
            store.flush()
        elif item == "read":
            ranks.held(0)
        elif item == "catch up":
            for partition in ranks.read_since_last_asked():
                ranks.caught_up(partition)
        elif isinstance(item, int):
            ranks.build_step(0, committed, item)
        else:
            for one in item:
                apply_change(store, kind, one)
    if stream_time is not None:
        store.set_stream_time(0, stream_time)
    built = ranks.build(0, committed)
    ranked = PartitionView(store, aggregate, 0, lambda: built)
    for later in ([], [("a", 0, 3, 1.5, None), ("bb", 1)]):  # the changes merged are read again
        for one in later:
            apply_change(store, kind, one)
        for q in queries:
            wanted = WindowFilter(q["from_ms"], q["to_ms"], q["closed"])
            expected = top_keys(
                store, aggregate, 0, by=q["by"], n=q["n"], descending=q["descending"], wanted=wanted
            )
            assert ranked.top(q["by"], q["n"], q["descending"], wanted) == expected, q


def test_a_time_range_reads_only_the_lists_of_the_starts_it_overlaps() -> None:
    """A query for one recent window of a table with many windows per key does not walk the
    better values of the other windows (the count the walk reads is the contract)."""
    aggregate = WindowedAggregate(SPECS["tumbling"], AGGREGATIONS, NAMES)
    ranks = PartitionRanks(aggregate, by_end=False, size_ms=10)
    store = MemoryOrderedStore()
    writer = WriteBackStore(store)
    for number in range(50):
        for key in KEYS:
            start = number * 10
            writer.put_window(0, key, WindowState(start, start + 10, [1000 - number, 0, None], version=1))
    writer.flush()
    ranks.apply(store.scan(0, b"", b"\xff"))
    last = list(ranks.entries("n", True, 490, 500))
    assert [entry[2] for entry in last] == [490] * len(KEYS)
    many = ranks.entries("n", True, 0, 500)  # 50 starts: merged
    assert len(list(many)) == 50 * len(KEYS)
    assert MAX_MERGED_STARTS < 50 * 10  # a wider range falls back to the partition's list
    assert len(list(ranks.entries("n", True, None, None))) == 50 * len(KEYS)


def test_ranks_follow_the_writes_applied_after_they_were_built() -> None:
    aggregate = WindowedAggregate(SPECS["tumbling"], AGGREGATIONS, NAMES)
    ranks = TableRanks(aggregate, by_end=False, size_ms=10)
    committed = RankedStore(MemoryOrderedStore(), ranks)
    store = WriteBackStore(committed)
    store.put_window(0, "a", WindowState(0, 10, [1, 5, 5], version=1))
    store.flush()
    held = ranks.build(0, committed)
    store.put_window(0, "b", WindowState(0, 10, [3, 1, 1], version=1))
    store.delete_window(0, "a", Window(0, 10))
    store.flush()
    # the commit only queued its writes: the lists take them when a top-N reads them
    assert list(held.entries("n", True, None, None)) == [(1, "a", 0, 10)]
    assert ranks.held(0) is held
    assert list(held.entries("n", True, None, None)) == [(3, "b", 0, 10)]
    ranks.forget(0)
    assert ranks.held(0) is None


def test_after_a_commit_the_ranks_read_since_the_one_before_are_brought_up_to_date() -> None:
    aggregate = WindowedAggregate(SPECS["tumbling"], AGGREGATIONS, NAMES)
    ranks = TableRanks(aggregate, by_end=False, size_ms=10)
    committed = RankedStore(MemoryOrderedStore(), ranks)
    store = WriteBackStore(committed)
    for partition in (0, 1):
        store.put_window(partition, "a", WindowState(0, 10, [1, 5, 5], version=1))
    store.flush()
    read, unread = ranks.build(0, committed), ranks.build(1, committed)
    assert ranks.read_since_last_asked() == []  # built, but no top-N read them yet
    assert ranks.held(0) is read
    for partition in (0, 1):
        store.put_window(partition, "a", WindowState(0, 10, [7, 5, 5], version=1))
    store.flush()
    assert ranks.read_since_last_asked() == [0]  # read before this commit, writes queued
    assert ranks.caught_up(0) is read
    assert list(read.entries("n", True, None, None)) == [(7, "a", 0, 10)]
    assert list(unread.entries("n", True, None, None)) == [(1, "a", 0, 10)]  # still queued
    assert ranks.read_since_last_asked() == []  # catching up is not reading
    assert ranks.caught_up(1) is unread
    assert list(unread.entries("n", True, None, None)) == [(7, "a", 0, 10)]


def test_ranks_nobody_reads_are_released_once_the_writes_waiting_outgrow_them() -> None:
    aggregate = WindowedAggregate(SPECS["tumbling"], AGGREGATIONS, NAMES)
    ranks = TableRanks(aggregate, by_end=False, size_ms=10, min_queued=3)
    committed = RankedStore(MemoryOrderedStore(), ranks)
    store = WriteBackStore(committed)

    def commit_three(count: int) -> None:  # three window writes
        for number, key in enumerate(KEYS[:3]):
            store.put_window(0, key, WindowState(number * 10, number * 10 + 10, [count, 1, 1], version=1))
        store.flush()

    for number, key in enumerate(KEYS):
        store.put_window(0, key, WindowState(number * 10, number * 10 + 10, [1, 1, 1], version=1))
    store.flush()
    ranks.build(0, committed)  # 6 windows: up to max(3, 6 // 2) writes may wait
    commit_three(2)
    assert ranks.held(0) is not None  # a top-N read them: nothing waits
    commit_three(3)
    assert ranks.released == 0 and ranks.windows() == 6
    commit_three(4)  # 6 waiting, unread
    assert ranks.released == 1 and ranks.held(0) is None and ranks.windows() == 0
    rebuilt = ranks.build(0, committed)
    assert [e[:2] for e in rebuilt.entries("n", True, None, None)] == [
        (4, "a"),
        (4, "b"),
        (4, "bb"),
        (1, "c"),
        (1, "d\x00"),
        (1, "é"),
    ]


def test_ranks_that_cannot_take_a_write_are_forgotten_and_the_commit_goes_on() -> None:
    aggregate = WindowedAggregate(SPECS["tumbling"], AGGREGATIONS, NAMES)
    ranks = TableRanks(aggregate, by_end=False, size_ms=10)
    committed = RankedStore(MemoryOrderedStore(), ranks)
    store = WriteBackStore(committed)
    ranks.build(0, committed)
    store.put_window(0, "a", WindowState(0, 10, [1, 5, 5], version=1))
    changes = store.changes()
    changes[0] = [(key, b"not json" if key.startswith(b"W") else value) for key, value in changes[0]]
    store.committed(changes)  # the store took the writes; the ranks could not decode one
    assert ranks.held(0) is None and ranks.dropped == 1
    assert list(committed.inner.scan(0, b"W", b"X"))  # written all the same
