"""The documented parameters and answer schemas of the query routes
(:mod:`streams.api.table_routes`), from which the OpenAPI document is generated."""

from __future__ import annotations

from typing import Any

from streams.api.api_routes import Answer, Param
from streams.api.table_catalog import TABLE_SCHEMA
from streams.api.table_params import TIME_PARAMS, WINDOW_SCHEMA
from streams.api.table_reads import (
    DEFAULT_LIMIT,
    DEFAULT_TOP,
    DEFAULT_WAIT_S,
    ISOLATIONS,
    MAX_LIMIT,
    MAX_TOP,
    MAX_WAIT_S,
)

POSITION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "per table partition read: its stream time and, per input topic partition "
    "('topic:partition'), the largest offset it has processed",
    "additionalProperties": {
        "type": "object",
        "required": ["stream_time", "inputs"],
        "properties": {
            "stream_time": {"type": ["integer", "null"], "description": "epoch ms"},
            "inputs": {"type": "object", "additionalProperties": {"type": "integer"}},
        },
    },
}
BEHIND_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "per partition answered by a standby: changelog records it has not applied",
    "additionalProperties": {"type": ["integer", "null"]},
}
READ_BLOCKS: dict[str, Any] = {
    "position": POSITION_SCHEMA,
    "standby": {"type": "boolean", "description": "whether a standby answered (committed state)"},
    "behind": BEHIND_SCHEMA,
    "committed": {
        "type": "boolean",
        "description": "whether every partition read answered its committed state only "
        "(`isolation=committed`, a standby, or a partition kept through a rebalance)",
    },
}
NOT_REACHED_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "detail"],
    "properties": {"error": {"type": "string"}, "detail": {"type": "string"}, "position": POSITION_SCHEMA},
}
SCAN_WINDOW_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["key", *WINDOW_SCHEMA["required"]],
    "properties": {"key": {"type": "string"}, **WINDOW_SCHEMA["properties"]},
}
TOP_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["key", "start", "end", "value"],
    "properties": {
        "key": {"type": "string"},
        "start": {"type": "integer"},
        "end": {"type": "integer"},
        "value": {"type": "number"},
        "rank": {"type": "integer", "minimum": 1},
    },
}
READ_PARAMS = (
    Param("after", "query", {"type": "string"}, "a position token: wait until the table has read it"),
    Param(
        "isolation",
        "query",
        {"type": "string", "enum": list(ISOLATIONS)},
        "`uncommitted` (default): the owner's state with the changes of the commit in progress; "
        "`committed`: only what a commit made durable (its outputs visible to read_committed "
        "consumers), with that state's position",
    ),
    Param(
        "wait",
        "query",
        {"type": "number", "minimum": 0, "maximum": MAX_WAIT_S},
        f"seconds to wait for `after` (default {DEFAULT_WAIT_S:g})",
    ),
)
STALE_PARAM = Param("stale_ok", "query", {"type": "boolean"}, "a standby may answer from its committed state")
CLOSED_PARAM = Param("closed", "query", {"type": "boolean"}, "only closed (true) or open (false) windows")
SCAN_PARAMS = (
    *TIME_PARAMS,
    CLOSED_PARAM,
    Param("key_prefix", "query", {"type": "string"}, "only keys starting with it"),
    Param(
        "limit",
        "query",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
        f"windows per page (default {DEFAULT_LIMIT})",
    ),
    Param("cursor", "query", {"type": "string"}, "`next_cursor` of the previous page"),
)
TOP_PARAMS = (
    Param("by", "query", {"type": "string"}, "the aggregation to rank by", required=True),
    Param(
        "n",
        "query",
        {"type": "integer", "minimum": 1, "maximum": MAX_TOP},
        f"how many keys (default {DEFAULT_TOP})",
    ),
    Param("order", "query", {"type": "string", "enum": ["desc", "asc"]}, "largest first (desc) or smallest"),
    *TIME_PARAMS,
    CLOSED_PARAM,
)
PARTITION_PARAM = Param("partition", "path", {"type": "integer", "minimum": 0}, "a partition of the table")


def object_schema(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}


def query_answers(ok: Answer, *, partition_route: bool = False) -> tuple[Answer, ...]:
    answers = [
        ok,
        Answer(400, "a bad parameter, token (`bad_token`) or cursor (`bad_cursor`)"),
        Answer(404, "no such table (`unknown_table`) or partition (`unknown_partition`)"),
        Answer(
            429,
            "this client has its most queries with `after` in progress here (`too_many_waits`); "
            "retry after `Retry-After` seconds",
            headers=("Retry-After",),
        ),
    ]
    if partition_route:
        answers.append(Answer(421, "this worker does not hold the partition (`not_owner`)"))
    answers.append(
        Answer(
            503,
            "`position_not_reached` within `wait` (with the positions reached), the owner is "
            "restoring, or ownership is moving",
            NOT_REACHED_SCHEMA,
            headers=("Retry-After",),
        )
    )
    return tuple(answers)


KEY_ANSWER = object_schema(
    ["table", "key", "windows", "position", "standby"],
    {
        "table": {"type": "string"},
        "key": {"type": "string"},
        "windows": {"type": "array", "items": WINDOW_SCHEMA},
        **READ_BLOCKS,
    },
)
SCAN_ANSWER = object_schema(
    ["table", "windows", "next_cursor", "position", "standby"],
    {
        "table": {"type": "string"},
        "windows": {"type": "array", "items": SCAN_WINDOW_SCHEMA},
        "next_cursor": {"type": ["string", "null"], "description": "null: this was the last page"},
        **READ_BLOCKS,
    },
)
PARTITION_SCAN_ANSWER = object_schema(
    ["table", "windows", "more", "position", "standby"],
    {
        "table": {"type": "string"},
        "windows": {"type": "array", "items": SCAN_WINDOW_SCHEMA},
        "more": {"type": "boolean"},
        **READ_BLOCKS,
    },
)
TOP_ANSWER = object_schema(
    ["table", "by", "order", "top", "position", "standby"],
    {
        "table": {"type": "string"},
        "by": {"type": "string"},
        "order": {"type": "string", "enum": ["desc", "asc"]},
        "top": {"type": "array", "items": TOP_SCHEMA},
        **READ_BLOCKS,
    },
)
PARTITION_TOP_ANSWER = object_schema(
    ["table", "top", "position", "standby"],
    {"table": {"type": "string"}, "top": {"type": "array", "items": TOP_SCHEMA}, **READ_BLOCKS},
)
HELD_ENTRY = object_schema(
    ["partition", "role", "stream_time", "inputs"],
    {
        "partition": {"type": "integer"},
        "role": {"type": "string", "enum": ["active", "standby"]},
        "stream_time": {"type": ["integer", "null"]},
        "inputs": {"type": "object", "additionalProperties": {"type": "integer"}},
        "lag": {"type": ["integer", "null"]},
        "behind": {"type": ["integer", "null"]},
    },
)
DETAIL_PARTITION = object_schema(
    ["partition", "owner", "standbys", "stream_time", "inputs", "lag"],
    {
        "partition": {"type": "integer"},
        "owner": {"type": ["string", "null"]},
        "standbys": {"type": "array", "items": {"type": "string"}},
        "stream_time": {"type": ["integer", "null"]},
        "inputs": {"type": "object", "additionalProperties": {"type": "integer"}},
        "lag": {"type": ["integer", "null"]},
    },
)
DETAIL_ANSWER = {
    **TABLE_SCHEMA,
    "required": [*TABLE_SCHEMA["required"], "partition_details", "unanswered"],
    "properties": {
        **TABLE_SCHEMA["properties"],
        "partition_details": {"type": "array", "items": DETAIL_PARTITION},
        "unanswered": {"type": "array", "items": {"type": "string"}},
    },
}
