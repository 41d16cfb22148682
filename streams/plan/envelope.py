"""The event envelope: a Kafka record whose value is a JSON object. Decoding extracts the key
field and the event time, or raises :class:`InvalidEvent` with a reason code:

``not_json``, ``not_object``, ``missing_key``, ``bad_key``, ``missing_timestamp``,
``bad_timestamp``, ``future_timestamp``; and ``user_error`` for a source whose key a function
computes (``key_by``) when the function fails.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

from streams.plan.errors import InvalidEvent
from streams.plan.operators import Operator, UserFunctionFailed
from windows.field_path import field_value


class Envelope(NamedTuple):  # a tuple: built once per event, cheaper than a dataclass
    key: str
    timestamp_ms: int
    payload: dict[str, Any]


def decode_event(
    value: bytes | None,
    *,
    key_field: str,
    timestamp_field: str | None,
    record_timestamp_ms: int,
    now_ms: int,
    max_future_ms: int,
    key_by: Operator | None = None,
) -> Envelope:
    """Decode one record value. Event time is the payload's ``timestamp_field`` (epoch ms as an
    integer, or an ISO-8601 string; a string without a zone is UTC) or, when no field is
    configured, the Kafka record timestamp. Events more than ``max_future_ms`` ahead of
    ``now_ms`` are rejected, so one bad clock cannot close every window."""
    try:
        payload = orjson.loads(value or b"")
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent("not_json", str(exc)) from None
    if not isinstance(payload, dict):
        raise InvalidEvent("not_object", f"value is a JSON {type(payload).__name__}, not an object")
    key = event_key(payload, key_field) if key_by is None else computed_key(payload, key_by)
    ts = record_timestamp_ms if timestamp_field is None else event_time(payload, timestamp_field)
    if ts > now_ms + max_future_ms:
        raise InvalidEvent(
            "future_timestamp", f"event time {ts} is more than {max_future_ms} ms ahead of now ({now_ms})"
        )
    return Envelope(key=key, timestamp_ms=ts, payload=payload)


def event_key(payload: dict[str, Any], field: str) -> str:
    """The payload's ``field`` (a nested one by a dotted path: :mod:`windows.field_path`) as the
    event's key: a non-empty string, or an integer as its decimal text."""
    try:
        key = field_value(payload, field)
    except KeyError:
        raise InvalidEvent("missing_key", f"no field {field!r}") from None
    if isinstance(key, bool) or not isinstance(key, (str, int)) or key == "":
        raise InvalidEvent(
            "bad_key", f"field {field!r} must be a non-empty string or an integer, got {key!r}"
        )
    return str(key)


def computed_key(payload: dict[str, Any], key_by: Operator) -> str:
    """The key ``key_by``'s function computes from the payload, held to the rule of a key
    field (a non-empty string, or an integer as its text); raises
    :class:`~streams.plan.operators.UserFunctionFailed` when the function raises or gives
    anything else."""
    try:
        key = key_by.function(payload)
    except Exception as exc:
        raise UserFunctionFailed(key_by.label, type(exc).__name__, str(exc)) from exc
    if isinstance(key, bool) or not isinstance(key, (str, int)) or key == "":
        raise UserFunctionFailed(
            key_by.label, "TypeError", f"a key must be a non-empty string or an integer, got {key!r}"
        )
    return str(key)


def event_time(payload: dict[str, Any], field: str) -> int:
    """The payload's ``field`` (a nested one by a dotted path) as epoch ms: an integer as is, an
    ISO-8601 string (UTC when it names no zone) converted."""
    try:
        raw = field_value(payload, field)
    except KeyError:
        raise InvalidEvent("missing_timestamp", f"no field {field!r}") from None
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str):
        try:
            parsed = datetime.fromisoformat(raw)
        except ValueError:
            raise InvalidEvent("bad_timestamp", f"field {field!r} = {raw!r} is not ISO-8601") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        delta = parsed - datetime(1970, 1, 1, tzinfo=UTC)
        return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
    raise InvalidEvent(
        "bad_timestamp", f"field {field!r} must be epoch milliseconds or an ISO-8601 string, got {raw!r}"
    )
