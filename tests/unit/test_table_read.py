"""A scan of a partition (:func:`windows.table_read.windows_after`) against a model built from
the stream-time rules (:func:`~windows.stream_time.is_closed`, :func:`~windows.stream_time.is_expired`):
every window the filter admits and retention keeps, in (key, start, end) order, whatever the
stream time, grace and retention, at their boundaries too."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from windows.aggregation_calls import parse_aggregation
from windows.keyed_state import WindowState
from windows.ordered_store import MemoryOrderedStore
from windows.spec import TumblingWindows
from windows.stream_time import is_closed, is_expired
from windows.table import WindowedAggregate
from windows.table_read import WindowFilter, windows_after
from windows.write_back import WriteBackStore

SIZE = 10


@settings(max_examples=200, deadline=None)
@given(
    starts=st.dictionaries(
        st.sampled_from(["a", "b", "c"]), st.sets(st.integers(0, 5), min_size=1, max_size=4), min_size=1
    ),
    clock=st.none() | st.tuples(st.sampled_from(["close", "expire"]), st.integers(1, 6), st.integers(-1, 1)),
    grace=st.integers(0, 20),
    retention=st.integers(0, 40),
    from_ms=st.none() | st.integers(0, 60),
    closed=st.none() | st.booleans(),
    committed=st.booleans(),
)
def test_a_scan_returns_the_windows_retention_keeps_and_the_filter_admits(
    starts: dict[str, set[int]],
    clock: tuple[str, int, int] | None,
    grace: int,
    retention: int,
    from_ms: int | None,
    closed: bool | None,
    committed: bool,
) -> None:
    # stream time at, just before or just after a window end's close or expiry
    stream_time = None
    if clock is not None:
        boundary, end, shift = clock
        stream_time = max(0, end * SIZE + grace + (retention if boundary == "expire" else 0) + shift)
        starts = {**starts, "b": starts.get("b", set()) | {end - 1}}  # a window ending there
    aggregate = WindowedAggregate(
        TumblingWindows(SIZE, grace_ms=grace, retention_ms=retention), (parse_aggregation("count()"),), ("n",)
    )
    store = WriteBackStore(MemoryOrderedStore())
    for key, key_starts in starts.items():
        for n in key_starts:
            store.put_window(0, key, WindowState(start=n * SIZE, end=(n + 1) * SIZE, states=[n], version=1))
    if stream_time is not None:
        store.set_stream_time(0, stream_time)
    if committed:  # read through the committed store rather than the cache
        store.flush()
    wanted = WindowFilter(from_ms=from_ms, closed=closed)
    want = []
    for key in sorted(starts):
        for n in sorted(starts[key]):
            start, end = n * SIZE, (n + 1) * SIZE
            shut = is_closed(end, grace, stream_time)
            if not is_expired(end, grace, retention, stream_time) and wanted.admits(start, end, shut):
                want.append((key, start, end, shut, {"n": n}))
    got = [
        (w["key"], w["start"], w["end"], w["closed"], w["value"])
        for w in windows_after(store, aggregate, 0, after=None, key_prefix="", wanted=wanted)
    ]
    assert got == want
