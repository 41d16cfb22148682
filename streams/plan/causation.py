"""Causation headers: which input record caused an output record or a dead letter.

Every output record of a table carries the input record of the last event that changed its
window, and every dead letter the input record it rejects, as Kafka headers:

* ``continust-cause-topic``, ``continust-cause-partition``, ``continust-cause-offset``: where
  the input record was read (the source's own topic, never the internal repartition topic);
* ``continust-cause-id``: the event's id, the value of the source's ``id`` field, when the
  source names one and the event has it (a string as is, anything else as its JSON text);
* ``traceparent``: the input record's W3C trace context header, when it had a valid one.

A cause is a plain tuple ``(topic, partition, offset, id, traceparent)`` (:data:`Cause`), so
the table state can save it with the window as JSON (a saved cause reads back as a list of the
same five items, which :func:`cause_headers` takes alike).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import orjson

from windows.field_path import field_value

CAUSE_TOPIC = "continust-cause-topic"
CAUSE_PARTITION = "continust-cause-partition"
CAUSE_OFFSET = "continust-cause-offset"
CAUSE_ID = "continust-cause-id"
TRACEPARENT = "traceparent"

#: ``(topic, partition, offset, id or None, traceparent or None)``
Cause = tuple[str, int, int, str | None, str | None]

# version-format: 2 hex digits (never ff); version 00 is exactly the four fields, a later
# version may append "-..." after them (W3C Trace Context, section 3.2)
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


class TraceParent(NamedTuple):
    """A valid W3C ``traceparent``: 32 lowercase hex digits of trace id, 16 of parent span id,
    and the trace flags (bit 0: sampled)."""

    trace_id: str
    span_id: str
    flags: int

    @property
    def sampled(self) -> bool:
        return bool(self.flags & 1)

    def header(self) -> str:
        """The version-00 header text."""
        return f"00-{self.trace_id}-{self.span_id}-{self.flags:02x}"


def parse_traceparent(raw: bytes | str | None) -> TraceParent | None:
    """The trace context in a ``traceparent`` header value, or ``None`` when it is missing or
    invalid: a version other than two lowercase hex digits or ``ff``, version ``00`` with
    anything after the flags, an all-zero trace id or parent id, or any non-hex field."""
    if raw is None:
        return None
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("ascii")
        except UnicodeDecodeError:
            return None
    match = _TRACEPARENT.fullmatch(raw)
    if match is None:
        return None
    version, trace_id, span_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest is not None):
        return None
    if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    return TraceParent(trace_id, span_id, int(flags, 16))


def traceparent_of(headers: Iterable[tuple[str, bytes]] | None) -> str | None:
    """The valid ``traceparent`` among a record's headers, normalised to version 00 (``None``
    when there is none or it is invalid)."""
    for name, value in headers or ():
        if name == TRACEPARENT:
            parsed = parse_traceparent(value)
            return None if parsed is None else parsed.header()
    return None


def event_id(payload: Mapping[str, Any], field: str | None) -> str | None:
    """The event's id: the payload's ``field`` (nested by a dotted path) as text (a string as
    is, any other value as its JSON), ``None`` when no field is named or the payload lacks it or
    holds null."""
    if field is None:
        return None
    try:
        value = field_value(payload, field)
    except KeyError:
        return None
    if value is None:
        return None
    if isinstance(value, str):
        return value
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return None


def event_id_of_value(value: bytes | None, field: str | None) -> str | None:
    """:func:`event_id` of a raw record value, for a record rejected before it was decoded:
    ``None`` when it is not a JSON object."""
    if field is None:
        return None
    try:
        payload = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None
    return event_id(payload, field) if isinstance(payload, dict) else None


def cause_headers(cause: Sequence[Any]) -> list[tuple[str, bytes]]:
    """The headers naming ``cause`` (a :data:`Cause`, or the list a saved one reads back as)."""
    topic, partition, offset, ident, traceparent = cause
    headers = [
        (CAUSE_TOPIC, topic.encode()),
        (CAUSE_PARTITION, str(partition).encode()),
        (CAUSE_OFFSET, str(offset).encode()),
    ]
    if ident is not None:
        headers.append((CAUSE_ID, ident.encode()))
    if traceparent is not None:
        headers.append((TRACEPARENT, traceparent.encode()))
    return headers


def read_cause(headers: Iterable[tuple[str, bytes]] | None) -> Cause | None:
    """The cause a record's headers name (what :func:`cause_headers` wrote), or ``None`` when
    they name none or a malformed one."""
    listed = list(headers or ())
    found = {name: value for name, value in listed if isinstance(value, bytes)}
    try:
        topic = found[CAUSE_TOPIC].decode()
        partition = int(found[CAUSE_PARTITION])
        offset = int(found[CAUSE_OFFSET])
        ident = found[CAUSE_ID].decode() if CAUSE_ID in found else None
    except (KeyError, ValueError, UnicodeDecodeError):
        return None
    return (topic, partition, offset, ident, traceparent_of(listed))
