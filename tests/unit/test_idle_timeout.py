"""``idle_timeout`` (:mod:`agents.idle_timeout`) on an injected clock: a quiet partition's stream
time stays where its events put it until the timeout has passed, then follows the clock, closing
and emitting windows. The clock is moved by hand, so nothing waits."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from agents.app_runtime import AppRuntime
from agents.clock import WALL_CLOCK
from agents.idle_timeout import IdleTimeout
from agents.windowed import TableStage
from streams.plan.pipeline import TableSpec
from windows.aggregation_calls import parse_aggregation
from windows.partition import PartitionWindows
from windows.spec import TumblingWindows
from windows.store import InMemoryWindowStore
from windows.table import WindowedAggregate

SIZE, TIMEOUT = 2_000, 3_000
START = 1_000_000  # event time of the first window, a multiple of SIZE
WALL = 5_000_000  # the injected clock when the events arrive: any time, unrelated to event time


@dataclass
class FakeClock:
    now: int

    def now_ms(self) -> int:
        return self.now


def final_counts() -> PartitionWindows:
    table = WindowedAggregate(
        window=TumblingWindows(size_ms=SIZE, retention_ms=3_600_000),
        aggregations=(parse_aggregation("count()"),),
        names=("n",),
        emit="final",
    )
    return PartitionWindows(table, InMemoryWindowStore(), 0)


def one_event_received() -> tuple[FakeClock, IdleTimeout, PartitionWindows]:
    """Partition 0 after one event at ``START + 100`` that arrived at ``WALL``."""
    clock = FakeClock(WALL)
    idle = IdleTimeout(TIMEOUT, clock)
    windows = final_counts()
    windows.on_event("h1", {}, START + 100, 0)
    idle.received(0, windows.stream_time)
    return clock, idle, windows


def records(emissions) -> list[tuple[int, int, dict]]:
    return [(e.start, e.end, e.value) for e in emissions]


def test_a_quiet_partition_follows_the_clock_only_after_the_timeout() -> None:
    clock = FakeClock(WALL)
    idle = IdleTimeout(TIMEOUT, clock)
    windows = final_counts()
    idle.received(0, windows.stream_time)  # loaded
    closed = []
    for arrival, offset in enumerate((100, 1_900, 2_500, 4_000, 4_100)):
        closed += windows.on_event("h1", {}, START + offset, arrival).emissions
    idle.received(0, windows.stream_time)
    # the events close [START, +2s) and [+2s, +4s); [+4s, +6s) waits for stream time START + 6s
    assert records(closed) == [(START, START + SIZE, {"n": 2}), (START + SIZE, START + 2 * SIZE, {"n": 1})]

    clock.now = WALL + TIMEOUT - 1
    assert idle.advance(0, windows) == ()
    assert windows.stream_time == START + 4_100

    clock.now = WALL + TIMEOUT
    emitted = idle.advance(0, windows)
    assert windows.stream_time == START + 4_100 + TIMEOUT
    assert records(emitted) == [(START + 2 * SIZE, START + 3 * SIZE, {"n": 2})]

    clock.now = WALL + TIMEOUT + 10_000
    assert idle.advance(0, windows) == ()  # nothing left to close
    assert windows.stream_time == START + 4_100 + TIMEOUT + 10_000


def test_a_record_starts_the_quiet_again() -> None:
    clock, idle, windows = one_event_received()
    clock.now = WALL + TIMEOUT - 1
    windows.on_event("h1", {}, START + 200, 1)
    idle.received(0, windows.stream_time)
    clock.now = WALL + TIMEOUT
    assert idle.advance(0, windows) == ()  # quiet for 1 ms only
    assert windows.stream_time == START + 200
    clock.now = WALL + 2 * TIMEOUT - 1
    assert records(idle.advance(0, windows)) == [(START, START + SIZE, {"n": 2})]
    assert windows.stream_time == START + 200 + TIMEOUT


def test_a_partition_without_stream_time_stays_put() -> None:
    clock = FakeClock(WALL)
    idle = IdleTimeout(TIMEOUT, clock)
    empty = final_counts()
    idle.received(0, empty.stream_time)
    clock.now = WALL + 10 * TIMEOUT
    assert idle.advance(0, empty) == () and empty.stream_time is None


def test_a_partition_not_received_or_forgotten_stays_put() -> None:
    clock, idle, windows = one_event_received()
    clock.now += 10 * TIMEOUT
    assert idle.advance(1, windows) == ()  # partition 1 never received anything
    idle.forget()  # revoked
    assert idle.advance(0, windows) == ()
    assert windows.stream_time == START + 100


def test_stream_time_ahead_of_the_clock_does_not_move_back() -> None:
    clock, idle, windows = one_event_received()
    windows.advance_to(START + 100 + 5 * TIMEOUT)  # moved by other means since
    clock.now = WALL + TIMEOUT
    assert idle.advance(0, windows) == ()
    assert windows.stream_time == START + 100 + 5 * TIMEOUT


def test_the_check_interval_is_a_quarter_of_the_timeout_within_bounds() -> None:
    assert IdleTimeout(3_000).check_interval_s == 0.75
    assert IdleTimeout(100).check_interval_s == 0.05
    assert IdleTimeout(3_600_000).check_interval_s == 1.0


def test_the_default_clock_is_the_wall_clock_in_epoch_milliseconds() -> None:
    assert IdleTimeout(TIMEOUT).clock is WALL_CLOCK
    before = time.time_ns() // 1_000_000
    now = WALL_CLOCK.now_ms()
    assert isinstance(now, int) and before <= now <= time.time_ns() // 1_000_000


class TablesOnly:
    """Enough of a Faust app to build a table stage: its tables are never read here."""

    def Table(self, name: str, **options: object) -> object:
        return object()


def test_the_table_stage_runs_its_idle_timeout_on_the_clock_it_is_given() -> None:
    spec = TableSpec(
        name="idle",
        source="pings",
        window=TumblingWindows(size_ms=SIZE),
        aggregate_names=("n",),
        aggregations=(parse_aggregation("count()"),),
        emit="final",
        idle_timeout_ms=TIMEOUT,
    )
    clock = FakeClock(WALL)
    app = TablesOnly()
    stage = TableStage(
        app=app,
        runtime=AppRuntime(app),
        spec=spec,
        source=None,
        stream=None,
        sink=None,
        partitions=1,
        clock=clock,
    )
    assert stage.idle_timeout is not None
    assert stage.idle_timeout.clock is clock and stage.idle_timeout.timeout_ms == TIMEOUT
    without = TableStage(
        app=app,
        runtime=stage.runtime,
        spec=replace(spec, idle_timeout_ms=None),
        source=None,
        stream=None,
        sink=None,
        partitions=1,
    )
    assert without.idle_timeout is None and without.clock is WALL_CLOCK
