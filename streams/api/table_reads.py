"""What the query routes need from a worker's tables (:class:`TableReads`), and the parameters
every query takes (:class:`ReadOptions`: read-your-writes and standby reads; the window filter;
bounded counts), read from a request. A bad parameter raises
:class:`~streams.api.api_routes.BadQuery` (400); a bad position token
:class:`~streams.api.read_your_writes.BadPositionToken` (400 ``bad_token``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from aiohttp import web

from streams.api.api_routes import BadQuery, bool_param, int_param
from streams.api.positions import PositionToken, WrittenAt
from streams.api.read_your_writes import read_token
from streams.api.table_params import time_range
from windows.ordered_store import OrderedStore
from windows.rank_index import TableRanks
from windows.table_read import PartitionView, WindowFilter

#: how this worker holds a table partition
Role = Literal["active", "standby"] | None
DEFAULT_WAIT_S, MAX_WAIT_S = 5.0, 30.0
#: the ``isolation`` of a query: the owner's state with the commit in progress, or committed only
ISOLATIONS = ("uncommitted", "committed")
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
DEFAULT_TOP, MAX_TOP = 10, 1000


class TableReads(Protocol):
    """What the query routes need from the worker's tables."""

    def table_names(self) -> list[str]: ...

    def description(self, table: str) -> dict[str, Any]:
        """The table's catalog entry (:func:`streams.api.table_catalog.table_description`)."""
        ...

    def aggregation_names(self, table: str) -> tuple[str, ...]: ...

    def partition_count(self, table: str) -> int: ...

    def partition_of(self, table: str, key: str) -> int:
        """The partition of the table that holds ``key``."""
        ...

    def source_inputs(self, table: str) -> tuple[str, dict[str, int]]:
        """The table's source name and its topics' partition counts."""
        ...

    def owner(self, table: str, partition: int) -> str | None:
        """The base URL of the worker that owns the partition (``None`` while unassigned)."""
        ...

    def workers(self) -> list[str]:
        """The base URLs of the group's workers that own partitions, this one included."""
        ...

    def own_url(self) -> str: ...

    def role(self, table: str, partition: int) -> Role:
        """Whether this worker holds the partition active, as a standby, or not at all."""
        ...

    def restoring(self) -> bool:
        """Whether this worker is in a rebalance or restoring its tables (its partitions may not
        hold their whole state yet: reads answer 503)."""
        ...

    def kept(self, table: str, partition: int) -> bool:
        """Whether this worker holds the partition active with its whole committed state even
        while it is restoring: it held the partition restored before the rebalance in progress
        and the new assignment (or the old one, until the new one is known) keeps it here."""
        ...

    def view(self, table: str, partition: int, committed: bool) -> PartitionView:
        """The partition as this worker holds it; ``committed``: its committed state only."""
        ...

    async def rank(self, table: str, partition: int) -> None:
        """Have the partition's ranked windows ready for top-N reads, when this worker holds it
        active with its whole state (built on the first call, in slices between which the
        worker goes on processing; concurrent calls share the build). A view of a partition
        without them reads the whole partition for a top-N."""
        ...

    async def wait_processed(
        self, table: str, partition: int, condition: Callable[[], bool], timeout_s: float
    ) -> bool:
        """Wait (at most ``timeout_s``) until ``condition`` holds, re-checked each time the
        table processes a batch; whether it holds."""
        ...

    async def lag(self, table: str, partition: int) -> int | None:
        """Records of the keyed input of an active partition not yet processed."""
        ...

    async def standby_behind(self, table: str, partition: int) -> int | None:
        """Changelog records a standby partition has not applied yet."""
        ...

    async def input_ends(self, entries: list[WrittenAt]) -> dict[str, int]:
        """The end offset (the next record's) of the input partition of each of a position
        token's ``entries``, by ``"topic:partition"``, asked of the cluster; those it could not
        learn are left out."""
        ...


async def build_in_slices(
    ranks: TableRanks, partition: int, store: OrderedStore, may_build: Callable[[], bool], windows: int
) -> None:
    """Build the partition's ranked windows from ``store``, ``windows`` at a time, yielding the
    event loop between slices (processing and other queries go on), while ``may_build()``
    holds (the partition still held whole); concurrent calls share one build."""
    while may_build():
        if ranks.build_step(partition, store, windows) is not None:
            return
        await asyncio.sleep(0)


@dataclass(frozen=True)
class ReadOptions:
    """The parameters every query takes: ``after`` and ``wait`` (read-your-writes) and
    ``stale_ok`` (standby reads)."""

    token: PositionToken | None
    token_text: str | None
    wait_s: float
    stale_ok: bool
    #: answer committed state only (``isolation=committed``)
    committed: bool = False

    def forwarded_query(self) -> dict[str, str]:
        query = {"wait": str(self.wait_s), "stale_ok": "true" if self.stale_ok else "false"}
        if self.committed:
            query["isolation"] = "committed"
        if self.token_text:
            query["after"] = self.token_text
        return query


def read_options(request: web.Request, reads: TableReads, table: str) -> ReadOptions:
    raw_wait = request.query.get("wait")
    wait_s = DEFAULT_WAIT_S
    if raw_wait is not None:
        try:
            wait_s = float(raw_wait)
        except ValueError:
            raise BadQuery(f"`wait` must be a number of seconds, got {raw_wait!r}") from None
        if not 0 <= wait_s <= MAX_WAIT_S:
            raise BadQuery(f"`wait` must be between 0 and {MAX_WAIT_S:g} seconds, got {raw_wait!r}")
    source, topics = reads.source_inputs(table)
    text = request.query.get("after")
    token = read_token(text, source, topics, reads.partition_count(table))
    stale_ok = bool(bool_param(request, "stale_ok"))
    if stale_ok and text:
        raise BadQuery("`after` and `stale_ok` do not go together: a standby cannot promise a position")
    isolation = request.query.get("isolation", "uncommitted")
    if isolation not in ISOLATIONS:
        raise BadQuery(f"`isolation` must be one of {', '.join(ISOLATIONS)}, got {isolation!r}")
    return ReadOptions(token, text, wait_s, stale_ok, isolation == "committed")


def window_filter(request: web.Request) -> WindowFilter:
    start, end = time_range(request)
    return WindowFilter(start, end, bool_param(request, "closed"))


def filter_query(wanted: WindowFilter) -> dict[str, str]:
    query = {}
    if wanted.from_ms is not None:
        query["from"] = str(wanted.from_ms)
    if wanted.to_ms is not None:
        query["to"] = str(wanted.to_ms)
    if wanted.closed is not None:
        query["closed"] = "true" if wanted.closed else "false"
    return query


def bounded(request: web.Request, name: str, default: int, maximum: int) -> int:
    value = int_param(request, name, minimum=1)
    if value is None:
        return default
    if value > maximum:
        raise BadQuery(f"`{name}` must be at most {maximum}, got {value}")
    return value
