"""The write-back cache between the window engine and the committed store.

:class:`WriteBackStore` implements :class:`~windows.store.WindowStore` on an
:class:`~windows.ordered_store.OrderedStore` holding committed state only. Between two commits it
keeps in memory the windows read or changed, the index entries added and removed, and the
stream time and inputs; reads see these changes. At a commit:

1. :meth:`~WriteBackStore.changes` encodes, per partition, one write per *changed* window (in
   the order the windows first changed), index entry, stream time and inputs: these are the
   changelog records the owner sends in the commit's transaction. An untouched window costs
   nothing;
2. once the transaction has committed, :meth:`~WriteBackStore.committed` applies the same
   writes to the committed store, one atomic batch per partition with the changelog offset of
   its last record, and empties the cache.

:meth:`~WriteBackStore.flush` does both at once (for stores that need no transaction). A
partition the owner loses, or a transaction that aborts, is dropped with
:meth:`~WriteBackStore.forget`: its changes belong to a transaction that never commits.

Memory is bounded by what one commit interval reads and changes: :attr:`approx_bytes`
estimates it (:data:`KEY_BYTES` per cached window or index entry plus ``window_bytes`` per
cached window, an estimate of the Python objects), so the owner can commit early when it passes
a limit.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections.abc import Container, Iterator, Mapping, Sequence
from typing import Any

from windows.keyed_state import KeyWindows, WindowState
from windows.ordered_store import OrderedStore, Write
from windows.progress import PartitionClock
from windows.spec import Window
from windows.store_layout import (
    INDEX,
    INPUTS_KEY,
    NO_DUE,
    OFFSETS_KEY,
    OPEN_WINDOWS_KEY,
    OVERDUE,
    STREAM_TIME_KEY,
    Scheduled,
    data_range,
    decode_meta,
    decode_window,
    encode_meta,
    encode_window,
    index_key,
    index_start,
    key_after,
    key_range,
    parse_index_key,
    parse_window_key,
    parsed_windows,
    prefix_range,
    window_key,
)

INDEX_END = INDEX + b"\xff"
OVERDUE_END = OVERDUE + b"\xff"
#: estimated bytes of one cached window or index entry beyond its aggregation states
KEY_BYTES = 250


def window_bytes_for(aggregations: int) -> int:
    """Estimated bytes of one window's Python objects with ``aggregations`` aggregation states
    (measured with tracemalloc: about 650 bytes for five)."""
    return 200 + 90 * aggregations


class _EntryChanges:
    """Entries added to and removed from one index space since the last commit."""

    __slots__ = ("added", "fresh", "listed", "removed", "sorted")

    def __init__(self) -> None:
        self.added: set[Scheduled] = set()
        self.fresh: set[Scheduled] = set()  # added and not in the committed index
        self.removed: set[Scheduled] = set()
        self.sorted: list[Scheduled] = []  # every entry ever added, in order (filter by added)
        self.listed: set[Scheduled] = set()

    def add(self, entry: Scheduled) -> bool:
        """Returns whether the entry was not there."""
        if entry in self.added:
            return False
        if entry in self.removed:  # removed, then added again: as committed
            self.removed.discard(entry)
        else:
            self.fresh.add(entry)
        self.added.add(entry)
        if entry not in self.listed:
            self.listed.add(entry)
            bisect.insort(self.sorted, entry)
        return True

    def remove(self, entry: Scheduled) -> bool:
        """Returns whether the store needs a delete for it."""
        if entry in self.added:
            self.added.discard(entry)
            if entry in self.fresh:
                self.fresh.discard(entry)  # never committed: nothing to delete
                return False
        self.removed.add(entry)
        return True

    def between(self, after: int | None, up_to: int) -> list[Scheduled]:
        """The added entries with ``after < due <= up_to``, in order."""
        listed = self.sorted
        low = 0 if after is None else bisect.bisect_left(listed, (after + 1,))
        if low == len(listed) or listed[low].due > up_to:
            return []
        high = bisect.bisect_left(listed, (up_to + 1,), low)
        return [entry for entry in listed[low:high] if entry in self.added]

    def first_after(self, up_to: int) -> int:
        """The due time of the first added entry with ``due > up_to`` (:data:`NO_DUE`: none)."""
        listed = self.sorted
        at = bisect.bisect_left(listed, (up_to + 1,))
        for entry in listed[at:]:
            if entry in self.added:
                return entry.due
        return NO_DUE

    def writes(self, space: bytes) -> list[Write]:
        return [(index_key(e, space), None) for e in sorted(self.removed)] + [
            (index_key(e, space), b"") for e in sorted(self.added)
        ]

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed)


class _ChangedWindows:
    """The windows changed since the last commit: those that exist, sorted by (key, start,
    end) with their states, and every changed window's span by key (deleted ones too), which
    the committed store's copy must not show."""

    __slots__ = ("hidden", "spans", "states")

    def __init__(
        self,
        spans: list[tuple[str, int, int]] | None = None,
        states: list[WindowState] | None = None,
        hidden: dict[str, set[tuple[int, int]]] | None = None,
    ) -> None:
        self.spans = spans or []
        self.states = states or []
        self.hidden = hidden or {}


class _Partition:
    """The cache of one partition."""

    __slots__ = (
        "changed_at",
        "changed_memo",
        "dirty",
        "index",
        "inputs",
        "meta",
        "meta_dirty",
        "overdue",
        "overdue_read",
        "views",
        "windows",
    )

    def __init__(self) -> None:
        # key -> (start, end) -> state (None: deleted / known absent)
        self.windows: dict[str, dict[tuple[int, int], WindowState | None]] = {}
        self.dirty: dict[tuple[str, int, int], None] = {}  # insertion order = first change order
        self.changed_at = 0  # the store's version at the last window put or deleted here
        self.changed_memo: tuple[int, _ChangedWindows] | None = None
        self.index = _EntryChanges()
        self.overdue = _EntryChanges()
        self.overdue_read = False  # the committed overdue entries were taken
        # view -> (up_to of its last read of the committed index, due of the first entry after)
        self.views: dict[str, tuple[int, int]] = {}
        self.meta: dict[bytes, Any] = {}
        self.meta_dirty: set[bytes] = set()
        self.inputs: PartitionClock | None = None  # encoded at the commit, as it is then

    def changed_windows(self) -> _ChangedWindows:
        """The windows changed since the last commit, sorted; kept until the next change."""
        memo = self.changed_memo
        if memo is None or memo[0] != self.changed_at:
            spans = sorted(self.dirty)
            hidden: dict[str, set[tuple[int, int]]] = {}
            for key, start, end in spans:
                hidden.setdefault(key, set()).add((start, end))
            live = [(span, self.windows[span[0]][(span[1], span[2])]) for span in spans]
            changed = _ChangedWindows(
                [span for span, state in live if state is not None],
                [state for _, state in live if state is not None],
                hidden,
            )
            memo = self.changed_memo = (self.changed_at, changed)
        return memo[1]

    @property
    def changed(self) -> bool:
        return bool(
            self.dirty
            or self.index.changed
            or self.overdue.changed
            or self.meta_dirty
            or self.inputs is not None
        )


class WriteBackStore:
    def __init__(
        self, inner: OrderedStore, window_bytes: int = window_bytes_for(1), by_end: bool = False
    ) -> None:
        """``by_end``: window records keyed by end, then start (session tables,
        :mod:`windows.store_layout`)."""
        self.inner = inner
        self.window_bytes = window_bytes
        self.by_end = by_end
        #: estimated bytes the cache holds (see the module docstring)
        self.approx_bytes = 0
        #: counts the changes of what reads see: each window put or deleted, each commit or
        #: forget (a reader may keep what it derived from :meth:`changed_windows` while it holds)
        self.version = 0
        #: counts the commits and forgets (see :meth:`change_token`)
        self.resets = 0
        self._partitions: dict[int, _Partition] = {}

    def _part(self, partition: int) -> _Partition:
        part = self._partitions.get(partition)
        if part is None:
            part = self._partitions[partition] = _Partition()
        return part

    # -- windows --------------------------------------------------------------------------

    def get_window(self, partition: int, key: str, window: Window) -> WindowState | None:
        part = self._part(partition)
        cached = part.windows.get(key)
        span = (window.start, window.end)
        if cached is not None and span in cached:
            return cached[span]
        raw = self.inner.read(partition, window_key(key, window.start, window.end, self.by_end))
        state = None if raw is None else decode_window(window.start, window.end, raw)
        if cached is None:
            cached = part.windows[key] = {}
        cached[span] = state
        self.approx_bytes += KEY_BYTES + (0 if state is None else self.window_bytes)
        return state

    def key_windows(self, partition: int, key: str, ends_after: int | None = None) -> list[WindowState]:
        """With ``ends_after``, only the windows ending later (a store ``by_end`` reads only
        those)."""
        part = self._part(partition)
        cached = part.windows.get(key)
        if cached is None:
            cached = part.windows[key] = {}
        by_end = self.by_end
        low, high = key_range(key, ends_after if by_end else None)
        for raw_key, raw in self.inner.scan(partition, low, high):
            _, start, end = parse_window_key(raw_key, by_end)
            if (start, end) not in cached:
                cached[(start, end)] = decode_window(start, end, raw)
                self.approx_bytes += KEY_BYTES + self.window_bytes
        return [
            state
            for _, state in sorted(cached.items())
            if state is not None and (ends_after is None or state.end > ends_after)
        ]

    def put_window(self, partition: int, key: str, state: WindowState) -> None:
        part = self._part(partition)
        cached = part.windows.get(key)
        if cached is None:
            cached = part.windows[key] = {}
        span = (state.start, state.end)
        if span not in cached:
            self.approx_bytes += KEY_BYTES + self.window_bytes
        elif cached[span] is None:  # read as absent, or deleted
            self.approx_bytes += self.window_bytes
        cached[span] = state
        part.dirty[(key, state.start, state.end)] = None
        self.version += 1
        part.changed_at = self.version

    def delete_window(self, partition: int, key: str, window: Window) -> None:
        part = self._part(partition)
        cached = part.windows.get(key)
        if cached is None:
            cached = part.windows[key] = {}
        if (window.start, window.end) not in cached:
            self.approx_bytes += KEY_BYTES
        cached[(window.start, window.end)] = None
        part.dirty[(key, window.start, window.end)] = None
        self.version += 1
        part.changed_at = self.version

    # -- the time index -------------------------------------------------------------------

    def index_add(self, partition: int, entry: Scheduled) -> None:
        if self._part(partition).index.add(entry):
            self.approx_bytes += KEY_BYTES

    def index_remove(self, partition: int, entry: Scheduled) -> None:
        if self._part(partition).index.remove(entry):
            self.approx_bytes += KEY_BYTES

    def index_between(self, partition: int, after: int | None, up_to: int, view: str) -> list[Scheduled]:
        """The committed index is read only when it can hold a due entry: a ``view`` (the
        engine keeps one per kind of move: closes, deletions) that continues from its last
        read (``after`` is that read's ``up_to``) skips the read while ``up_to`` is before the
        first committed entry that read found beyond it."""
        part = self._part(partition)
        changes = part.index
        committed: list[Scheduled] = []
        last = part.views.get(view)
        if last is not None and last[0] == after and up_to < last[1]:
            part.views[view] = (up_to, last[1])
        else:
            beyond = NO_DUE
            for raw_key, _ in self.inner.scan(partition, index_start(after), INDEX_END):
                entry = parse_index_key(raw_key)
                if entry.due > up_to:
                    beyond = entry.due
                    break
                if entry not in changes.removed:
                    committed.append(entry)
            if after is None or after <= up_to:  # the read saw every entry up to ``beyond``
                part.views[view] = (up_to, beyond)
            else:
                part.views.pop(view, None)
        return _merged(committed, changes.between(after, up_to))

    def next_due(self, partition: int, view: str) -> int | None:
        part = self._part(partition)
        last = part.views.get(view)
        if last is None:
            return None
        return min(last[1], part.index.first_after(last[0]))

    def overdue_add(self, partition: int, entry: Scheduled) -> None:
        if self._part(partition).overdue.add(entry):
            self.approx_bytes += KEY_BYTES

    def take_overdue(self, partition: int) -> list[Scheduled]:
        part = self._part(partition)
        changes = part.overdue
        if part.overdue_read and not changes.added:
            return []
        committed: list[Scheduled] = []
        if not part.overdue_read:
            part.overdue_read = True
            for raw_key, _ in self.inner.scan(partition, OVERDUE, OVERDUE_END):
                entry = parse_index_key(raw_key)
                if entry not in changes.removed:
                    committed.append(entry)
        due = _merged(committed, sorted(changes.added)) if changes.added else committed
        for entry in due:
            changes.remove(entry)
        return due

    def index(self, partition: int) -> list[Scheduled]:
        """Every entry of the time index, in order (a whole scan: for tests and diagnostics)."""
        part = self._partitions.get(partition)
        entries = {parse_index_key(raw_key) for raw_key, _ in self.inner.scan(partition, INDEX, INDEX_END)}
        if part is not None:
            entries = (entries - part.index.removed) | part.index.added
        return sorted(entries)

    # -- the partition's own state --------------------------------------------------------

    def _meta(self, partition: int, key: bytes) -> Any:
        part = self._part(partition)
        if key not in part.meta:
            part.meta[key] = decode_meta(self.inner.read(partition, key))
        return part.meta[key]

    def get_stream_time(self, partition: int) -> int | None:
        value = self._meta(partition, STREAM_TIME_KEY)
        return None if value is None else int(value)

    def set_stream_time(self, partition: int, stream_time: int) -> None:
        part = self._part(partition)
        part.meta[STREAM_TIME_KEY] = stream_time
        part.meta_dirty.add(STREAM_TIME_KEY)

    def get_open_windows(self, partition: int) -> int:
        value = self._meta(partition, OPEN_WINDOWS_KEY)
        return 0 if value is None else int(value)

    def set_open_windows(self, partition: int, count: int) -> None:
        part = self._part(partition)
        part.meta[OPEN_WINDOWS_KEY] = count
        part.meta_dirty.add(OPEN_WINDOWS_KEY)

    def get_inputs(self, partition: int) -> Any:
        clock = self._part(partition).inputs
        return self._meta(partition, INPUTS_KEY) if clock is None else clock.to_json()

    def set_inputs(self, partition: int, clock: PartitionClock) -> None:
        self._part(partition).inputs = clock

    def get_offsets(self, partition: int) -> dict[str, int]:
        """The partition's processed offsets: per input (``"topic:partition"``), the largest
        offset of it processed; ``{}`` before any (or in a store written without them)."""
        value = self._meta(partition, OFFSETS_KEY)
        return {} if value is None else dict(value)

    def set_offsets(self, partition: int, offsets: Mapping[str, int]) -> None:
        """Save the partition's processed offsets (written at the next commit)."""
        part = self._part(partition)
        part.meta[OFFSETS_KEY] = dict(offsets)
        part.meta_dirty.add(OFFSETS_KEY)

    # -- whole keys (queries, tests) ------------------------------------------------------

    def get(self, partition: int, key: str) -> KeyWindows | None:
        """Every window of the key, or ``None`` when it has none."""
        found = self.key_windows(partition, key)
        return KeyWindows({w.window: w for w in found}) if found else None

    def items(self, partition: int) -> Iterator[tuple[str, KeyWindows]]:
        """Every key of the partition with its windows, in key order (one scan of the committed
        windows, merged with the cached changes). Reads nothing into the cache."""
        low, high = data_range()
        part = self._partitions.get(partition)
        cached = {} if part is None else part.windows
        by_key: dict[str, dict[Window, WindowState]] = {}
        for raw_key, raw in self.inner.scan(partition, low, high):
            key, start, end = parse_window_key(raw_key, self.by_end)
            if key in cached and (start, end) in cached[key]:
                continue
            by_key.setdefault(key, {})[Window(start, end)] = decode_window(start, end, raw)
        for key, spans in cached.items():
            for (start, end), state in spans.items():
                if state is not None:
                    by_key.setdefault(key, {})[Window(start, end)] = state
        for key in sorted(by_key):
            yield key, KeyWindows(dict(sorted(by_key[key].items())))

    def scan_windows(
        self, partition: int, after: tuple[str, int, int] | None = None, key_prefix: str = ""
    ) -> Iterator[tuple[str, WindowState]]:
        """The partition's windows in ``(key, start, end)`` order, lazily: those of the keys
        starting with ``key_prefix``, strictly after ``after`` (``(key, start, end)``; ``None``:
        from the first). One range read of the committed store merged with the cached changes
        (a cached window replaces the committed one, a cached deletion hides it). Reads nothing
        into the cache; the cache must not change while the iterator is in use."""
        low, high = prefix_range(key_prefix)
        if after is not None:
            # by_end: from the after key's first window (each key's are sorted by start here)
            low = max(low, key_range(after[0])[0] if self.by_end else key_after(*after))
        part = self._partitions.get(partition)
        changed = _ChangedWindows() if part is None else part.changed_windows()
        spans, states = changed.spans, changed.states
        at = bisect.bisect_left(spans, (key_prefix,))
        if after is not None:
            at = max(at, bisect.bisect_right(spans, after))
        committed = self._committed_windows(partition, low, high, after, changed.hidden)
        if at == len(spans) or not spans[at][0].startswith(key_prefix):  # nothing changed there
            for key, _start, _end, state in committed:
                yield key, state
            return
        # lazily: a page takes only the changes up to where it ends
        fresh = itertools.takewhile(
            lambda item: item[0].startswith(key_prefix),
            ((*spans[i], states[i]) for i in range(at, len(spans))),
        )
        for key, _start, _end, state in heapq.merge(committed, fresh, key=lambda item: item[:3]):
            yield key, state

    def change_token(self, partition: int) -> tuple[int, int]:
        """Changes when :meth:`changed_windows` of the partition may give something else: the
        store's last commit or forget, and the partition's last window put or deleted."""
        part = self._partitions.get(partition)
        return self.resets, 0 if part is None else part.changed_at

    def changed_windows(self, partition: int) -> list[tuple[tuple[str, int, int], WindowState | None]]:
        """The windows changed since the last commit, as ``((key, start, end), state)`` in the
        order they first changed (``None``: deleted)."""
        part = self._partitions.get(partition)
        if part is None:
            return []
        return [(span, part.windows[span[0]][(span[1], span[2])]) for span in part.dirty]

    def _committed_windows(
        self,
        partition: int,
        low: bytes,
        high: bytes,
        after: tuple[str, int, int] | None,
        hidden: Mapping[str, Container[tuple[int, int]]],
    ) -> Iterator[tuple[str, int, int, WindowState]]:
        """The committed windows in ``[low, high)`` not ``hidden`` (changed since the last
        commit: the cache holds them, or their deletion), after ``after``, in
        ``(key, start, end)`` order (a store ``by_end`` holds a key's windows by end: each key's
        are sorted here)."""
        records = parsed_windows(self.inner.scan(partition, low, high), self.by_end)
        if not self.by_end:  # in (key, start, end) order already, from after ``after`` (``low``)
            for key, start, end, raw in records:
                if hidden and (start, end) in hidden.get(key, ()):
                    continue
                yield key, start, end, decode_window(start, end, raw)
            return
        for key, group in itertools.groupby(records, key=lambda item: item[0]):
            spans = hidden.get(key, ())
            found = [
                (start, end, raw)
                for _, start, end, raw in group
                if (start, end) not in spans and (after is None or (key, start, end) > after)
            ]
            found.sort(key=lambda item: item[:2])
            for start, end, raw in found:
                yield key, start, end, decode_window(start, end, raw)

    # -- commits --------------------------------------------------------------------------

    @property
    def dirty(self) -> bool:
        return any(part.changed for part in self._partitions.values())

    def changes(self) -> dict[int, list[Write]]:
        """The writes that make the committed store equal to what this cache shows, per
        partition with changes (:meth:`partition_changes` of each, in partition order)."""
        out: dict[int, list[Write]] = {}
        for partition in self.changed_partitions():
            out[partition] = self.partition_changes(partition)
        return out

    def changed_partitions(self) -> list[int]:
        """The partitions with changes since the last commit, in order."""
        return sorted(p for p, part in self._partitions.items() if part.changed)

    def partition_changes(self, partition: int) -> list[Write]:
        """The writes of one partition's changes: changed windows in the order they first
        changed, then index and overdue entries removed and added (in index order), then stream
        time and inputs; ``[]`` for a partition without changes. Reads the cache only."""
        part = self._partitions.get(partition)
        if part is None or not part.changed:
            return []
        writes: list[Write] = []
        for key, start, end in part.dirty:
            state = part.windows[key][(start, end)]
            raw_key = window_key(key, start, end, self.by_end)
            writes.append((raw_key, None if state is None else encode_window(state)))
        writes.extend(part.index.writes(INDEX))
        writes.extend(part.overdue.writes(OVERDUE))
        for meta_key in sorted(part.meta_dirty):
            writes.append((meta_key, encode_meta(part.meta[meta_key])))
        if part.inputs is not None:
            writes.append((INPUTS_KEY, encode_meta(part.inputs.to_json())))
        return writes

    def committed(
        self, changes: Mapping[int, Sequence[Write]], offsets: Mapping[int, int] | None = None
    ) -> int:
        """Apply ``changes`` (from :meth:`changes`, now committed) to the committed store, each
        partition's with its changelog offset from ``offsets``, and empty the cache. Returns the
        number of writes."""
        writes = 0
        for partition, batch in changes.items():
            self.inner.apply(partition, batch, None if offsets is None else offsets.get(partition))
            writes += len(batch)
        self._partitions.clear()
        self.approx_bytes = 0
        self.version += 1
        self.resets += 1
        return writes

    def flush(self) -> int:
        """:meth:`changes`, then :meth:`committed` without changelog offsets. Returns the
        number of writes."""
        return self.committed(self.changes())

    def forget(self, partition: int | None = None) -> None:
        """Drop the cached state (of one partition, or all) without writing it."""
        self.version += 1
        self.resets += 1
        if partition is None:
            self._partitions.clear()
            self.approx_bytes = 0
        else:
            self._partitions.pop(partition, None)
            if not self._partitions:
                self.approx_bytes = 0


def _merged(first: list[Scheduled], second: list[Scheduled]) -> list[Scheduled]:
    """Two sorted lists as one, without repeats."""
    if not second:
        return first
    if not first:
        return second
    out: list[Scheduled] = []
    for entry in heapq.merge(first, second):
        if not out or out[-1] != entry:
            out.append(entry)
    return out
