"""A table partition's processed offsets (read-your-writes): per input topic partition, the
largest offset it has processed, every event counting (valid or late), for a repartitioned
source from each event's origin, for a source partitioned by key from the batch read; and the
signal that wakes the queries waiting for them."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from faust.types import TP

from agents.keyed_stream import keyed_stream
from agents.merge import KeyedEvent, ProgressReport
from agents.progress_signal import ProgressSignal
from agents.table_store import MemoryTablePartitions
from agents.windowed import TableStage
from streams.plan.pipeline import TableSpec
from tests.unit.test_keyed_stream import source_stage
from windows.aggregation_calls import parse_aggregation
from windows.spec import TumblingWindows
from windows.write_back import WriteBackStore

SPEC = TableSpec(
    name="counts",
    source="events",
    window=TumblingWindows(size_ms=10, grace_ms=0, retention_ms=100),
    aggregate_names=("n",),
    aggregations=(parse_aggregation("count()"),),
    emit="final",
)


def stage_for(partitioned_by_key: bool) -> TableStage:
    source, _ = source_stage(partitioned_by_key, partitions=2)
    return TableStage(
        app=source.app,
        runtime=source.runtime,
        spec=SPEC,
        source=source,
        stream=keyed_stream(source),
        sink=None,  # type: ignore[arg-type]
        partitions=2,
        committed=MemoryTablePartitions(),
    )


def event(source: int, offset: int, ts: int, inputs: int, own: int | None = None) -> KeyedEvent:
    """An event of input ``source`` at ``offset``; ``own``: its input's progress before it."""
    record = SimpleNamespace(offset=offset, key=b"k", value=b"{}")  # as aiokafka gives it
    return KeyedEvent(record, "k", ts, {}, source, offset * inputs + source, own)


def test_a_repartitioned_partition_counts_each_events_origin_late_ones_too() -> None:
    stage = stage_for(partitioned_by_key=False)  # inputs a:0 a:1 b:0 b:1, numbered 0..3
    keyed = TP("events-repartition", 1)
    stage.process_events(keyed, [event(1, 7, 100, 4), event(2, 3, 105, 4), ProgressReport(0, 50, False)], 40)
    assert stage.store.get_offsets(1) == {"a:1": 7, "b:0": 3}
    late = event(1, 9, 1, 4, own=100)  # its window closed long ago by input a:1's progress
    stage.process_events(keyed, [late, ProgressReport(3, 90, True)], 41)
    assert [(w.start, w.states) for w in stage.store.key_windows(1, "k")] == [(100, [2])], "it was late"
    assert stage.store.get_offsets(1) == {"a:1": 9, "b:0": 3}, "a late event counts"
    assert stage.store.get_offsets(0) == {}, "partition 0 processed nothing"
    assert stage.keyed_read == {keyed: 41}
    changes = stage.store.changes()
    stage.store.committed(changes)
    assert WriteBackStore(stage.committed_store).get_offsets(1) == {"a:1": 9, "b:0": 3}, "saved at a commit"


def test_a_partition_of_a_source_partitioned_by_key_counts_every_record_it_read() -> None:
    stage = stage_for(partitioned_by_key=True)  # partition 1 reads a:1 and b:1
    stage.process_events(TP("b", 1), [event(1, 4, 100, 2)], 6)  # records 5 and 6 were invalid
    stage.process_events(TP("a", 1), [], 2)
    assert stage.store.get_offsets(1) == {"b:1": 6, "a:1": 2}


def test_waiters_wake_when_processing_moves_and_give_up_at_the_timeout() -> None:
    async def scenario() -> None:
        signal = ProgressSignal()
        processed = {"n": 0}
        checked = asyncio.Event()

        def condition() -> bool:
            checked.set()
            return processed["n"] >= 2

        waiter = asyncio.create_task(signal.wait_until(condition, 30))
        await checked.wait()  # checked once: now waiting for a notify
        checked.clear()
        processed["n"] = 1
        signal.notify()
        await checked.wait()  # checked again at the notify, and waits on
        assert not waiter.done()
        processed["n"] = 2
        signal.notify()
        assert await asyncio.wait_for(waiter, 5) is True
        loop = asyncio.get_running_loop()
        began = loop.time()
        assert await signal.wait_until(lambda: False, 0.05) is False
        assert loop.time() - began >= 0.05

    asyncio.run(scenario())
