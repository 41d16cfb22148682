"""Live subscriptions: ``GET /api/tables/{table}/subscribe?key=&heartbeat=`` streams a table's
changes as server-sent events (:mod:`streams.api.sse`).

A subscription reads the table's **output topic** with ``read_committed``
(:mod:`streams.api.output_reader`), so it sends only committed records, any worker can serve any
subscription, and a subscriber resumes on another worker after a rebalance or a restart
exactly where it left off: event ids are positions in the output topic
(:mod:`streams.api.event_ids`). Only tables with an ``output`` topic can be followed (else 409
``no_output``).

Without ``Last-Event-ID`` (the header, or ``?last_event_id=`` for clients that cannot set
headers) the stream is:

1. the end offsets of committed records are taken;
2. ``event: snapshot`` per current window (data ``{"key","start","end","closed","value",
   "version"}``, no id), from the table's query routes (:mod:`streams.api.subscription_snapshot`);
3. ``event: snapshot_end`` (data ``{"windows": n}``) with the id of the end offsets of 1;
4. ``event: record`` per output record from those offsets on (data: the record's JSON with
   ``key``, ``partition`` and ``offset``; id: its position), for one key only its records.

With ``Last-Event-ID`` there is no snapshot: records follow from right after that id; a
malformed id, or one beyond the end of the topic, is answered 400 ``bad_last_event_id`` and
one whose records retention removed 410 ``expired_last_event_id``, before the stream starts.
Windows the snapshot shows may already include changes whose records follow it (the snapshot
is read after the offsets are taken); a record's ``version`` tells them apart.

Every ``heartbeat`` seconds without an event (1 to 60, default 15) the stream carries the
comment ``: heartbeat <unix ms>``. A worker serves at most ``api_max_subscribers``
subscriptions (beyond: 503 ``too_many_subscribers`` with ``Retry-After``). A client that falls
:data:`BUFFER_EVENTS` events behind gets ``event: dropped`` (data ``{"reason": "slow_client",
"last_event_id"}``) and the stream ends; so does every stream when the worker stops (reason
``worker_stopping``) or its reads fail (``output_error``). Each subscription holds one Kafka
consumer, closed when the client goes away or the worker stops.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web
from aiokafka.errors import KafkaError

from streams.api.api_forward import Peers
from streams.api.api_routes import Answer, BadQuery, Param, Route, error_response, int_param
from streams.api.event_buffer import EventBuffer
from streams.api.event_ids import BadEventId
from streams.api.http_api import TableQueries
from streams.api.output_reader import OutputReader
from streams.api.sse import MEDIA_TYPE, comment_bytes, event_bytes
from streams.api.subscription_follow import Follow, KeyFollow, RecordEvent, TableFollow
from streams.api.subscription_snapshot import SnapshotUnavailable, key_windows, table_windows
from streams.api.table_params import TABLE_PARAM, unknown_table
from streams.kafka.kafka_security import PLAINTEXT, KafkaSecurity
from streams.kafka.partitioning import key_partition
from streams.telemetry.logfmt import logfmt
from streams.telemetry.metrics import SUBSCRIPTION_EVENTS, SUBSCRIPTIONS, SUBSCRIPTIONS_DROPPED

log = logging.getLogger("continust.subscriptions")

#: events a subscription holds for a client that does not keep up, before it is dropped
BUFFER_EVENTS = 1000
#: what ``Retry-After`` says when the worker cannot take a subscription now (seconds)
RETRY_AFTER_S = 5
HEARTBEAT_DEFAULT_S, HEARTBEAT_MIN_S, HEARTBEAT_MAX_S = 15, 1, 60
#: a client that takes no bytes for this long is gone (seconds)
WRITE_TIMEOUT_S = 30.0
#: records asked of the output topic at once, and how long one fetch waits (ms)
FETCH_MAX_RECORDS, FETCH_WAIT_MS = 500, 1000


@dataclass(frozen=True)
class Followable:
    """A table's output topic (``None``: it has none) and the topic's number of partitions
    (that of the table's keyed stream: outputs are co-partitioned with it)."""

    topic: str | None
    partitions: int


class Subscriptions:
    """The live subscriptions of one worker: at most ``limit`` at once, each ended when the
    worker's web server shuts down (:meth:`stop_with`)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: set[EventBuffer[RecordEvent]] = set()

    def __len__(self) -> int:
        return len(self._open)

    def open(self) -> EventBuffer[RecordEvent] | None:
        """A buffer for a new subscription; ``None`` when ``limit`` are open."""
        if len(self._open) >= self.limit:
            return None
        buffer: EventBuffer[RecordEvent] = EventBuffer(BUFFER_EVENTS)
        self._open.add(buffer)
        SUBSCRIPTIONS.set(len(self._open))
        return buffer

    def close(self, buffer: EventBuffer[RecordEvent]) -> None:
        self._open.discard(buffer)
        SUBSCRIPTIONS.set(len(self._open))

    def stop_all(self) -> None:
        """End every open subscription (reason ``worker_stopping``)."""
        for buffer in list(self._open):
            buffer.end("worker_stopping")

    def stop_with(self, web_app: web.Application) -> None:
        """End every subscription when ``web_app`` shuts down: before the server waits for its
        handlers, so streams do not hold the worker's shutdown."""

        async def on_shutdown(_: web.Application) -> None:
            self.stop_all()

        web_app.on_shutdown.append(on_shutdown)


def heartbeat_param(request: web.Request) -> int:
    value = int_param(request, "heartbeat")
    if value is None:
        return HEARTBEAT_DEFAULT_S
    if not HEARTBEAT_MIN_S <= value <= HEARTBEAT_MAX_S:
        raise BadQuery(f"`heartbeat` must be {HEARTBEAT_MIN_S} to {HEARTBEAT_MAX_S} seconds, got {value}")
    return value


def last_event_id(request: web.Request) -> str | None:
    """The id to resume after: the ``Last-Event-ID`` header, else ``?last_event_id=``."""
    return request.headers.get("Last-Event-ID") or request.query.get("last_event_id") or None


def _unavailable(error: str, detail: str) -> web.Response:
    return error_response(503, error, detail, {"Retry-After": str(RETRY_AFTER_S)})


class Stream:
    """One subscription's open stream: writes events and heartbeats, each write bounded by
    :data:`WRITE_TIMEOUT_S`; :attr:`gone` once the client stopped taking them."""

    def __init__(self, request: web.Request, response: web.StreamResponse) -> None:
        self.request = request
        self.response = response
        self.gone = False
        #: the client took no byte for WRITE_TIMEOUT_S: it does not keep up
        self.stalled = False
        self.sent = 0
        self.last_id: str | None = None
        self.last_write = time.monotonic()

    async def _write(self, data: bytes) -> None:
        if self.gone:
            return
        transport = self.request.transport
        if transport is None or transport.is_closing():
            self.gone = True
            return
        try:
            await asyncio.wait_for(self.response.write(data), WRITE_TIMEOUT_S)
        except TimeoutError:
            self.gone = self.stalled = True
        except (ConnectionError, RuntimeError):
            self.gone = True
        self.last_write = time.monotonic()

    async def event(self, name: str, data: Any, id: str | None = None, counted: bool = True) -> None:
        await self._write(event_bytes(name, orjson.dumps(data).decode(), id))
        if id is not None:
            self.last_id = id
        if counted and not self.gone:
            self.sent += 1
            SUBSCRIPTION_EVENTS.inc()

    async def heartbeat(self) -> None:
        await self._write(comment_bytes(f"heartbeat {int(time.time() * 1000)}"))


async def pump(reader: OutputReader, follow: Follow, buffer: EventBuffer[RecordEvent]) -> None:
    """Offer the events of the output records to ``buffer`` until it overflows or ends; a
    failed read ends it with ``output_error``."""
    try:
        while not buffer.overflowed and buffer.ended is None:
            for record in await reader.fetch(FETCH_WAIT_MS, FETCH_MAX_RECORDS):
                event = follow.event(record)
                if event is not None and not buffer.offer(event):
                    return
    except Exception as exc:  # a Kafka error, or anything else: the subscriber is told
        log.warning(logfmt("subscription.read_failed", topic=reader.topic, error=repr(exc)))
        buffer.end("output_error")


async def serve_records(stream: Stream, buffer: EventBuffer[RecordEvent], heartbeat_s: int) -> str | None:
    """Write the buffer's events to the stream until the client goes away (``None``; or
    ``"slow_client"`` when it stalled) or the subscription is dropped (its reason, told to the
    client in ``event: dropped``)."""
    while not stream.gone:
        reason = "slow_client" if buffer.overflowed else None
        if reason is None:
            event = buffer.take()
            if event is not None:
                await stream.event("record", event.data, event.id)
                continue
            reason = buffer.ended
        if reason is not None:
            await stream.event("dropped", {"reason": reason, "last_event_id": stream.last_id}, counted=False)
            return reason
        quiet = time.monotonic() - stream.last_write
        if not await buffer.changed(max(0.0, heartbeat_s - quiet)):
            await stream.heartbeat()
    return "slow_client" if stream.stalled else None


@dataclass(frozen=True)
class Start:
    """Where a subscription starts reading its output partitions (``start``: offset per
    partition), and the snapshot it sends first (``None`` when it resumes): its first page, read
    before the stream opens, and the pages after it."""

    start: Mapping[int, int]
    first_page: list[dict[str, Any]]
    pages: AsyncIterator[list[dict[str, Any]]] | None


class SubscriptionRouteSet:
    """The subscribe route's handler over the pipeline's ``tables`` (by name), its readers
    connecting to ``bootstrap_servers`` as ``security`` says."""

    def __init__(
        self,
        queries: TableQueries,
        peers: Peers,
        subscriptions: Subscriptions,
        tables: Mapping[str, Followable],
        bootstrap_servers: str,
        security: KafkaSecurity = PLAINTEXT,
    ) -> None:
        self.queries = queries
        self.peers = peers
        self.subscriptions = subscriptions
        self.tables = tables
        self.bootstrap_servers = bootstrap_servers
        self.security = security

    async def subscribe(self, request: web.Request) -> web.StreamResponse:
        table = request.match_info["table"]
        missing = unknown_table(self.queries.table_names(), table)
        if missing is not None:
            return missing
        output = self.tables[table]
        if output.topic is None:
            return error_response(
                409, "no_output", f"table {table!r} has no output topic; only tables with one can be followed"
            )
        heartbeat_s = heartbeat_param(request)
        key = request.query.get("key") or None
        follow: Follow = (
            KeyFollow(key, key_partition(key.encode(), output.partitions))
            if key is not None
            else TableFollow(output.partitions)
        )
        resume_id = last_event_id(request)
        try:
            resume = follow.resume(resume_id) if resume_id is not None else None
        except BadEventId as exc:
            return error_response(400, "bad_last_event_id", str(exc))
        buffer = self.subscriptions.open()
        if buffer is None:
            return _unavailable(
                "too_many_subscribers", f"this worker serves {self.subscriptions.limit} subscriptions already"
            )
        reader = OutputReader(self.bootstrap_servers, output.topic, follow.partitions, self.security)
        try:
            started = await self.start(request, table, key, resume, reader)
            if isinstance(started, web.StreamResponse):
                return started
            return await self.follow(request, table, key, follow, started, reader, buffer, heartbeat_s)
        finally:
            await reader.close()
            self.subscriptions.close(buffer)

    async def start(
        self,
        request: web.Request,
        table: str,
        key: str | None,
        resume: dict[int, int] | None,
        reader: OutputReader,
    ) -> Start | web.StreamResponse:
        """Where the subscription starts: after the resumed id (400 past a partition's end, 410
        before its beginning), or at the output's end after a snapshot of the table (or key)."""
        try:
            bounds = await reader.start()
        except (KafkaError, OSError) as exc:
            return _unavailable("broker_unavailable", f"cannot read the output topic: {exc!r}")
        if resume is not None:
            for partition, offset in resume.items():
                if offset > bounds.end[partition]:
                    return error_response(
                        400,
                        "bad_last_event_id",
                        f"the id names offset {offset} of partition {partition}, beyond its end "
                        f"{bounds.end[partition]}",
                    )
                if offset < bounds.beginning[partition]:
                    return error_response(
                        410,
                        "expired_last_event_id",
                        f"the records after the id are gone from partition {partition} (it starts "
                        f"at {bounds.beginning[partition]}); subscribe again without an id",
                    )
            return Start(resume, [], None)
        pages = (
            _one_page(key_windows(self.peers, request, table, key))
            if key is not None
            else table_windows(self.peers, request, table)
        )
        try:
            first_page = await anext(pages)
        except SnapshotUnavailable as exc:
            headers = {"Retry-After": str(RETRY_AFTER_S)} if exc.status == 503 else None
            return error_response(
                exc.status, str(exc.body.get("error")), str(exc.body.get("detail", "")), headers
            )
        return Start(bounds.end, first_page, pages)

    async def follow(
        self,
        request: web.Request,
        table: str,
        key: str | None,
        follow: Follow,
        started: Start,
        reader: OutputReader,
        buffer: EventBuffer[RecordEvent],
        heartbeat_s: int,
    ) -> web.StreamResponse:
        """The event stream: the snapshot (if any), then the output records from the start."""
        reader.seek(started.start)
        response = web.StreamResponse(
            headers={"Content-Type": MEDIA_TYPE, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )
        await response.prepare(request)
        stream = Stream(request, response)
        resumed = started.pages is None
        log.info(
            logfmt("subscription.open", table=table, key=key, resume=resumed, open=len(self.subscriptions))
        )
        reason: str | None = None
        if started.pages is not None:
            end_id = follow.start_at(started.start)
            reason = await send_snapshot(stream, started.first_page, started.pages, end_id)
        reader_task = asyncio.create_task(pump(reader, follow, buffer))
        try:
            if reason is None:
                reason = await serve_records(stream, buffer, heartbeat_s)
        finally:
            reader_task.cancel()
            await asyncio.gather(reader_task, return_exceptions=True)
        if reason is not None:
            SUBSCRIPTIONS_DROPPED.labels(reason=reason).inc()
        keyed = {"key": key} if key is not None else {}
        log.info(logfmt("subscription.close", table=table, **keyed, events=stream.sent, dropped=reason or ""))
        return response


async def send_snapshot(
    stream: Stream,
    first_page: list[dict[str, Any]],
    pages: AsyncIterator[list[dict[str, Any]]],
    end_id: str,
) -> str | None:
    """The snapshot's events, then ``snapshot_end``; a later page that fails ends the stream
    with ``event: dropped`` (reason ``snapshot_failed``), returned."""
    windows = 0
    page: list[dict[str, Any]] | None = first_page
    while page is not None:
        for window in page:
            await stream.event("snapshot", window)
            windows += 1
        try:
            page = await anext(pages)
        except StopAsyncIteration:
            page = None
        except SnapshotUnavailable as exc:
            await stream.event(
                "dropped", {"reason": "snapshot_failed", **exc.body, "last_event_id": None}, counted=False
            )
            return "snapshot_failed"
    await stream.event("snapshot_end", {"windows": windows}, end_id)
    return None


STREAM_SCHEMA = {
    "type": "string",
    "description": "server-sent events: `snapshot` (data: a window {key, start, end, closed, "
    "value, version}), `snapshot_end` (data: {windows}; id: the position after the snapshot), "
    "`record` (data: an output record with key, partition and offset; id: its position), "
    "`dropped` (data: {reason, last_event_id}; the stream ends); comments `: heartbeat <unix ms>`",
}


def subscription_routes(
    queries: TableQueries,
    peers: Peers,
    subscriptions: Subscriptions,
    tables: Mapping[str, Followable],
    bootstrap_servers: str,
    security: KafkaSecurity = PLAINTEXT,
) -> list[Route]:
    """The subscribe route of ``tables`` (every table of the pipeline, by name); its readers
    connect to ``bootstrap_servers`` as ``security`` says."""
    h = SubscriptionRouteSet(queries, peers, subscriptions, tables, bootstrap_servers, security)
    return [
        Route(
            "GET",
            "/api/tables/{table}/subscribe",
            h.subscribe,
            "follow a table (or one key) live: a snapshot, then every committed output record",
            "subscribe",
            params=(
                TABLE_PARAM,
                Param("key", "query", {"type": "string"}, "follow only this key (default: the whole table)"),
                Param(
                    "heartbeat",
                    "query",
                    {"type": "integer", "minimum": HEARTBEAT_MIN_S, "maximum": HEARTBEAT_MAX_S},
                    f"seconds between heartbeat comments (default {HEARTBEAT_DEFAULT_S})",
                ),
                Param(
                    "last_event_id",
                    "query",
                    {"type": "string"},
                    "resume right after this event id (for clients that cannot set Last-Event-ID)",
                ),
                Param("Last-Event-ID", "header", {"type": "string"}, "resume right after this event id"),
            ),
            answers=(
                Answer(200, "the event stream", STREAM_SCHEMA, MEDIA_TYPE),
                Answer(400, "a bad parameter, or a Last-Event-ID that is not an id of this subscription"),
                Answer(404, "no such table"),
                Answer(409, "the table has no output topic"),
                Answer(410, "the records after Last-Event-ID were removed by retention"),
                Answer(
                    503,
                    "too many subscribers, no broker, or the snapshot's owner is restoring",
                    headers=("Retry-After",),
                ),
            ),
        )
    ]


async def _one_page(windows: Any) -> AsyncIterator[list[dict[str, Any]]]:
    yield await windows
