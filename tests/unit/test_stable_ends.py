"""Recovery's end offsets wait, bounded, for a committed transaction's markers
(agents/stable_ends.py): a store on disk naming an offset the last stable offset has not passed
yet is read again until it has, rather than refused; one still ahead after the wait is left to
Faust's consistency check; partitions without state on disk are never waited for. Driven on an
injected clock."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from faust.types import TP

from agents.stable_ends import behind, ends_reaching

A, B, C = TP("t-changelog", 0), TP("t-changelog", 1), TP("t-changelog", 2)


class Broker:
    """End offsets that move on as the test says, and a clock that the waits advance."""

    def __init__(self, ends: list[dict[TP, int]]) -> None:
        self.reads = ends
        self.asked: list[list[TP]] = []
        self.now = 0.0

    async def reread(self, tps: list[TP]) -> Mapping[TP, int]:
        self.asked.append(tps)
        answer = self.reads.pop(0) if len(self.reads) > 1 else self.reads[0]
        return {tp: answer[tp] for tp in tps}

    async def sleep(self, seconds: float) -> None:
        self.now += seconds

    def clock(self) -> float:
        return self.now


def run(ends: dict[TP, int], persisted: dict[TP, int], broker: Broker, wait_s: float = 30) -> dict[TP, int]:
    return asyncio.run(ends_reaching(ends, persisted, broker.reread, wait_s, broker.sleep, broker.clock))


def test_a_partition_is_behind_while_its_end_does_not_pass_its_stores_offset() -> None:
    # Faust takes end - 1 as the last offset and refuses a store past it
    assert behind({A: 4, B: 5, C: 9}, {A: 4, B: 4}) == [A]
    assert behind({A: 5}, {A: 4, C: 7}) == []


def test_the_markers_written_after_a_broker_restart_end_the_wait() -> None:
    broker = Broker([{A: 0, B: 9}, {A: 0, B: 9}, {A: 2, B: 9}])
    assert run({A: 0, B: 9, C: 0}, {A: 1, B: 3}, broker) == {A: 2, B: 9, C: 0}
    assert broker.asked == [[A], [A], [A]]  # only the partition behind, until it passed
    assert broker.now < 1


def test_a_store_still_ahead_after_the_wait_is_left_to_fausts_check() -> None:
    broker = Broker([{A: 0}])
    assert run({A: 0}, {A: 1}, broker, wait_s=5) == {A: 0}
    assert 5 <= broker.now < 5.5


def test_nothing_is_read_again_when_no_store_is_ahead() -> None:
    broker = Broker([{A: 0}])
    assert run({A: 3, B: 0}, {A: 2}, broker) == {A: 3, B: 0}
    assert broker.asked == [] and broker.now == 0
