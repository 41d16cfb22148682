"""The query budget on a fake clock: reads take at most their share of each window."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from agents.application import BEHIND_RECORDS, query_budget
from streams.api.query_budget import QueryBudget


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


def test_reads_beyond_the_share_of_a_window_wait_for_the_next_window() -> None:
    time = FakeTime()
    budget = QueryBudget(share=0.5, window_s=0.1, clock=time.clock, sleep=time.sleep)
    started: list[float] = []

    def read() -> int:  # each read takes 30 ms
        started.append(round(time.now, 6))
        time.now += 0.03
        return len(started)

    async def reads() -> list[int]:
        return [await budget.run(read) for _ in range(5)]

    assert asyncio.run(reads()) == [1, 2, 3, 4, 5]
    # 30 + 30 ms spend the 50 ms share of the first window; the third read waits for the next
    assert started == [0.0, 0.03, 0.1, 0.13, 0.2]
    assert time.slept == [0.04, 0.04]


def test_reads_within_the_share_never_wait() -> None:
    time = FakeTime()
    budget = QueryBudget(share=0.5, window_s=0.1, clock=time.clock, sleep=time.sleep)

    def read() -> None:
        time.now += 0.01

    async def reads() -> None:
        for _ in range(20):
            await budget.run(read)
            time.now += 0.02  # the loop does other work between reads

    asyncio.run(reads())
    assert time.slept == []


def test_reads_run_past_the_share_only_while_processing_has_nothing_waiting() -> None:
    """Asked once per window: uncontended windows hold no read back, whatever their reads
    cost; a contended one holds them to the share again."""
    time = FakeTime()
    waiting = [False, False, True, True]  # processing's answer at the start of each window
    asked: list[float] = []

    def contended() -> bool:
        asked.append(round(time.now, 6))
        return waiting[len(asked) - 1]

    budget = QueryBudget(share=0.5, window_s=0.1, clock=time.clock, sleep=time.sleep, contended=contended)
    started: list[float] = []

    def read() -> None:  # each read takes 40 ms
        started.append(round(time.now, 6))
        time.now += 0.04

    async def reads() -> None:
        for _ in range(8):
            await budget.run(read)

    asyncio.run(reads())
    # windows at 0 and 0.12 are uncontended: three reads each, 120 ms of a 100 ms window;
    # from 0.24 the share holds: two reads (80 ms >= 50 ms) and a wait for the next window
    assert started == [0.0, 0.04, 0.08, 0.12, 0.16, 0.2, 0.24, 0.28]
    assert asked == [0.0, 0.12, 0.24] and time.slept == []
    asyncio.run(budget.run(read))
    assert asked == [0.0, 0.12, 0.24, 0.34] and time.slept == [0.02]


def test_a_failing_read_counts_its_time_and_raises() -> None:
    time = FakeTime()
    budget = QueryBudget(share=0.5, window_s=0.1, clock=time.clock, sleep=time.sleep)

    def read() -> None:
        time.now += 0.06
        raise KeyError("gone")

    with pytest.raises(KeyError):
        asyncio.run(budget.run(read))
    asyncio.run(budget.run(lambda: None))
    assert time.slept == [0.04]


@pytest.mark.parametrize(("share", "window"), [(0.0, 0.1), (1.5, 0.1), (0.5, 0.0)])
def test_a_budget_must_be_a_share_of_a_positive_window(share: float, window: float) -> None:
    with pytest.raises(ValueError):
        QueryBudget(share=share, window_s=window)


@pytest.mark.parametrize(("lag", "contended"), [(None, True), (0, False), (1_000, False), (1_001, True)])
def test_the_worker_holds_queries_to_their_share_only_while_processing_is_behind(
    lag: int | None, contended: bool
) -> None:
    """The worker's budget (:func:`agents.application.query_budget`): contended once more than
    ``BEHIND_RECORDS`` records are left to read; a worker whose state is not built yet counts
    as behind."""
    assert BEHIND_RECORDS == 1_000
    state = None if lag is None else SimpleNamespace(processing_lag=lambda: lag)
    budget = query_budget(SimpleNamespace(state=state))  # type: ignore[arg-type]
    assert budget.contended() is contended
