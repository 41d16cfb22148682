"""Reading one partition of a windowed table for queries: a page of its windows in key order,
and its top keys by one aggregation.

Both read a :class:`~windows.write_back.WriteBackStore`: the owner's (committed state plus the
changes of the commit in progress) or one over the committed state alone (a standby's). Times
are epoch milliseconds; windows are ``[start, end)``. A window past its retention
(:func:`~windows.stream_time.is_expired`) is never returned, as for the point query; whether a
window is closed is judged by the partition's stream time.

The answers are JSON-ready dicts, so a worker can merge its own with those of other workers
(:func:`rank_key` orders top lists). :meth:`PartitionView.windows_after` and
:meth:`PartitionView.ranked` read lazily, so a merge over partitions reads from each only what
it takes; a top-N from a partition's ranks (:mod:`windows.rank_index`) reads what it returns, one
without them reads the whole partition.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from itertools import islice
from typing import Any

from windows.keyed_state import WindowState
from windows.rank_index import PartitionRanks, admitted_by, is_number, ranked_keys
from windows.stream_time import is_closed, is_expired
from windows.table import WindowedAggregate
from windows.write_back import WriteBackStore

#: the last window a page returned: ``(key, start, end)``
After = tuple[str, int, int]


@dataclass(frozen=True)
class WindowFilter:
    """Which windows a query wants: those overlapping ``[from_ms, to_ms)`` (either bound
    ``None``: open), closed or open ones only (``closed`` ``None``: both)."""

    from_ms: int | None = None
    to_ms: int | None = None
    closed: bool | None = None

    def admits(self, start: int, end: int, closed: bool) -> bool:
        if self.from_ms is not None and end <= self.from_ms:
            return False
        if self.to_ms is not None and start >= self.to_ms:
            return False
        return self.closed is None or self.closed == closed


def _live(
    store: WriteBackStore,
    aggregate: WindowedAggregate,
    partition: int,
    after: After | None,
    key_prefix: str,
    wanted: WindowFilter,
) -> Iterator[tuple[str, WindowState, bool]]:
    """The partition's windows the filter admits, not expired, in (key, start, end) order, with
    whether each is closed."""
    stream_time = store.get_stream_time(partition)
    spec = aggregate.window
    grace, retention = spec.grace_ms, spec.retention_ms
    for key, window in store.scan_windows(partition, after, key_prefix):
        if is_expired(window.end, grace, retention, stream_time):
            continue
        closed = is_closed(window.end, grace, stream_time)
        if wanted.admits(window.start, window.end, closed):
            yield key, window, closed


def scan_page(
    store: WriteBackStore,
    aggregate: WindowedAggregate,
    partition: int,
    *,
    after: After | None,
    key_prefix: str,
    wanted: WindowFilter,
    limit: int,
) -> tuple[list[dict[str, Any]], bool]:
    """Up to ``limit`` windows of the partition after ``after``, in (key, start, end) order, as
    ``{"key", "start", "end", "closed", "value", "version"}``; and whether more follow."""
    found = windows_after(store, aggregate, partition, after=after, key_prefix=key_prefix, wanted=wanted)
    page = list(islice(found, limit + 1))
    return page[:limit], len(page) > limit


def windows_after(
    store: WriteBackStore,
    aggregate: WindowedAggregate,
    partition: int,
    *,
    after: After | None,
    key_prefix: str,
    wanted: WindowFilter,
) -> Iterator[dict[str, Any]]:
    """The windows of :func:`scan_page`, lazily: each is read and decoded only when taken (the
    store's cache must not change meanwhile)."""
    stream_time = store.get_stream_time(partition)
    if stream_time is None:  # nothing expired or closed yet
        closes_at = expires_at = None
    else:  # a window closes once stream time reaches end + grace (is_closed, is_expired)
        closes_at = stream_time - aggregate.window.grace_ms
        expires_at = closes_at - aggregate.window.retention_ms
    admits, value = wanted.admits, aggregate.value
    for key, window in store.scan_windows(partition, after, key_prefix):  # _live, inlined
        end = window.end
        if expires_at is not None and end <= expires_at:
            continue
        closed = closes_at is not None and end <= closes_at
        if admits(window.start, end, closed):
            yield {
                "key": key,
                "start": window.start,
                "end": end,
                "closed": closed,
                "value": value(window),
                "version": window.version,
            }


def rank_key(entry: dict[str, Any], descending: bool) -> tuple[Any, str]:
    """The order of :func:`top_keys`' answers: by value (from the largest when
    ``descending``), then key."""
    value = entry["value"]
    return (-value if descending else value, entry["key"])


def top_keys(
    store: WriteBackStore,
    aggregate: WindowedAggregate,
    partition: int,
    *,
    by: str,
    n: int,
    descending: bool,
    wanted: WindowFilter,
) -> list[dict[str, Any]]:
    """The partition's ``n`` keys with the largest (``descending``) or smallest value of
    aggregation ``by`` among their windows the filter admits, best first, ties broken by key;
    each key once, with its best window (the earliest of equal ones) as
    ``{"key", "start", "end", "value"}``. Windows whose value is not a number are skipped.
    Raises ``KeyError`` for an aggregation the table does not have."""
    index = aggregate.names.index(by) if by in aggregate.names else None
    if index is None:
        raise KeyError(by)
    best: dict[str, dict[str, Any]] = {}
    for key, window, _closed in _live(store, aggregate, partition, None, "", wanted):
        value = aggregate.value(window)[by]
        if not is_number(value):
            continue
        held = best.get(key)
        if held is None or (value > held["value"] if descending else value < held["value"]):
            best[key] = {"key": key, "start": window.start, "end": window.end, "value": value}
    return heapq.nsmallest(n, best.values(), key=lambda entry: rank_key(entry, descending))


@dataclass(frozen=True)
class PartitionView:
    """One partition of a table as a query reads it, from ``store`` (the owner's write-back
    cache, or a cache over committed state only)."""

    store: WriteBackStore
    aggregate: WindowedAggregate
    partition: int
    #: the partition's committed windows by rank, asked for when a top-N first reads them
    #: (:attr:`ranks`): bringing them up to the last commit is work only a top-N needs
    rank_source: Callable[[], PartitionRanks | None] = lambda: None

    @cached_property
    def ranks(self) -> PartitionRanks | None:
        """The partition's committed windows by rank (``None``: a top-N reads the whole
        partition), asked of :attr:`rank_source` once per view."""
        return self.rank_source()

    def position(self) -> dict[str, Any]:
        """``{"stream_time": ms | None, "inputs": {"topic:partition": offset}}``: the
        partition's stream time and, per input, the largest offset it has processed."""
        return {
            "stream_time": self.store.get_stream_time(self.partition),
            "inputs": self.store.get_offsets(self.partition),
        }

    def offsets(self) -> dict[str, int]:
        return self.store.get_offsets(self.partition)

    def key_windows(self, key: str, wanted: WindowFilter) -> list[dict[str, Any]]:
        """The key's windows the filter admits, sorted by (start, end), as
        ``{"start", "end", "closed", "value", "version"}``."""
        found = []
        for k, window, closed in _live(self.store, self.aggregate, self.partition, None, key, wanted):
            if k != key:  # the keys that extend it come after all of its windows
                break
            found.append(
                {
                    "start": window.start,
                    "end": window.end,
                    "closed": closed,
                    "value": self.aggregate.value(window),
                    "version": window.version,
                }
            )
        return found

    def scan(
        self, after: After | None, key_prefix: str, wanted: WindowFilter, limit: int
    ) -> tuple[list[dict[str, Any]], bool]:
        return scan_page(
            self.store,
            self.aggregate,
            self.partition,
            after=after,
            key_prefix=key_prefix,
            wanted=wanted,
            limit=limit,
        )

    def windows_after(
        self, after: After | None, key_prefix: str, wanted: WindowFilter
    ) -> Iterator[dict[str, Any]]:
        return windows_after(
            self.store, self.aggregate, self.partition, after=after, key_prefix=key_prefix, wanted=wanted
        )

    def top(self, by: str, n: int, descending: bool, wanted: WindowFilter) -> list[dict[str, Any]]:
        if self.ranks is None:
            return top_keys(
                self.store, self.aggregate, self.partition, by=by, n=n, descending=descending, wanted=wanted
            )
        return list(islice(self.ranked(by, descending, wanted), n))

    def ranked(self, by: str, descending: bool, wanted: WindowFilter) -> Iterator[dict[str, Any]]:
        """Each key once with its best window, in rank order, lazily, as :func:`top_keys`
        answers them; from :attr:`ranks` (required) and the store's changes since its last
        commit. Raises ``KeyError`` for an aggregation the table does not have."""
        ranks = self.ranks
        if ranks is None:
            raise ValueError("ranked() needs the partition's ranks")
        if by not in self.aggregate.names:
            raise KeyError(by)
        admits = admitted_by(
            self.aggregate,
            self.store.get_stream_time(self.partition),
            wanted.from_ms,
            wanted.to_ms,
            wanted.closed,
        )
        store, partition = self.store, self.partition
        token = (id(store), store.change_token(partition))
        for value, key, start, end in ranked_keys(
            ranks,
            by,
            descending,
            wanted.from_ms,
            wanted.to_ms,
            lambda: store.changed_windows(partition),
            token,
            admits,
        ):
            yield {"key": key, "start": start, "end": end, "value": value}
