"""The windows of a table partition ordered by the value of each aggregation, so that a top-N
query reads what it returns rather than the whole partition.

:class:`PartitionRanks` holds, for one partition, every window whose aggregation value is a
number (:func:`is_number`) as an entry ``(value, key, start, end)`` in a sorted list per
aggregation, and, for tables of fixed-size windows (tumbling, sliding), in one sorted list per
window start as well. It is built by reading the partition's committed windows, in slices
(:meth:`TableRanks.build_step`), and kept current by the writes applied to the committed store
meanwhile and afterwards (:class:`RankedStore`): once built, whenever it is read
(:meth:`TableRanks.held`), it equals the committed state. The writes are queued at the commit and
taken into the lists when a top-N next reads the partition, so a commit costs no more for the
ranks than a copy of its window writes, and a partition nobody asks a top-N of costs nothing:
once more writes are queued than half its windows (at least :data:`MIN_QUEUED_WRITES`), its
ranks are released, and the next top-N builds them again.
The owner's changes of the commit in progress are merged in at query time
(:func:`ranked_keys`' ``changed``), so reads see what the point query sees.

Order: ascending is ``(value, key, start, end)``; descending is by value from the largest, and
among equal values still by key, then start, ascending, so that a key's best window is the
earliest of its equal ones either way.

Cost: a query walks entries from the best until it has ``n`` keys, skipping the windows its
filter (time range, closed, expired) does not admit and the further windows of keys already
taken. With a time range on a table of fixed-size windows, only the lists of the window starts
that can overlap it are merged (up to :data:`MAX_MERGED_STARTS` of them; more: the partition's
list, with skipping). Memory: about 250 bytes per window plus 115 per window and aggregation
(tracemalloc: 484 bytes per window with two aggregations), held only for the partitions someone
asked a top-N of.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from itertools import islice
from typing import Any

from sortedcontainers import SortedDict, SortedList

from windows.keyed_state import WindowState
from windows.ordered_store import OrderedStore, Write
from windows.store_layout import DATA, data_range, decode_window, parse_window_key
from windows.stream_time import is_closed, is_expired
from windows.table import WindowedAggregate

#: a ranked window: its value, key, start and end (epoch ms)
Entry = tuple[Any, str, int, int]
#: one window of a partition: key, start, end
Span = tuple[str, int, int]
#: a window changed since the last commit, and its state (``None``: deleted)
Changed = tuple[Span, WindowState | None]
#: at most this many window starts' lists are merged for one query
MAX_MERGED_STARTS = 64
#: a partition's ranks are released once more window writes than this (or than half its windows,
#: if more) wait for a top-N to read them
MIN_QUEUED_WRITES = 10_000


def is_number(value: Any) -> bool:
    """Whether an aggregation's value can be ranked (a number; not a bool, string, NaN or null)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def _descending(entries: Any, low: int = 0, high: int | None = None) -> Iterator[Entry]:
    """``entries[low:high]`` (a sorted list) by value from the largest, equal values in list
    order (key, start, end ascending)."""
    high = len(entries) if high is None else high
    while high > low:
        first = max(low, entries.bisect_left((entries[high - 1][0],)))
        yield from entries.islice(first, high)
        high = first


def in_order(entries: Any, descending: bool) -> Iterator[Entry]:
    """A sorted list's entries in rank order."""
    return _descending(entries) if descending else iter(entries)


def rank_of(descending: bool) -> Callable[[Entry], Any]:
    """The sort key of an entry in rank order."""
    if descending:
        return lambda e: (-e[0], e[1], e[2], e[3])
    return lambda e: e


class PartitionRanks:
    """One partition's ranked windows (see the module docstring); ``size_ms``: the windows'
    fixed size (``None``: sessions, no lists per start)."""

    def __init__(self, aggregate: WindowedAggregate, by_end: bool, size_ms: int | None) -> None:
        self.aggregate = aggregate
        self.by_end = by_end
        self.size_ms = size_ms
        self._values: dict[Span, tuple[Entry | None, ...]] = {}
        #: per (aggregation, order): the token of the changes last merged, their windows, and
        #: their entries in rank order
        self._changes: dict[tuple[str, bool], tuple[Hashable, set[Span], list[Entry]]] = {}
        self._ordered = {name: SortedList() for name in aggregate.names}
        self._by_start: dict[str, Any] = {name: SortedDict() for name in aggregate.names}

    def __len__(self) -> int:
        """The windows held."""
        return len(self._values)

    def apply(self, writes: Iterable[Write]) -> None:
        """Take the writes applied to the committed store (records other than windows are
        ignored; a ``None`` value deletes the window)."""
        for raw_key, raw in writes:
            if raw_key[:1] != DATA:
                continue
            key, start, end = parse_window_key(raw_key, self.by_end)
            self._remove((key, start, end))
            if raw is not None:
                self._add(decode_window(start, end, raw), key)

    def load(self, records: Iterable[Write]) -> None:
        """Take committed windows read from the store, many at once (as :meth:`apply`, faster:
        the lists are sorted once per call rather than once per window)."""
        names = self.aggregate.names
        ordered: dict[str, list[Entry]] = {name: [] for name in names}
        for raw_key, raw in records:
            if raw_key[:1] != DATA or raw is None:
                continue
            key, start, end = parse_window_key(raw_key, self.by_end)
            self._remove((key, start, end))
            values = self.aggregate.value(decode_window(start, end, raw))
            ranked = tuple(
                (values[name], key, start, end) if is_number(values[name]) else None for name in names
            )
            self._values[(key, start, end)] = ranked
            for name, one in zip(names, ranked, strict=True):
                if one is not None:
                    ordered[name].append(one)
        for name, entries in ordered.items():
            self._ordered[name].update(entries)
            if self.size_ms is None:
                continue
            by_start: dict[int, list[Entry]] = {}
            for entry in entries:
                by_start.setdefault(entry[2], []).append(entry)
            starts = self._by_start[name]
            for start, group in by_start.items():
                bucket = starts.get(start)
                if bucket is None:
                    starts[start] = SortedList(group)
                else:
                    bucket.update(group)

    def _add(self, window: WindowState, key: str) -> None:
        values = self.aggregate.value(window)
        entries = tuple(
            (values[name], key, window.start, window.end) if is_number(values[name]) else None
            for name in self.aggregate.names
        )
        self._values[(key, window.start, window.end)] = entries
        for name, entry in zip(self.aggregate.names, entries, strict=True):
            if entry is None:
                continue
            self._ordered[name].add(entry)
            if self.size_ms is not None:
                starts = self._by_start[name]
                bucket = starts.get(entry[2])
                if bucket is None:
                    bucket = starts[entry[2]] = SortedList()
                bucket.add(entry)

    def _remove(self, span: Span) -> None:
        entries = self._values.pop(span, None)
        if entries is None:
            return
        for name, entry in zip(self.aggregate.names, entries, strict=True):
            if entry is None:
                continue
            self._ordered[name].remove(entry)
            if self.size_ms is not None:
                starts = self._by_start[name]
                bucket = starts[entry[2]]
                bucket.remove(entry)
                if not bucket:
                    del starts[entry[2]]

    def changes(
        self, by: str, descending: bool, token: Hashable, changed: Callable[[], Sequence[Changed]]
    ) -> tuple[set[Span], list[Entry]]:
        """The windows ``changed()`` gives (changes not committed yet) and their entries of
        ``by`` in rank order; computed again only when ``token`` differs from the last call's."""
        memo = self._changes.get((by, descending))
        if memo is None or memo[0] != token:
            windows = changed()
            hidden = {span for span, _ in windows}
            fresh = changed_entries(
                self.aggregate, ((span[0], state) for span, state in windows), by, descending
            )
            memo = self._changes[(by, descending)] = (token, hidden, fresh)
        return memo[1], memo[2]

    def entries(self, by: str, descending: bool, from_ms: int | None, to_ms: int | None) -> Iterator[Entry]:
        """The entries of aggregation ``by`` in rank order; with a time range ``[from_ms,
        to_ms)`` on fixed-size windows, only those of the starts that can overlap it (when
        there are at most :data:`MAX_MERGED_STARTS`), else all of them."""
        if self.size_ms is not None and (from_ms is not None or to_ms is not None):
            starts = self._by_start[by]
            low = None if from_ms is None else from_ms - self.size_ms + 1
            keys = list(islice(starts.irange(low, to_ms, inclusive=(True, False)), MAX_MERGED_STARTS + 1))
            if len(keys) <= MAX_MERGED_STARTS:
                lists = [in_order(starts[start], descending) for start in keys]
                return heapq.merge(*lists, key=rank_of(descending))
        return in_order(self._ordered[by], descending)


def changed_entries(
    aggregate: WindowedAggregate, changed: Iterable[tuple[str, WindowState | None]], by: str, descending: bool
) -> list[Entry]:
    """The entries of aggregation ``by`` of the windows in ``changed`` (``(key, state)``; a
    deleted window, ``None``, has none), in rank order."""
    found = []
    for key, window in changed:
        if window is None:
            continue
        value = aggregate.value(window)[by]
        if is_number(value):
            found.append((value, key, window.start, window.end))
    found.sort(key=rank_of(descending))
    return found


def ranked_keys(
    ranks: PartitionRanks,
    by: str,
    descending: bool,
    from_ms: int | None,
    to_ms: int | None,
    changed: Callable[[], Sequence[Changed]],
    token: Hashable,
    admits: Callable[[int, int], bool],
) -> Iterator[Entry]:
    """Each key once, with its best window ``admits(start, end)`` accepts, in rank order: the
    committed windows of ``ranks`` with the windows ``changed()`` gives (the commit in
    progress: a window there replaces its committed one, ``None`` deletes it; read again only
    when ``token`` changes, see :meth:`PartitionRanks.changes`). Lazy: reads only as far as it
    is taken."""
    hidden, fresh = ranks.changes(by, descending, token, changed)
    committed: Iterable[Entry] = ranks.entries(by, descending, from_ms, to_ms)
    if hidden:
        committed = (e for e in committed if (e[1], e[2], e[3]) not in hidden)
    merged = heapq.merge(committed, fresh, key=rank_of(descending)) if fresh else committed
    taken: set[str] = set()
    for entry in merged:
        key = entry[1]
        if key in taken or not admits(entry[2], entry[3]):
            continue
        taken.add(key)
        yield entry


def admitted_by(
    aggregate: WindowedAggregate,
    stream_time: int | None,
    from_ms: int | None,
    to_ms: int | None,
    closed: bool | None,
) -> Callable[[int, int], bool]:
    """Whether a window ``[start, end)`` is one a query wants: not expired by ``stream_time``,
    overlapping ``[from_ms, to_ms)`` (``None``: open), closed or open as ``closed`` says
    (``None``: both)."""
    spec = aggregate.window
    grace, retention = spec.grace_ms, spec.retention_ms

    def admits(start: int, end: int) -> bool:
        if from_ms is not None and end <= from_ms:
            return False
        if to_ms is not None and start >= to_ms:
            return False
        if is_expired(end, grace, retention, stream_time):
            return False
        return closed is None or closed == is_closed(end, grace, stream_time)

    return admits


class TableRanks:
    """The ranked windows of the partitions of one table someone asked a top-N of, over the
    table's committed store. The owner of the store calls :meth:`applied` after each write to
    it (:class:`RankedStore` does) and :meth:`forget` whenever the store may change another way
    (a changelog restore, a partition revoked)."""

    def __init__(
        self,
        aggregate: WindowedAggregate,
        by_end: bool,
        size_ms: int | None,
        on_dropped: Callable[[int], None] = lambda partition: None,
        min_queued: int = MIN_QUEUED_WRITES,
        on_released: Callable[[int], None] = lambda partition: None,
    ) -> None:
        self.aggregate = aggregate
        #: the writes that may always wait for a partition's ranks (see :meth:`applied`)
        self.min_queued = min_queued
        self.by_end = by_end
        self.size_ms = size_ms
        #: told the partition whose ranks :meth:`held` dropped, or :meth:`applied` released
        self.on_dropped = on_dropped
        self.on_released = on_released
        self._held: dict[int, PartitionRanks] = {}
        #: partitions being built: the ranks so far, and the store key the next slice reads from
        self._building: dict[int, tuple[PartitionRanks, bytes]] = {}
        #: per partition built or being built: the window writes applied to the store since its
        #: ranks last took them, in order
        self._queued: dict[int, list[Write]] = {}
        #: ranks forgotten because they could not take a write (see :meth:`held`)
        self.dropped = 0
        #: ranks released because more writes waited for them than :attr:`min_queued` or half
        #: their windows (see :meth:`applied`)
        self.released = 0
        #: partitions whose ranks :meth:`held` gave out since :meth:`read_since_last_asked`
        self._read: set[int] = set()

    def applied(self, partition: int, writes: Sequence[Write]) -> None:
        """Writes applied to the partition's committed store: queued for its ranks, built or
        being built, which take them when next read (:meth:`held`; a window the build has not
        read yet is read later as it is then, and its queued writes bring it to the same).
        Never raises: this runs in the commit path, after the store took the writes. Releases
        the ranks once the queue holds more writes than :data:`MIN_QUEUED_WRITES` and than
        half the windows they hold: building them again costs no more than catching up."""
        queued = self._queued.get(partition)
        if queued is None:
            return
        queued.extend(write for write in writes if write[0][:1] == DATA)
        held = self._held.get(partition)
        if held is None:
            held = self._building[partition][0]
        if len(queued) > max(self.min_queued, len(held) // 2):
            self.forget(partition)
            self.released += 1
            self.on_released(partition)

    def forget(self, partition: int) -> None:
        self._held.pop(partition, None)
        self._building.pop(partition, None)
        self._queued.pop(partition, None)

    def forget_all(self) -> None:
        self._held.clear()
        self._building.clear()
        self._queued.clear()

    def held(self, partition: int) -> PartitionRanks | None:
        """The partition's ranks, if built, having taken the writes queued for them: equal to
        the committed store. Ranks that cannot take a write (one that does not decode) are
        forgotten, counted in :attr:`dropped` and told to ``on_dropped``; ``None`` then, and the
        next top-N builds them again. Ranks given out count as read
        (:meth:`read_since_last_asked`)."""
        ranks = self.caught_up(partition)
        if ranks is not None:
            self._read.add(partition)
        return ranks

    def read_since_last_asked(self) -> list[int]:
        """The partitions whose ranks :meth:`held` gave out since the last call, in order, with
        writes queued for them: the owner brings them up to date after a commit
        (:meth:`caught_up`), ahead of the next top-N, which then finds nothing to apply. Ranks
        nobody reads keep their writes queued until read or released (:meth:`applied`)."""
        read, self._read = self._read, set()
        return sorted(p for p in read if self._queued.get(p) and p in self._held)

    def caught_up(self, partition: int) -> PartitionRanks | None:
        """:meth:`held`, without counting as read."""
        held = self._held.get(partition)
        if held is None:
            return None
        queued = self._queued[partition]
        if queued:
            self._queued[partition] = []
            try:
                held.apply(queued)
            except Exception:
                self.forget(partition)
                self.dropped += 1
                self.on_dropped(partition)
                return None
        return held

    def build_step(self, partition: int, store: OrderedStore, windows: int) -> PartitionRanks | None:
        """One slice of the partition's build: up to ``windows`` more committed windows read
        from ``store``; the ranks once complete (at once if they are), else ``None``. Between
        slices the caller may apply writes (:meth:`applied`): each slice reads on from the key
        after the last one read, as the store is then, so the result equals the store."""
        if partition in self._held:
            return self.held(partition)
        ranks, low = self._building.get(partition) or (
            PartitionRanks(self.aggregate, self.by_end, self.size_ms),
            data_range()[0],
        )
        self._queued.setdefault(partition, [])
        records = list(islice(store.scan(partition, low, data_range()[1]), windows))
        ranks.load(records)
        if len(records) < windows:
            self._building.pop(partition, None)
            self._held[partition] = ranks
            return self.held(partition)
        self._building[partition] = (ranks, records[-1][0] + b"\x00")
        return None

    def build(self, partition: int, store: OrderedStore) -> PartitionRanks:
        """The partition's ranks, read from ``store``'s committed windows at once if not built."""
        while True:
            built = self.build_step(partition, store, 1 << 62)
            if built is not None:
                return built

    def windows(self) -> int:
        """Windows held, over every partition."""
        return sum(len(held) for held in self._held.values())


class RankedStore:
    """An :class:`~windows.ordered_store.OrderedStore` that tells ``ranks`` of every write
    applied through it."""

    def __init__(self, inner: OrderedStore, ranks: TableRanks) -> None:
        self.inner = inner
        self.ranks = ranks

    def read(self, partition: int, key: bytes) -> bytes | None:
        return self.inner.read(partition, key)

    def scan(self, partition: int, low: bytes, high: bytes) -> Iterator[tuple[bytes, bytes]]:
        return self.inner.scan(partition, low, high)

    def apply(self, partition: int, writes: Sequence[Write], changelog_offset: int | None) -> None:
        self.inner.apply(partition, writes, changelog_offset)
        self.ranks.applied(partition, writes)

    def changelog_offset(self, partition: int) -> int | None:
        return self.inner.changelog_offset(partition)
