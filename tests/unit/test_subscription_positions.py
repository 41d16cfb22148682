"""Event ids of live subscriptions and the events output records become: ids read back as the
positions they were written from, resuming after an id reads exactly the records after it, and
ids a subscription did not write are refused."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.api.event_buffer import EventBuffer
from streams.api.event_ids import BadEventId, KeyPosition, TablePosition
from streams.api.output_reader import OutputRecord
from streams.api.subscription_follow import KeyFollow, RecordEvent, TableFollow
from streams.api.subscriptions import serve_records

OFFSETS = st.integers(min_value=0, max_value=2**62)


@given(st.integers(min_value=-1, max_value=2**62))
def test_a_key_id_is_the_record_offset_and_resumes_after_it(offset: int) -> None:
    text = KeyPosition(offset).encode()
    assert text == str(offset)
    assert KeyPosition.decode(text).next_offset == offset + 1


@given(st.lists(OFFSETS, min_size=1, max_size=12))
def test_a_table_id_names_every_partitions_next_offset(offsets: list[int]) -> None:
    position = TablePosition.of(dict(enumerate(offsets)))
    text = position.encode()
    assert TablePosition.decode(text, len(offsets)) == position
    assert len(text) <= 1 + len(offsets) * 13  # compact: base 36


@pytest.mark.parametrize("text", ["", "x", "01", "-2", "1.5", " 1", "1e3", "+1", "\u0661", "t0.1", "9" * 20])
def test_malformed_key_ids_are_refused(text: str) -> None:
    with pytest.raises(BadEventId):
        KeyPosition.decode(text)


@pytest.mark.parametrize(
    "text", ["", "t", "0.1.2", "t0.1", "t0.1.2.3", "t0..2", "t0.1.Z", "t0.1.1_0", "t0.-1.2"]
)
def test_malformed_table_ids_or_ids_of_another_partition_count_are_refused(text: str) -> None:
    with pytest.raises(BadEventId):
        TablePosition.decode(text, 3)


def record(partition: int, offset: int, key: str, value: object = None) -> OutputRecord:
    body = value if value is not None else {"table": "t", "key": key, "start": 0, "version": offset}
    return OutputRecord(partition, offset, key.encode(), orjson.dumps(body))


def test_a_key_subscription_sends_only_its_keys_records_with_their_offsets() -> None:
    follow = KeyFollow("alice", 1)
    assert follow.partitions == [1]
    assert follow.resume("41") == {1: 42}
    assert follow.start_at({1: 0}) == "-1"
    events = [
        follow.event(r) for r in (record(1, 5, "alice"), record(1, 6, "bob"), record(1, 7, "alice", [1]))
    ]
    assert events[1] is None and events[2] is None  # another key; not a JSON object
    assert events[0] is not None and events[0].id == "5"
    assert events[0].data == {
        "table": "t",
        "key": "alice",
        "start": 0,
        "version": 5,
        "partition": 1,
        "offset": 5,
    }


def test_resuming_a_table_subscription_from_any_id_reads_exactly_the_records_after_it() -> None:
    log = [record(0, 0, "a"), record(2, 0, "c"), record(0, 1, "a"), record(1, 0, "b"), record(2, 1, "c")]
    follow = TableFollow(3)
    first = follow.start_at({0: 0, 1: 0, 2: 0})
    ids = [first]
    for r in log:
        event = follow.event(r)
        assert event is not None
        ids.append(event.id)
    for sent, resume_id in enumerate(ids):
        again = TableFollow(3)
        starts = again.resume(resume_id)
        rest = [r for r in log if r.offset >= starts[r.partition]]
        assert rest == log[sent:]


def test_the_buffer_overflows_once_a_client_is_capacity_events_behind() -> None:
    async def fill() -> tuple[list[bool], list[int | None], bool]:
        buffer: EventBuffer[int] = EventBuffer(3)
        offered = [buffer.offer(i) for i in range(4)]
        taken = [buffer.take(), buffer.take()]
        offered.append(buffer.offer(9))  # refused: it overflowed before, whatever room it has now
        return offered, taken, buffer.overflowed and await buffer.changed(60)

    offered, taken, woke = asyncio.run(fill())
    assert offered == [True, True, True, False, False]
    assert taken == [0, 1] and woke


def test_the_writer_waits_for_an_event_or_its_heartbeat() -> None:
    async def wait() -> tuple[bool, bool, bool]:
        buffer: EventBuffer[int] = EventBuffer(3)
        quiet = await buffer.changed(0.01)
        waiter = asyncio.create_task(buffer.changed(60))
        # runs after the waiter's first step (callbacks run in order): it wakes a waiting writer
        asyncio.get_running_loop().call_soon(buffer.end, "worker_stopping")
        return quiet, await waiter, buffer.ended == "worker_stopping"

    assert asyncio.run(wait()) == (False, True, True)


class RecordingStream:
    """What :func:`serve_records` writes, without a connection."""

    def __init__(self) -> None:
        self.gone = self.stalled = False
        self.last_id: str | None = None
        self.last_write = time.monotonic()
        self.written: list[tuple[str, object, str | None]] = []

    async def event(self, name: str, data: object, id: str | None = None, counted: bool = True) -> None:
        self.written.append((name, data, id))
        self.last_write = time.monotonic()
        self.last_id = id or self.last_id

    async def heartbeat(self) -> None:
        self.written.append(("heartbeat", None, None))


def test_a_client_a_whole_buffer_behind_is_told_it_was_dropped_and_the_stream_ends() -> None:
    async def serve() -> tuple[str | None, list[tuple[str, object, str | None]]]:
        buffer: EventBuffer[RecordEvent] = EventBuffer(2)
        for offset in range(3):
            buffer.offer(RecordEvent({"offset": offset}, str(offset)))
        stream = RecordingStream()
        return await serve_records(stream, buffer, 15), stream.written  # type: ignore[arg-type]

    reason, written = asyncio.run(serve())
    assert reason == "slow_client"
    assert written == [("dropped", {"reason": "slow_client", "last_event_id": None}, None)]


def test_a_stopping_worker_ends_the_stream_after_the_last_event_sent() -> None:
    async def serve() -> tuple[str | None, list[tuple[str, object, str | None]]]:
        buffer: EventBuffer[RecordEvent] = EventBuffer(10)
        buffer.offer(RecordEvent({"offset": 4}, "4"))
        stream = RecordingStream()
        serving = asyncio.create_task(serve_records(stream, buffer, 15))  # type: ignore[arg-type]
        asyncio.get_running_loop().call_soon(buffer.end, "worker_stopping")
        return await serving, stream.written

    reason, written = asyncio.run(serve())
    assert reason == "worker_stopping"
    assert written == [
        ("record", {"offset": 4}, "4"),
        ("dropped", {"reason": "worker_stopping", "last_event_id": "4"}, None),
    ]
