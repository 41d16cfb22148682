"""What the catalog says of a table, from its pipeline spec alone (every worker says the same):
its source and topics, the chain of user functions applied before windows, window (times in ms),
aggregations as written, emit mode, output topic and partition count."""

from __future__ import annotations

from typing import Any

from streams.plan.pipeline import SourceSpec, TableSpec
from windows.spec import SessionWindows, SlidingWindows, TumblingWindows


def window_description(spec: TableSpec) -> dict[str, Any]:
    """``{"type", "size_ms"|"slide_ms"|"gap_ms", "grace_ms", "retention_ms"}``."""
    window = spec.window
    if isinstance(window, TumblingWindows):
        shape: dict[str, Any] = {"type": "tumbling", "size_ms": window.size_ms}
    elif isinstance(window, SlidingWindows):
        shape = {"type": "sliding", "size_ms": window.size_ms, "slide_ms": window.slide_ms}
    elif isinstance(window, SessionWindows):
        shape = {"type": "session", "gap_ms": window.gap_ms}
    else:  # pragma: no cover - the pipeline loader knows no other kind
        raise TypeError(f"unknown window {window!r}")
    return {**shape, "grace_ms": window.grace_ms, "retention_ms": window.retention_ms}


def table_description(spec: TableSpec, source: SourceSpec, partitions: int) -> dict[str, Any]:
    return {
        "name": spec.name,
        "source": source.name,
        "topics": list(source.topics),
        "operators": [{"kind": op.kind, "function": op.name} for op in spec.operators],
        "window": window_description(spec),
        "aggregations": {
            name: f"{agg.name}({agg.field or ''})"
            for name, agg in zip(spec.aggregate_names, spec.aggregations, strict=True)
        },
        "emit": spec.emit,
        "output": spec.output,
        "partitions": partitions,
    }


WINDOW_SPEC_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "grace_ms", "retention_ms"],
    "properties": {
        "type": {"type": "string", "enum": ["tumbling", "sliding", "session"]},
        "size_ms": {"type": "integer"},
        "slide_ms": {"type": "integer"},
        "gap_ms": {"type": "integer"},
        "grace_ms": {"type": "integer"},
        "retention_ms": {"type": "integer"},
    },
}
TABLE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        "name",
        "source",
        "topics",
        "operators",
        "window",
        "aggregations",
        "emit",
        "output",
        "partitions",
    ],
    "properties": {
        "name": {"type": "string"},
        "source": {"type": "string"},
        "topics": {"type": "array", "items": {"type": "string"}},
        "operators": {
            "type": "array",
            "description": "the chain of user functions applied to the source's events, in order",
            "items": {
                "type": "object",
                "required": ["kind", "function"],
                "properties": {
                    "kind": {"type": "string", "enum": ["filter", "map", "flat_map"]},
                    "function": {"type": "string", "description": "module:function"},
                },
            },
        },
        "window": WINDOW_SPEC_SCHEMA,
        "aggregations": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "output name -> aggregation call, as the pipeline file writes it",
        },
        "emit": {"type": "string", "enum": ["update", "change", "final"]},
        "output": {"type": ["string", "null"]},
        "partitions": {"type": "integer"},
    },
}
