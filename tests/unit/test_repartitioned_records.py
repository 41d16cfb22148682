from types import SimpleNamespace

import orjson
import pytest

from agents.merge import EVENT_TIME_HEADER, read_repartitioned
from streams.errors import InvalidEvent


def record(key: bytes | None = b"alice", value: bytes | None = b'{"amount": 1}', ts: bytes | None = b"1700"):
    headers = [] if ts is None else [(EVENT_TIME_HEADER, ts)]
    return SimpleNamespace(key=key, value=value, headers=headers)


def test_a_record_written_by_the_source_stage_reads_back() -> None:
    r = record()
    assert read_repartitioned(r) == (r, "alice", 1700, {"amount": 1})


@pytest.mark.parametrize(
    "bad",
    [
        record(key=None),
        record(value=b"{oops"),
        record(value=orjson.dumps([1])),
        record(ts=None),
        record(ts=b"soon"),
        record(value=None),
    ],
)
def test_a_foreign_record_is_an_invalid_event_not_a_crash(bad: SimpleNamespace) -> None:
    with pytest.raises(InvalidEvent) as err:
        read_repartitioned(bad)
    assert err.value.reason == "bad_repartition_record"
