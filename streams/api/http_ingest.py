"""``POST /api/sources/{source}/events``: write events to a source's topic over HTTP (scope
``ingest``).

The body is one JSON object, a JSON array of objects, or NDJSON (:mod:`streams.api.ingest_body`,
which also says how records are numbered). Each record is checked by the source stage's rules;
the valid ones are written, keyed by their key field's text, to the source's first topic or to
the one ``?topic=`` names (another topic: 400 ``bad_query``), by an idempotent producer
(:mod:`streams.api.ingest_producer`). Answers:

- 202 ``{"source", "topic", "written": [{"index", "partition", "offset"}], "position"}``: every
  record written; ``position`` is a :class:`~streams.api.positions.PositionToken` naming, per topic
  partition and keyed partition (the key's partition among the source's keyed partitions), the
  last offset written, for a query's read-your-writes.
- 400 ``invalid_records``: some records were not valid; the valid ones are still written, and
  the body lists them (``written``, ``position``, ``null`` when none was) beside ``invalid``:
  ``[{"index", "reason", "detail"}]`` for each of the others.
- 400 ``empty_body`` (no record), 400 ``bad_query`` (``topic``), 404 ``unknown_source``,
  413 ``too_large`` (body over ``api_ingest_max_bytes``: read no further than the limit), 429
  ``rate_limited`` with ``Retry-After`` (whole seconds, 1 or more; nothing was written; see
  :mod:`streams.api.ingest_rate`), 503 ``unavailable`` (the cluster did not take the batch; records
  may or may not have been written).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

from streams.api.api_client import client_of
from streams.api.api_routes import Answer, BadQuery, Param, Route, error_response, json_response
from streams.api.http_server import DEFAULT_LIMITS, BodyTimeout, ConnectionLimits, read_within
from streams.api.ingest_body import NDJSON, EmptyBody, IngestBody, InvalidRecord, SourceRules, parse_body
from streams.api.ingest_producer import Placed, ProduceFailed, RecordRefused
from streams.api.ingest_rate import IngestRateLimit
from streams.api.positions import PositionToken, WrittenAt
from streams.kafka.partitioning import key_partition
from streams.telemetry.metrics import INGEST_RECORDS, INGEST_REJECTED

PATH = "/api/sources/{source}/events"


@dataclass(frozen=True)
class IngestSource:
    """A source as the ingest route sees it: its topics (the first is the default), the rules
    its records must meet, and its number of keyed partitions (the partitions of the keyed
    stream its tables read: the repartition topic's, or its own topics' when partitioned by
    key)."""

    name: str
    topics: tuple[str, ...]
    rules: SourceRules
    keyed_partitions: int


class RecordWriter(Protocol):
    def write(
        self, topic: str, records: Sequence[tuple[bytes, bytes]]
    ) -> Awaitable[list[Placed | RecordRefused]]:
        """Write ``(key, value)`` records to ``topic``; per record, where it landed or why it was
        refused; raises :class:`~streams.api.ingest_producer.ProduceFailed` when the cluster does not
        take the batch."""
        ...


async def read_body(request: web.Request, max_bytes: int) -> bytes | None:
    """The request body, or ``None`` when it is longer than ``max_bytes`` (read no further than
    that, whatever the web server's own ``client_max_size``)."""
    if request.content_length is not None and request.content_length > max_bytes:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > max_bytes:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _written_item(index: int, placed: Placed) -> dict[str, int]:
    return {"index": index, "partition": placed.partition, "offset": placed.offset}


class IngestHandler:
    """The ingest route's handler: writes to the topics of ``sources`` with ``writer``; bodies up
    to ``max_bytes``, arriving within ``limits.body_timeout_s`` (else 408 ``request_timeout``,
    and the connection closes); ``rate_limit`` per client."""

    def __init__(
        self,
        sources: Mapping[str, IngestSource],
        writer: RecordWriter,
        *,
        max_bytes: int,
        rate_limit: IngestRateLimit,
        now_ms: Callable[[], int],
        limits: ConnectionLimits,
    ) -> None:
        self.sources = sources
        self.writer = writer
        self.max_bytes = max_bytes
        self.rate_limit = rate_limit
        self.now_ms = now_ms
        self.limits = limits

    async def ingest(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["source"]
        source = self.sources.get(name)
        if source is None:
            return error_response(
                404, "unknown_source", f"no source {name!r}; sources: {', '.join(sorted(self.sources))}"
            )
        topic = request.query.get("topic", source.topics[0])
        if topic not in source.topics:
            raise BadQuery(f"`topic` must be one of source {name!r}'s topics ({', '.join(source.topics)})")
        try:
            body = await read_within(read_body(request, self.max_bytes), self.limits)
        except BodyTimeout as exc:
            return error_response(408, "request_timeout", str(exc), {"Connection": "close"})
        if body is None:
            return error_response(413, "too_large", f"the body is over the limit of {self.max_bytes} bytes")
        try:
            parsed = parse_body(body, request.content_type, source.rules, self.now_ms())
        except EmptyBody as exc:
            return error_response(400, "empty_body", str(exc))
        decision = self.rate_limit.take(client_of(request), parsed.count)
        if not decision.allowed:
            INGEST_REJECTED.labels(source=name, reason="rate_limited").inc(parsed.count)
            return error_response(
                429,
                "rate_limited",
                f"{parsed.count} records is more than this client may send now; "
                f"retry in {decision.retry_after_s} s",
                {"Retry-After": str(decision.retry_after_s)},
            )
        return await self.write(source, topic, parsed)

    async def write(self, source: IngestSource, topic: str, parsed: IngestBody) -> web.Response:
        invalid = list(parsed.invalid)
        written: list[dict[str, int]] = []
        places: list[WrittenAt] = []
        if parsed.valid:
            try:
                outcomes = await self.writer.write(topic, [(r.key.encode(), r.value) for r in parsed.valid])
            except ProduceFailed as exc:
                INGEST_REJECTED.labels(source=source.name, reason="unavailable").inc(len(parsed.valid))
                return error_response(503, "unavailable", str(exc))
            for record, outcome in zip(parsed.valid, outcomes, strict=True):
                if isinstance(outcome, RecordRefused):
                    invalid.append(InvalidRecord(record.index, outcome.reason, outcome.detail))
                    continue
                written.append(_written_item(record.index, outcome))
                keyed = key_partition(record.key.encode(), source.keyed_partitions)
                places.append(WrittenAt(topic, outcome.partition, outcome.offset, keyed))
        INGEST_RECORDS.labels(source=source.name).inc(len(written))
        for item in invalid:
            INGEST_REJECTED.labels(source=source.name, reason=item.reason).inc()
        position = PositionToken.of(source.name, places).encode() if places else None
        answer: dict[str, Any] = {"source": source.name, "topic": topic, "written": written}
        if not invalid:
            return json_response({**answer, "position": position}, 202)
        invalid.sort(key=lambda item: item.index)
        return json_response(
            {
                "error": "invalid_records",
                "detail": f"{len(invalid)} of {parsed.count} records are not valid; "
                f"the other {len(written)} were written",
                **answer,
                "invalid": [{"index": i.index, "reason": i.reason, "detail": i.detail} for i in invalid],
                "position": position,
            },
            400,
        )


def ingest_route(
    sources: Mapping[str, IngestSource],
    writer: RecordWriter,
    *,
    max_bytes: int,
    rate_limit: IngestRateLimit,
    now_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    limits: ConnectionLimits = DEFAULT_LIMITS,
) -> Route:
    """The ingest route of ``sources`` (:class:`IngestHandler`)."""
    ingest = IngestHandler(
        sources, writer, max_bytes=max_bytes, rate_limit=rate_limit, now_ms=now_ms, limits=limits
    ).ingest
    return Route(
        "POST",
        PATH,
        ingest,
        "write events to a source's topic",
        "ingest",
        params=(
            Param("source", "path", {"type": "string", "enum": sorted(sources)}, "a source of the pipeline"),
            Param(
                "topic",
                "query",
                {"type": "string"},
                "one of the source's topics (default: its first)",
            ),
        ),
        body=BODY_SCHEMAS,
        answers=(
            Answer(202, "every record written", ACCEPTED_SCHEMA),
            Answer(
                400,
                "some records are not valid (`invalid_records`: the others were written), or the "
                "body holds no record (`empty_body`), or `topic` is not one of the source's",
                INVALID_SCHEMA,
            ),
            Answer(404, "no such source (`unknown_source`)"),
            Answer(413, "the body is over the worker's limit (`too_large`)"),
            Answer(
                429,
                "this client sent more records than its rate allows (`rate_limited`); nothing was "
                "written; retry after `Retry-After` seconds",
                headers=("Retry-After",),
            ),
            Answer(503, "the Kafka cluster did not take the records (`unavailable`)"),
        ),
        tag="ingest",
    )


_INDEX = {"type": "integer", "minimum": 0, "description": "the record's place in the body, from 0"}
WRITTEN_SCHEMA: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["index", "partition", "offset"],
        "properties": {
            "index": _INDEX,
            "partition": {"type": "integer", "minimum": 0},
            "offset": {"type": "integer", "minimum": 0},
        },
    },
}
POSITION_DESCRIPTION = "a position token for read-your-writes queries (`?after=`)"
ACCEPTED_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["source", "topic", "written", "position"],
    "properties": {
        "source": {"type": "string"},
        "topic": {"type": "string"},
        "written": WRITTEN_SCHEMA,
        "position": {"type": "string", "description": POSITION_DESCRIPTION},
    },
}
INVALID_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "detail"],
    "properties": {
        "error": {"type": "string", "description": "invalid_records, empty_body or bad_query"},
        "detail": {"type": "string"},
        "source": {"type": "string"},
        "topic": {"type": "string"},
        "invalid": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["index", "reason", "detail"],
                "properties": {
                    "index": _INDEX,
                    "reason": {
                        "type": "string",
                        "description": "not_json, not_object, missing_key, bad_key, missing_timestamp, "
                        "bad_timestamp, future_timestamp or too_large",
                    },
                    "detail": {"type": "string"},
                },
            },
        },
        "written": WRITTEN_SCHEMA,
        "position": {"type": ["string", "null"], "description": f"{POSITION_DESCRIPTION}; null: none"},
    },
}
#: a text body holds at least one character that is not white space (else 400 ``empty_body``)
_NOT_BLANK = r"\S"
BODY_SCHEMAS: dict[str, dict[str, Any]] = {
    "application/json": {
        "description": "one event, or a non-empty array of events",
        "anyOf": [{"type": "object"}, {"type": "array", "items": {"type": "object"}, "minItems": 1}],
    },
    NDJSON: {"type": "string", "pattern": _NOT_BLANK, "description": "one event (a JSON object) per line"},
    "text/plain": {
        "type": "string",
        "pattern": _NOT_BLANK,
        "description": "a JSON object, a JSON array of objects, or NDJSON, told apart by parsing",
    },
}
