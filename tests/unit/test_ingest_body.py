"""Splitting an ingest body into records and checking each by the source stage's rules."""

from __future__ import annotations

import orjson
import pytest

from streams.api.ingest_body import EmptyBody, InvalidRecord, SourceRules, ValidRecord, parse_body

NOW = 1_700_000_000_000
RULES = SourceRules(key_field="user", timestamp_field="ts", max_future_ms=60_000)


def reasons(body: bytes, content_type: str = "application/json", rules: SourceRules = RULES) -> list[str]:
    parsed = parse_body(body, content_type, rules, NOW)
    outcome = {r.index: "ok" for r in parsed.valid} | {i.index: i.reason for i in parsed.invalid}
    assert sorted(outcome) == list(range(parsed.count))
    return [outcome[i] for i in range(parsed.count)]


def test_one_object_is_one_record_whose_value_is_the_body() -> None:
    body = b'  {"user": "alice", "ts": 1700000000000, "n": 1}\n'
    parsed = parse_body(body, "application/json", RULES, NOW)
    assert parsed.valid == (ValidRecord(0, "alice", body.strip()),) and parsed.invalid == ()


def test_an_array_is_one_record_per_element_each_reencoded() -> None:
    events = [{"user": "a", "ts": NOW}, {"user": 7, "ts": "2023-11-14T22:13:20"}, 3, {"ts": NOW}]
    parsed = parse_body(orjson.dumps(events), "application/json", RULES, NOW)
    assert [(r.index, r.key, orjson.loads(r.value)) for r in parsed.valid] == [
        (0, "a", events[0]),
        (1, "7", events[1]),
    ]
    assert [(i.index, i.reason) for i in parsed.invalid] == [(2, "not_object"), (3, "missing_key")]


def test_ndjson_numbers_non_blank_lines_and_keeps_each_line_as_the_value() -> None:
    body = b'{"user": "a", "ts": 1}\n\n  \r\n{"user": "b", "ts": 2}\r\nnot json\n[1]\n'
    parsed = parse_body(body, "application/x-ndjson", RULES, NOW)
    assert parsed.valid == (
        ValidRecord(0, "a", b'{"user": "a", "ts": 1}'),
        ValidRecord(1, "b", b'{"user": "b", "ts": 2}'),
    )
    assert [(i.index, i.reason) for i in parsed.invalid] == [(2, "not_json"), (3, "not_object")]


def test_a_body_that_is_not_one_json_document_is_read_as_ndjson_whatever_its_type() -> None:
    body = b'{"user": "a", "ts": 1}\n{"user": "b", "ts": 2}\n'
    assert reasons(body) == ["ok", "ok"]
    assert reasons(body, "text/plain") == ["ok", "ok"]
    # one JSON array on one line, sent as NDJSON, is one record that is not an object
    assert reasons(b'[{"user": "a", "ts": 1}]', "application/x-ndjson") == ["not_object"]


def test_every_reason_of_the_envelope() -> None:
    lines = [
        b'{"user": "a", "ts": 1}',
        b"{broken",
        b'"text"',
        b'{"ts": 1}',
        b'{"user": "", "ts": 1}',
        b'{"user": true, "ts": 1}',
        b'{"user": "a"}',
        b'{"user": "a", "ts": "yesterday"}',
        b'{"user": "a", "ts": %d}' % (NOW + 60_001),
        b'{"user": "a", "ts": %d}' % (NOW + 60_000),
    ]
    assert reasons(b"\n".join(lines), "application/x-ndjson") == [
        "ok",
        "not_json",
        "not_object",
        "missing_key",
        "bad_key",
        "bad_key",
        "missing_timestamp",
        "bad_timestamp",
        "future_timestamp",
        "ok",
    ]


def test_without_a_timestamp_field_an_event_needs_none() -> None:
    rules = SourceRules(key_field="user", timestamp_field=None, max_future_ms=0)
    assert reasons(b'{"user": "a"}', rules=rules) == ["ok"]


@pytest.mark.parametrize("body", [b"", b"  \n\r\n ", b"[]"])
def test_a_body_without_records_is_refused(body: bytes) -> None:
    with pytest.raises(EmptyBody):
        parse_body(body, "application/json", RULES, NOW)
    if body != b"[]":
        with pytest.raises(EmptyBody):
            parse_body(body, "application/x-ndjson", RULES, NOW)


def test_invalid_records_carry_a_detail() -> None:
    parsed = parse_body(b'{"ts": 1}', "application/json", RULES, NOW)
    assert parsed.invalid == (InvalidRecord(0, "missing_key", "no field 'user'"),)
