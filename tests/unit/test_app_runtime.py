"""One runtime per app (:mod:`agents.app_runtime`): attached once and found again, the
transactional id of an input partition in Faust's format by topic group, and the gate counting
every batch it processes, and only those, as the worker's progress."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP

from agents.app_runtime import AppRuntime, runtime_of
from agents.commit_gate import Batch
from agents.liveness import Liveness
from tests.unit.test_commit_gate import PartitionConsumer, Record, app_of, handler


class App:
    """The app as the runtime reads it: its id and the topic group of each topic."""

    conf = SimpleNamespace(id="orders")
    assignor = SimpleNamespace(group_for_topic=lambda topic: {"a": 0, "b": 1}[topic])


def test_an_app_has_one_runtime_found_again_from_the_app() -> None:
    app = App()
    with pytest.raises(LookupError):
        runtime_of(app)
    runtime = AppRuntime.attach(app)
    assert runtime_of(app) is runtime and runtime.app is app
    with pytest.raises(ValueError, match="has a runtime already"):
        AppRuntime.attach(app)
    other = App()
    assert AppRuntime.attach(other) is runtime_of(other) is not runtime


def test_the_transactional_id_is_fausts_by_topic_group() -> None:
    runtime = AppRuntime(App())
    assert runtime.transactional_id(TP("a", 3)) == "orders-0-3"
    assert runtime.transactional_id(TP("b", 3)) == "orders-1-3"


def test_the_gate_reports_each_processed_batch_as_progress_and_no_dropped_one() -> None:
    clock = SimpleNamespace(now_ms=lambda: clock.ms, ms=1_000)
    runtime = AppRuntime(SimpleNamespace(), Liveness(60_000, clock))  # type: ignore[arg-type]
    consumer = PartitionConsumer(committed=0, position=0)
    consumer.rewinds.seek_ended({TP("a", 0): 0})  # rewound to its committed offset
    app: Any = app_of(consumer)
    clock.ms = 5_000
    fresh = Batch(TP("a", 0), 1, [Record(0), Record(1)], consumer.seek_epoch)
    asyncio.run(runtime.gate.process_batch(app, fresh, handler))
    assert consumer.acked == [0, 1] and runtime.liveness.progress_at_ms == 5_000
    clock.ms = 9_000
    stale = Batch(TP("a", 0), 0, [Record(2)], consumer.seek_epoch)  # an older generation: dropped
    asyncio.run(runtime.gate.process_batch(app, stale, handler))
    assert consumer.acked == [0, 1] and runtime.liveness.progress_at_ms == 5_000


@pytest.mark.parametrize(
    ("should_stop", "rebalancing", "in_recovery", "paused"),
    [
        (False, False, False, False),
        (True, False, False, True),
        (False, True, False, True),
        (False, False, True, True),
    ],
)
def test_writes_pause_while_the_app_stops_rebalances_or_recovers(
    should_stop: bool, rebalancing: bool, in_recovery: bool, paused: bool
) -> None:
    app = SimpleNamespace(should_stop=should_stop, rebalancing=rebalancing, in_recovery=in_recovery)
    assert AppRuntime(app).writes_paused() is paused
