"""The query routes of the HTTP API: catalog, point query, scans and top-N, answered identically
by any worker, wherever a table's partitions are owned.

A route that reads several partitions asks each partition's owner (this worker itself, or
another one over :class:`~streams.api.api_forward.Peers`, with the caller's token) for that
partition's own answer, on the internal-but-documented routes under
``/api/tables/{table}/partitions/...``, and merges the answers:

``GET /api/tables``: every table's catalog entry (:mod:`streams.api.table_catalog`).
``GET /api/tables/{table}``: the entry, and per partition (``partition_details``) its owner,
standbys, stream time, processed positions and lag (each worker tells what it holds: ``GET
/api/tables/{table}/partitions``).
``GET /api/tables/{table}/keys/{key}``: one key's windows, from the owner of its partition (or,
with ``stale_ok``, a standby of it here).
``GET /api/tables/{table}/windows``: every key's windows in ``(key, start, end)`` order, a page
of at most ``limit`` with an opaque cursor (:mod:`streams.api.scan_cursor`) to the next.
``GET /api/tables/{table}/top``: the ``n`` keys with the best value of one aggregation, from
each partition's own top ``n``.

Every query answer carries ``"position"``: per partition read, its stream time and the largest
offset it has processed per input (``"topic:partition"``). Every query takes ``after`` (a
position token, :mod:`streams.api.positions`) and ``wait`` (seconds, default 5, at most 30): the
partitions it reads first wait until they have processed the token's entries for them; if they
have not within ``wait``, the answer is 503 ``position_not_reached`` with the positions reached
and ``Retry-After``. A malformed token, or one of another source, is 400 ``bad_token``.

``stale_ok=true`` (point query, scans and top-N, without ``after``): a worker holding a partition as a
standby answers from its committed state, with ``"standby": true`` and per partition how many
changelog records it is behind the owner's (``"behind"``); otherwise the owner answers and
``"standby"`` is false.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, replace
from itertools import islice
from typing import Any

from aiohttp import web

from streams.api.api_auth import TOKEN
from streams.api.api_client import client_of
from streams.api.api_forward import PEER_TIMEOUT_S, Peers, forwarded, same_worker
from streams.api.api_routes import Answer, BadQuery, Param, Route, error_response, json_response
from streams.api.position_waits import RETRY_AFTER_S as WAIT_RETRY_AFTER_S
from streams.api.position_waits import WaitSlots, beyond_end
from streams.api.query_budget import QueryBudget
from streams.api.query_schemas import (
    DETAIL_ANSWER,
    HELD_ENTRY,
    KEY_ANSWER,
    PARTITION_PARAM,
    PARTITION_SCAN_ANSWER,
    PARTITION_TOP_ANSWER,
    READ_PARAMS,
    SCAN_ANSWER,
    SCAN_PARAMS,
    STALE_PARAM,
    TOP_ANSWER,
    TOP_PARAMS,
    object_schema,
    query_answers,
)
from streams.api.read_your_writes import BadPositionToken, entries_for, reached
from streams.api.scan_cursor import BadCursor, ScanCursor
from streams.api.table_catalog import TABLE_SCHEMA
from streams.api.table_params import TABLE_PARAM, TIME_PARAMS, unknown_table
from streams.api.table_reads import (
    DEFAULT_LIMIT,
    DEFAULT_TOP,
    MAX_LIMIT,
    MAX_TOP,
    ReadOptions,
    TableReads,
    bounded,
    filter_query,
    read_options,
    window_filter,
)
from windows.table_read import PartitionView, rank_key


def checked(handler: Callable[[web.Request], Awaitable[web.StreamResponse]], slots: WaitSlots) -> Any:
    """The handler, with a bad token answered 400 ``bad_token`` and a bad cursor 400
    ``bad_cursor`` (other bad parameters: 400 ``bad_query``, by the JSON error middleware); a
    query with ``after`` takes one of its client's ``slots`` while it runs (a forwarded one too,
    counted against the token it carries; with the API open, only where it arrived)."""

    async def run(request: web.Request) -> web.StreamResponse:
        counted = bool(request.query.get("after")) and not (forwarded(request) and request.get(TOKEN) is None)
        with slots.hold(client_of(request)) if counted else nullcontext(True) as held:
            if not held:
                return error_response(
                    429,
                    "too_many_waits",
                    f"this client has {slots.per_client} queries waiting for a position here, its most",
                    {"Retry-After": str(WAIT_RETRY_AFTER_S)},
                )
            try:
                return await handler(request)
            except BadPositionToken as exc:
                return error_response(400, "bad_token", str(exc))
            except BadCursor as exc:
                return error_response(400, "bad_cursor", str(exc))
            except UnknownPartition as exc:
                return error_response(404, "unknown_partition", str(exc))

    return run


class UnknownPartition(LookupError):
    """A partition route names a partition the table does not have (404 ``unknown_partition``)."""


def documented(route: Route, reads: TableReads) -> Route:
    """``route`` with the parameters whose values the pipeline fixes stated in its document: a
    table of the pipeline, an aggregation of one, a partition below the largest count."""
    tables = reads.table_names()
    by = sorted({name for table in tables for name in reads.aggregation_names(table)})
    partitions = max((reads.partition_count(table) for table in tables), default=1)
    narrowed: dict[str, dict[str, Any]] = {
        "table": {"type": "string", "enum": tables},
        "by": {"type": "string", "enum": by},
        "partition": {"type": "integer", "minimum": 0, "maximum": partitions - 1},
    }
    params = tuple(
        replace(p, schema=narrowed[p.name]) if p.name in narrowed and p.where != "header" else p
        for p in route.params
    )
    return replace(route, params=params)


#: a partition's answer: HTTP status and JSON body
Reply = tuple[int, dict[str, Any]]


@dataclass(frozen=True)
class Ready:
    """A partition this worker answers for, checked (and waited for, with ``after``): read it
    with no await in between, or check it again (:meth:`TableRouteSet.still_ready`)."""

    partition: int
    #: from a standby's committed state
    standby: bool
    #: from committed state only
    committed: bool


@dataclass(frozen=True)
class Merged:
    """What a merged read took, and the views of this worker's partitions it read."""

    items: list[dict[str, Any]]
    views: list[PartitionView]


def not_ready(detail: str = "partition ownership is being (re)assigned; retry") -> Reply:
    return 503, {"error": "not_ready", "detail": detail}


class TableRouteSet:
    """The routes' handlers over ``reads``, asking other workers through ``peers``."""

    def __init__(
        self,
        reads: TableReads,
        peers: Peers,
        budget: QueryBudget | None = None,
        slots: WaitSlots | None = None,
    ) -> None:
        self.reads = reads
        self.peers = peers
        self.budget = budget or QueryBudget()
        self.slots = slots or WaitSlots()

    # -- one partition, here -----------------------------------------------------------------

    def serves(self, table: str, partition: int, options: ReadOptions) -> bool | None:
        """Whether this worker answers for the partition: ``False`` from its active state,
        ``True`` from its standby's committed state, ``None``: it does not."""
        role = self.reads.role(table, partition)
        if role == "active":
            return False
        if role == "standby" and options.stale_ok and options.token is None:
            return True
        return None

    async def local(
        self,
        table: str,
        partition: int,
        options: ReadOptions,
        read: Callable[[PartitionView], dict[str, Any]],
    ) -> Reply:
        """The partition's answer from this worker: ``read`` of its view, with its position
        (and, from a standby, how far behind it is), once it reached the token's entries."""
        ready = await self.prepare(table, partition, options)
        if not isinstance(ready, Ready):
            return ready
        view = self.reads.view(table, partition, ready.committed)
        body = await self.budget.run(lambda: read(view))
        body.update(await self.read_block(table, ready, view))
        return 200, body

    async def read_block(self, table: str, ready: Ready, view: PartitionView) -> dict[str, Any]:
        """The ``position``, ``standby``, ``committed`` (and ``behind``) of a partition's answer."""
        block: dict[str, Any] = {
            "position": {str(ready.partition): view.position()},
            "standby": ready.standby,
            "committed": ready.committed,
        }
        if ready.standby:
            block["behind"] = {str(ready.partition): await self.reads.standby_behind(table, ready.partition)}
        return block

    def still_ready(self, table: str, ready: Ready) -> Reply | None:
        """``None`` when the worker still holds the partition as it did when ``ready`` was
        given (an await may have let a rebalance start); else the partition's 503."""
        reads = self.reads
        if reads.role(table, ready.partition) != ("standby" if ready.standby else "active"):
            return not_ready("the partition moved while the query ran; retry")
        if not ready.standby and reads.restoring() and not reads.kept(table, ready.partition):
            return 503, {
                "error": "restoring",
                "detail": "the owner is rebalancing or restoring its tables; retry",
            }
        return None

    async def prepare(self, table: str, partition: int, options: ReadOptions) -> Reply | Ready:
        """Whether this worker can answer for the partition now (:class:`Ready`, once it
        reached the token's entries), or the partition's failure."""
        reads = self.reads
        standby = self.serves(table, partition, options)
        if standby is None:
            return 421, {"error": "not_owner", "detail": f"this worker does not hold partition {partition}"}
        committed = standby or options.committed
        if not standby and reads.restoring():
            if not reads.kept(table, partition):
                return 503, {
                    "error": "restoring",
                    "detail": "the owner is rebalancing or restoring its tables; retry",
                }
            committed = True  # kept through the rebalance: its committed state is whole
        entries = entries_for(options.token, partition)
        if entries:
            past = beyond_end(entries, await reads.input_ends(entries))
            if past is not None:
                return 400, {
                    "error": "bad_token",
                    "detail": f"the token names offset {past.offset} of {past.topic}:{past.partition}, "
                    "past its end: no record was written there",
                }
            done = await reads.wait_processed(
                table,
                partition,
                lambda: reached(entries, reads.view(table, partition, committed).offsets()),
                options.wait_s,
            )
            if reads.role(table, partition) != "active":
                return not_ready("the partition moved while waiting; retry")
            if not done:
                return 503, {
                    "error": "position_not_reached",
                    "detail": f"partition {partition} did not process the token's records within "
                    f"{options.wait_s:g} s",
                    "position": {str(partition): reads.view(table, partition, committed).position()},
                }
        return Ready(partition, standby, committed)

    async def merged(
        self,
        request: web.Request,
        table: str,
        options: ReadOptions,
        read: Callable[[PartitionView], dict[str, Any]],
        route: str,
        query: Mapping[str, str],
        lazy: Callable[[PartitionView], Iterator[dict[str, Any]]],
        field: str,
        order: Callable[[dict[str, Any]], Any],
        take: int,
        ranked: bool = False,
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | web.Response:
        """The first ``take`` items, in ``order``, of every partition's answer: the page
        (``field`` of the answer to ``route``) of each partition another worker holds, merged
        with the ``lazy`` reads of those this worker holds, which read only as far as the
        merge takes them; and the partitions' answers without their items (positions, ``more``).
        A partition that fails makes the whole answer its failure."""
        partitions = range(self.reads.partition_count(table))

        async def one(partition: int) -> Reply | Ready:
            if self.serves(table, partition, options) is None:
                return await self.partition_reply(request, table, partition, options, read, route, query)
            ready = await self.prepare(table, partition, options)
            if ranked and isinstance(ready, Ready) and not ready.standby:
                await self.reads.rank(table, partition)
            return ready

        if options.token is None and all(self.serves(table, p, options) is not None for p in partitions):
            sources = [await one(p) for p in partitions]  # nothing to wait for: no task each
        else:
            sources = list(await asyncio.gather(*(one(p) for p in partitions)))
        replies = [source for source in sources if not isinstance(source, Ready)]
        failed = first_failure(replies)
        if failed is not None:
            return failed
        readies = [source for source in sources if isinstance(source, Ready)]

        def merge() -> Merged | Reply:
            views = []
            for ready in readies:  # no await since here: the views are read as they are now
                gone = self.still_ready(table, ready)
                if gone is not None:
                    return gone
                views.append(self.reads.view(table, ready.partition, ready.committed))
            items = [lazy(view) for view in views] + [iter(body[field]) for _, body in replies]
            return Merged(list(islice(heapq.merge(*items, key=order), take)), views)

        done = await self.budget.run(merge)
        if not isinstance(done, Merged):
            return reply_response(done)
        bodies = [body for _, body in replies]
        for ready, view in zip(readies, done.views, strict=True):
            bodies.append(await self.read_block(table, ready, view))
        return done.items, bodies

    async def partition_reply(
        self,
        request: web.Request,
        table: str,
        partition: int,
        options: ReadOptions,
        read: Callable[[PartitionView], dict[str, Any]],
        route: str,
        query: Mapping[str, str],
    ) -> Reply:
        """The partition's answer, from here or from its owner's ``route`` under
        ``/api/tables/{table}/partitions/{partition}/``; with ``stale_ok``, when the owner
        cannot answer (unknown, unreachable, restoring), from another worker holding a standby
        of it (:meth:`from_a_standby`)."""
        if self.serves(table, partition, options) is not None:
            return await self.local(table, partition, options, read)
        owner = self.reads.owner(table, partition)
        path = f"/api/tables/{table}/partitions/{partition}/{route}"
        forwarded_query = {**query, **options.forwarded_query()}
        if owner is None or same_worker(owner, self.reads.own_url()):
            reply = not_ready()
        else:
            reply = await self.peers.get_json(
                request, owner, path, forwarded_query, timeout_s=options.wait_s + PEER_TIMEOUT_S
            )
            if reply[0] == 421:
                reply = not_ready("owners disagree during a rebalance; retry")
            elif not isinstance(reply[1], dict):
                reply = 503, {"error": "owner_unreachable", "detail": f"{owner} answered something not JSON"}
        if reply[0] == 503 and options.stale_ok and options.token is None:
            return await self.from_a_standby(request, owner, path, forwarded_query) or reply
        return reply

    async def from_a_standby(
        self, request: web.Request, owner: str | None, path: str, query: Mapping[str, str]
    ) -> Reply | None:
        """The answer of the first other worker that holds a standby of the partition (the
        owner and this worker aside: this one would have answered itself), ``None`` when none
        does. Each is asked in turn; one without a standby refuses at once (a partition route
        answers 421, a point query 503 `not_ready`)."""
        own = self.reads.own_url()
        for worker in self.reads.workers():
            if same_worker(worker, own) or (owner is not None and same_worker(worker, owner)):
                continue
            status, body = await self.peers.get_json(request, worker, path, query, timeout_s=PEER_TIMEOUT_S)
            if status == 200 and isinstance(body, dict) and body.get("standby"):
                return status, body
        return None

    # -- handlers ----------------------------------------------------------------------------

    def guarded(
        self, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """``handler``, for a table of the pipeline only: any other ``{table}`` is 404
        ``unknown_table``."""

        async def run(request: web.Request) -> web.StreamResponse:
            missing = unknown_table(self.reads.table_names(), request.match_info["table"])
            return missing if missing is not None else await handler(request)

        return run

    async def catalog(self, request: web.Request) -> web.StreamResponse:
        return json_response({"tables": [self.reads.description(t) for t in self.reads.table_names()]})

    async def held_partitions(self, request: web.Request) -> web.StreamResponse:
        table = request.match_info["table"]
        return json_response({"worker": self.reads.own_url(), "partitions": await self._held(table)})

    async def _held(self, table: str) -> list[dict[str, Any]]:
        reads, held = self.reads, []
        for partition in range(reads.partition_count(table)):
            role = reads.role(table, partition)
            if role is None:
                continue
            entry: dict[str, Any] = {"partition": partition, "role": role}
            entry.update(reads.view(table, partition, role == "standby").position())
            if role == "active":
                entry["lag"] = await reads.lag(table, partition)
            else:
                entry["behind"] = await reads.standby_behind(table, partition)
            held.append(entry)
        return held

    async def table_detail(self, request: web.Request) -> web.StreamResponse:
        table = request.match_info["table"]
        reads, own = self.reads, self.reads.own_url()

        async def ask(worker: str) -> tuple[str, list[dict[str, Any]] | None]:
            if same_worker(worker, own):
                return worker, await self._held(table)
            status, body = await self.peers.get_json(request, worker, f"/api/tables/{table}/partitions", {})
            if status != 200 or not isinstance(body, dict):
                return worker, None
            return worker, list(body.get("partitions", []))

        workers = sorted({*reads.workers(), own})
        answers = await asyncio.gather(*(ask(w) for w in workers))
        active: dict[int, dict[str, Any]] = {}
        standbys: dict[int, list[str]] = {}
        for worker, held in answers:
            for entry in held or ():
                if entry.get("role") == "active":
                    active[entry["partition"]] = entry
                elif entry.get("role") == "standby":
                    standbys.setdefault(entry["partition"], []).append(worker)
        partitions = []
        for p in range(reads.partition_count(table)):
            entry = active.get(p, {})
            partitions.append(
                {
                    "partition": p,
                    "owner": reads.owner(table, p),
                    "standbys": sorted(standbys.get(p, [])),
                    "stream_time": entry.get("stream_time"),
                    "inputs": entry.get("inputs", {}),
                    "lag": entry.get("lag"),
                }
            )
        unanswered = sorted(w for w, held in answers if held is None)
        return json_response(
            {**reads.description(table), "partition_details": partitions, "unanswered": unanswered}
        )

    async def key(self, request: web.Request) -> web.StreamResponse:
        table, key = request.match_info["table"], request.match_info["key"]
        wanted = window_filter(request)
        options = read_options(request, self.reads, table)
        partition = self.reads.partition_of(table, key)

        def read(view: PartitionView) -> dict[str, Any]:
            return {"table": table, "key": key, "windows": view.key_windows(key, wanted)}

        if self.serves(table, partition, options) is not None:
            return reply_response(await self.local(table, partition, options, read))
        owner = self.reads.owner(table, partition)
        if forwarded(request):  # asked by another worker: this one answers for itself only
            return reply_response(not_ready())
        if owner is None or same_worker(owner, self.reads.own_url()):
            answer = reply_response(not_ready())
        else:
            answer = await self.peers.forward(request, owner, timeout_s=options.wait_s + PEER_TIMEOUT_S)
        if answer.status == 503 and options.stale_ok and options.token is None:
            copy = await self.from_a_standby(request, owner, request.path, dict(request.query))
            if copy is not None:
                return reply_response(copy)
        return answer

    def _partition(self, request: web.Request, table: str) -> int:
        try:
            partition = int(request.match_info["partition"])
        except ValueError:
            raise BadQuery("`partition` must be an integer") from None
        if not 0 <= partition < self.reads.partition_count(table):
            raise UnknownPartition(
                f"table {table!r} has partitions 0 to {self.reads.partition_count(table) - 1}"
            )
        return partition

    def _scan_read(
        self, request: web.Request, table: str
    ) -> tuple[Callable[[PartitionView], dict[str, Any]], dict[str, str]]:
        wanted = window_filter(request)
        limit = bounded(request, "limit", DEFAULT_LIMIT, MAX_LIMIT)
        prefix = request.query.get("key_prefix", "")
        cursor_text = request.query.get("cursor") or None
        after = None if cursor_text is None else ScanCursor.decode(cursor_text).as_tuple()

        def read(view: PartitionView) -> dict[str, Any]:
            windows, more = view.scan(after, prefix, wanted, limit)
            return {"table": table, "windows": windows, "more": more}

        query = {**filter_query(wanted), "limit": str(limit), "key_prefix": prefix}
        if cursor_text is not None:
            query["cursor"] = cursor_text
        return read, query

    async def partition_windows(self, request: web.Request) -> web.StreamResponse:
        table = request.match_info["table"]
        partition = self._partition(request, table)
        read, _ = self._scan_read(request, table)
        options = read_options(request, self.reads, table)
        return reply_response(await self.local(table, partition, options, read))

    async def scan(self, request: web.Request) -> web.StreamResponse:
        table = request.match_info["table"]
        read, query = self._scan_read(request, table)
        limit = int(query["limit"])
        options = read_options(request, self.reads, table)
        wanted, prefix = window_filter(request), query["key_prefix"]
        cursor_text = query.get("cursor")
        after = None if cursor_text is None else ScanCursor.decode(cursor_text).as_tuple()
        done = await self.merged(
            request,
            table,
            options,
            read,
            "windows",
            query,
            lazy=lambda view: view.windows_after(after, prefix, wanted),
            field="windows",
            order=lambda w: (w["key"], w["start"], w["end"]),
            take=limit + 1,
        )
        if isinstance(done, web.Response):
            return done
        page, bodies = done
        more = len(page) > limit or any(b.get("more") for b in bodies)
        page = page[:limit]
        cursor = (
            ScanCursor(page[-1]["key"], page[-1]["start"], page[-1]["end"]).encode()
            if more and page
            else None
        )
        return json_response({"table": table, "windows": page, "next_cursor": cursor, **read_blocks(bodies)})

    def _top_read(
        self, request: web.Request, table: str
    ) -> tuple[Callable[[PartitionView], dict[str, Any]], dict[str, str], str, int, bool]:
        by = request.query.get("by", "")
        names = self.reads.aggregation_names(table)
        if by not in names:
            raise BadQuery(f"`by` must be an aggregation of table {table!r}: {', '.join(names)}")
        n = bounded(request, "n", DEFAULT_TOP, MAX_TOP)
        order = request.query.get("order", "desc")
        if order not in ("desc", "asc"):
            raise BadQuery(f"`order` must be desc or asc, got {order!r}")
        descending = order == "desc"
        wanted = window_filter(request)

        def read(view: PartitionView) -> dict[str, Any]:
            return {"table": table, "top": view.top(by, n, descending, wanted)}

        query = {**filter_query(wanted), "by": by, "n": str(n), "order": order}
        return read, query, by, n, descending

    async def partition_top(self, request: web.Request) -> web.StreamResponse:
        table = request.match_info["table"]
        partition = self._partition(request, table)
        read, *_ = self._top_read(request, table)
        options = read_options(request, self.reads, table)
        if self.reads.role(table, partition) == "active":
            await self.reads.rank(table, partition)
        return reply_response(await self.local(table, partition, options, read))

    async def top(self, request: web.Request) -> web.StreamResponse:
        table = request.match_info["table"]
        read, query, by, n, descending = self._top_read(request, table)
        options = read_options(request, self.reads, table)
        wanted = window_filter(request)

        def ranked_here(view: PartitionView) -> Iterator[dict[str, Any]]:
            if view.ranks is None:  # a standby's, or while restoring: read the partition
                return iter(view.top(by, n, descending, wanted))
            return view.ranked(by, descending, wanted)

        done = await self.merged(
            request,
            table,
            options,
            read,
            "top",
            query,
            lazy=ranked_here,
            field="top",
            order=lambda entry: rank_key(entry, descending),
            take=n,
            ranked=True,
        )
        if isinstance(done, web.Response):
            return done
        best, bodies = done
        ranked = [{**entry, "rank": rank} for rank, entry in enumerate(best, start=1)]
        order = "desc" if descending else "asc"
        return json_response({"table": table, "by": by, "order": order, "top": ranked, **read_blocks(bodies)})


def read_blocks(bodies: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``position``, ``standby``, ``committed`` and ``behind`` blocks of the partitions'
    answers, as one (``committed``: every partition answered committed state only)."""
    position: dict[str, Any] = {}
    behind: dict[str, Any] = {}
    for body in bodies:
        position.update(body.get("position", {}))
        behind.update(body.get("behind", {}))
    blocks: dict[str, Any] = {
        "position": position,
        "standby": any(b.get("standby") for b in bodies),
        "committed": all(b.get("committed", False) for b in bodies),
    }
    if behind:
        blocks["behind"] = behind
    return blocks


def reply_response(reply: Reply) -> web.Response:
    """The answer of a reply; every 503 (restoring, ownership moving, an owner that did not
    answer, a position not reached) says when to retry."""
    status, body = reply
    headers = {"Retry-After": "1"} if status == 503 else None
    return json_response(body, status, headers)


def first_failure(replies: list[Reply]) -> web.Response | None:
    """The answer of a query one of whose partitions failed: the first failure, with the
    positions of every partition that told its own (for ``position_not_reached``)."""
    failures = [(status, body) for status, body in replies if status != 200]
    if not failures:
        return None
    status, body = failures[0]
    if body.get("error") == "position_not_reached":
        position: dict[str, Any] = {}
        for _, other in replies:
            position.update(other.get("position", {}) if isinstance(other.get("position"), dict) else {})
        body = {**body, "position": position}
    return reply_response((status, body))


def table_routes(
    reads: TableReads, peers: Peers, budget: QueryBudget | None = None, slots: WaitSlots | None = None
) -> list[Route]:
    """The query routes (see the module docstring)."""
    h = TableRouteSet(reads, peers, budget, slots)
    routes = [
        Route(
            "GET",
            "/api/tables",
            h.catalog,
            "every table: source, topics, window, aggregations, emit mode, output, partitions",
            "read",
            answers=(
                Answer(
                    200,
                    "the catalog",
                    object_schema(["tables"], {"tables": {"type": "array", "items": TABLE_SCHEMA}}),
                ),
            ),
        ),
        Route(
            "GET",
            "/api/tables/{table}",
            h.guarded(h.table_detail),
            "one table's catalog entry, and per partition its owner, standbys (the workers that "
            "report holding one), stream time, processed positions and lag (from its owner); "
            "`unanswered` lists the workers that did not answer",
            "read",
            params=(TABLE_PARAM,),
            answers=(Answer(200, "the table", DETAIL_ANSWER), Answer(404, "no such table")),
        ),
        Route(
            "GET",
            "/api/tables/{table}/partitions",
            h.guarded(h.held_partitions),
            "internal, documented: the partitions of the table this worker holds (active or "
            "standby), with stream time, processed positions, lag (active) or standby delay",
            "read",
            params=(TABLE_PARAM,),
            answers=(
                Answer(
                    200,
                    "this worker's partitions",
                    object_schema(
                        ["worker", "partitions"],
                        {"worker": {"type": "string"}, "partitions": {"type": "array", "items": HELD_ENTRY}},
                    ),
                ),
                Answer(404, "no such table"),
            ),
        ),
        Route(
            "GET",
            "/api/tables/{table}/keys/{key}",
            checked(slots=h.slots, handler=h.guarded(h.key)),
            "one key's windows overlapping [from, to), sorted by start, from the owner of its "
            "partition (or a standby here with `stale_ok`)",
            "read",
            params=(
                TABLE_PARAM,
                Param("key", "path", {"type": "string"}, "the key"),
                *TIME_PARAMS,
                *READ_PARAMS,
                STALE_PARAM,
            ),
            answers=query_answers(Answer(200, "the key's windows", KEY_ANSWER)),
        ),
        Route(
            "GET",
            "/api/tables/{table}/windows",
            checked(slots=h.slots, handler=h.guarded(h.scan)),
            "every key's windows in (key, start, end) order, a page at a time",
            "read",
            params=(TABLE_PARAM, *SCAN_PARAMS, *READ_PARAMS, STALE_PARAM),
            answers=query_answers(Answer(200, "a page of windows", SCAN_ANSWER)),
        ),
        Route(
            "GET",
            "/api/tables/{table}/top",
            checked(slots=h.slots, handler=h.guarded(h.top)),
            "the n keys with the largest (or smallest) value of one aggregation, each with its "
            "best window, ties broken by key; non-numeric values are skipped",
            "read",
            params=(TABLE_PARAM, *TOP_PARAMS, *READ_PARAMS, STALE_PARAM),
            answers=query_answers(Answer(200, "the top keys", TOP_ANSWER)),
        ),
        Route(
            "GET",
            "/api/tables/{table}/partitions/{partition}/windows",
            checked(slots=h.slots, handler=h.guarded(h.partition_windows)),
            "internal, documented: one partition's page of a scan, from the worker holding it",
            "read",
            params=(TABLE_PARAM, PARTITION_PARAM, *SCAN_PARAMS, *READ_PARAMS, STALE_PARAM),
            answers=query_answers(
                Answer(200, "the partition's page", PARTITION_SCAN_ANSWER), partition_route=True
            ),
        ),
        Route(
            "GET",
            "/api/tables/{table}/partitions/{partition}/top",
            checked(slots=h.slots, handler=h.guarded(h.partition_top)),
            "internal, documented: one partition's own top n, from the worker holding it",
            "read",
            params=(TABLE_PARAM, PARTITION_PARAM, *TOP_PARAMS, *READ_PARAMS, STALE_PARAM),
            answers=query_answers(
                Answer(200, "the partition's top keys", PARTITION_TOP_ANSWER), partition_route=True
            ),
        ),
    ]
    return [documented(route, reads) for route in routes]
