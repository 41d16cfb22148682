"""The body of an ingest request, split into records and checked by the rules the source stage
applies to what it reads (:func:`streams.plan.envelope.decode_event`), so a record the API accepts is
one the source stage accepts too.

A body is one of:

- NDJSON (``Content-Type: application/x-ndjson``): one JSON value per line; blank lines are
  skipped and do not count, so record ``index`` *i* is the *i*-th non-blank line (from 0). Each
  line's bytes (without surrounding whitespace) are the record's value.
- A JSON object (``application/json`` or anything else): one record, index 0, the body's bytes
  (without surrounding whitespace) as its value.
- A JSON array: one record per element, index = the element's position; each element is
  re-encoded as compact JSON (orjson) to be the record's value. An element that is not an
  object is an invalid record (``not_object``).
- Any other body that is not one JSON document is read as NDJSON (detection), so a client
  that forgets the content type still gets one answer per line.

A record that fails the checks is an :class:`InvalidRecord` with the envelope's reason code
(``not_json``, ``not_object``, ``missing_key``, ``bad_key``, ``missing_timestamp``,
``bad_timestamp``, ``future_timestamp``); the others are :class:`ValidRecord`. A body without
any record (empty, or only whitespace) raises :class:`EmptyBody`.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from streams.plan.envelope import decode_event
from streams.plan.errors import InvalidEvent
from streams.plan.operators import Operator

NDJSON = "application/x-ndjson"
#: content types read as NDJSON whatever the body looks like
NDJSON_TYPES = frozenset({NDJSON, "application/jsonl", "application/json-seq", "application/ndjson"})


class EmptyBody(ValueError):
    """The body holds no record."""


@dataclass(frozen=True)
class SourceRules:
    """What a source's records must hold: the key field, the timestamp field (``None``: the
    event time is the Kafka record's, which the producer sets to the time of writing), and how
    far ahead of now an event time may be (ms)."""

    key_field: str
    timestamp_field: str | None
    max_future_ms: int
    #: the function computing the key in place of ``key_field`` (:mod:`streams.plan.operators`)
    key_by: Operator | None = None


@dataclass(frozen=True)
class ValidRecord:
    index: int
    #: the key field's text: the Kafka record key
    key: str
    #: the Kafka record value
    value: bytes


@dataclass(frozen=True)
class InvalidRecord:
    index: int
    reason: str
    detail: str


@dataclass(frozen=True)
class IngestBody:
    valid: tuple[ValidRecord, ...]
    invalid: tuple[InvalidRecord, ...]

    @property
    def count(self) -> int:
        """Every record of the body, valid or not."""
        return len(self.valid) + len(self.invalid)


def _ndjson_values(body: bytes) -> list[bytes | InvalidRecord]:
    return [line.strip() for line in body.split(b"\n") if line.strip()]


def record_values(body: bytes, content_type: str) -> list[bytes | InvalidRecord]:
    """The body's record values, in index order (an array element that is not an object is
    already an :class:`InvalidRecord`); raises :class:`EmptyBody` when there are none."""
    if not body.strip():
        raise EmptyBody("the body is empty: send a JSON object, a JSON array of objects or NDJSON")
    if content_type.lower() in NDJSON_TYPES:
        values = _ndjson_values(body)
    else:
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            values = _ndjson_values(body)
        else:
            if isinstance(document, list):
                values = [
                    orjson.dumps(item)
                    if isinstance(item, dict)
                    else InvalidRecord(
                        index, "not_object", f"element is a JSON {type(item).__name__}, not an object"
                    )
                    for index, item in enumerate(document)
                ]
            else:
                values = [body.strip()]
    if not values:
        raise EmptyBody("the body holds no record: an empty JSON array")
    return values


def parse_body(body: bytes, content_type: str, rules: SourceRules, now_ms: int) -> IngestBody:
    """Split ``body`` into records and check each by ``rules`` at ``now_ms`` (epoch ms); raises
    :class:`EmptyBody` when it holds none."""
    valid: list[ValidRecord] = []
    invalid: list[InvalidRecord] = []
    for index, value in enumerate(record_values(body, content_type)):
        if isinstance(value, InvalidRecord):
            invalid.append(value)
            continue
        try:
            envelope = decode_event(
                value,
                key_field=rules.key_field,
                key_by=rules.key_by,
                timestamp_field=rules.timestamp_field,
                record_timestamp_ms=now_ms,
                now_ms=now_ms,
                max_future_ms=rules.max_future_ms,
            )
        except InvalidEvent as exc:
            invalid.append(InvalidRecord(index, exc.reason, exc.detail))
            continue
        valid.append(ValidRecord(index, envelope.key, value))
    return IngestBody(tuple(valid), tuple(invalid))
