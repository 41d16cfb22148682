from types import SimpleNamespace

import orjson
import pytest

from agents.merge import (
    EVENT_TIME_HEADER,
    ORIGIN_HEADER,
    KeyedEvent,
    ProgressReport,
    progress_headers,
    read_repartitioned,
)
from streams.plan.errors import InvalidEvent

INPUTS = 6


def record(
    key: bytes | None = b"alice",
    value: bytes | None = b'{"amount": 1}',
    ts: bytes | None = b"1700",
    origin: bytes | None = b"4 120 1650",
):
    headers = [] if ts is None else [(EVENT_TIME_HEADER, ts)]
    headers += [] if origin is None else [(ORIGIN_HEADER, origin)]
    return SimpleNamespace(key=key, value=value, headers=headers)


def test_a_record_written_by_the_source_stage_reads_back() -> None:
    r = record()
    # input 4, offset 120 there, its progress before the event 1650; arrival 120 * 6 + 4
    assert read_repartitioned(r, INPUTS) == KeyedEvent(r, "alice", 1700, {"amount": 1}, 4, 724, 1650)
    first = record(origin=b"0 0 -")
    assert read_repartitioned(first, INPUTS) == KeyedEvent(first, "alice", 1700, {"amount": 1}, 0, 0, None)


@pytest.mark.parametrize(("progress", "idle"), [(None, True), (1700, False), (-5, True)])
def test_a_progress_record_reads_back(progress: int | None, idle: bool) -> None:
    r = SimpleNamespace(key=None, value=b"", headers=progress_headers(3, progress, idle))
    assert read_repartitioned(r, INPUTS) == ProgressReport(3, progress, idle)


@pytest.mark.parametrize(
    "bad",
    [
        record(key=None),
        record(value=b"{oops"),
        record(value=orjson.dumps([1])),
        record(ts=None),
        record(ts=b"soon"),
        record(value=None),
        record(origin=None),
        record(origin=b"4 120"),
        record(origin=b"6 120 -"),
        SimpleNamespace(key=None, value=b"", headers=progress_headers(6, 1, False)),
        SimpleNamespace(key=None, value=b"", headers=[("continust-progress", b"1 soon 0")]),
    ],
)
def test_a_foreign_record_is_an_invalid_event_not_a_crash(bad: SimpleNamespace) -> None:
    with pytest.raises(InvalidEvent) as err:
        read_repartitioned(bad, INPUTS)
    assert err.value.reason == "bad_repartition_record"
