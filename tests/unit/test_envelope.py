import orjson
import pytest

from streams.plan.envelope import decode_event
from streams.plan.errors import InvalidEvent

NOW = 1_700_000_000_000


def decode(payload: object, *, timestamp_field: str | None = "ts", raw: bytes | None = None):
    return decode_event(
        orjson.dumps(payload) if raw is None else raw,
        key_field="user",
        timestamp_field=timestamp_field,
        record_timestamp_ms=42,
        now_ms=NOW,
        max_future_ms=3_600_000,
    )


def test_epoch_milliseconds_and_iso_8601_give_the_same_event_time() -> None:
    a = decode({"user": "alice", "ts": 1_700_000_040_123})
    b = decode({"user": "alice", "ts": "2023-11-14T22:14:00.123Z"})
    c = decode({"user": "alice", "ts": "2023-11-14T23:14:00.123+01:00"})
    d = decode({"user": "alice", "ts": "2023-11-14T22:14:00.123"})  # no zone: UTC
    assert a.timestamp_ms == b.timestamp_ms == c.timestamp_ms == d.timestamp_ms == 1_700_000_040_123
    assert a.key == "alice"


def test_without_a_timestamp_field_the_record_timestamp_is_the_event_time() -> None:
    assert decode({"user": 7}, timestamp_field=None).timestamp_ms == 42
    assert decode({"user": 7}, timestamp_field=None).key == "7"


@pytest.mark.parametrize(
    ("payload", "raw", "reason"),
    [
        (None, b"{not json", "not_json"),
        ([1, 2], None, "not_object"),
        ({"ts": 1}, None, "missing_key"),
        ({"user": None, "ts": 1}, None, "bad_key"),
        ({"user": True, "ts": 1}, None, "bad_key"),
        ({"user": "a"}, None, "missing_timestamp"),
        ({"user": "a", "ts": "yesterday"}, None, "bad_timestamp"),
        ({"user": "a", "ts": 1.5}, None, "bad_timestamp"),
        ({"user": "a", "ts": NOW + 3_600_001}, None, "future_timestamp"),
    ],
)
def test_invalid_records_raise_with_a_reason_code(payload: object, raw: bytes | None, reason: str) -> None:
    with pytest.raises(InvalidEvent) as err:
        decode(payload, raw=raw)
    assert err.value.reason == reason


def test_an_event_exactly_max_future_ahead_is_accepted() -> None:
    assert decode({"user": "a", "ts": NOW + 3_600_000}).timestamp_ms == NOW + 3_600_000
