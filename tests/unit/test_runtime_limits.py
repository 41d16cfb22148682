"""The pure rules behind broker outages and memory limits: reachability from probe outcomes
(clock passed in), the write-back cache's size estimate, and the gate's limit check."""

from __future__ import annotations

import logging
import tracemalloc

import pytest

from agents.commit_gate import CommitGate
from streams.kafka.broker_reachability import BrokerReachability
from streams.telemetry.logfmt import RepeatedMessageFilter
from windows.aggregation_calls import parse_aggregation
from windows.partition import PartitionWindows
from windows.spec import TumblingWindows
from windows.store import InMemoryWindowStore
from windows.table import WindowedAggregate
from windows.write_back import KEY_BYTES, WriteBackStore, window_bytes_for


def test_reachability_follows_the_probes_and_gives_up_after_the_timeout() -> None:
    state = BrokerReachability(timeout_s=10)
    assert state.reachable and state.unreachable_for(100) == 0 and not state.exhausted(100)
    assert not state.record(True, 1)  # no change
    assert state.record(False, 2, "KafkaConnectionError: refused")  # became unreachable
    assert not state.record(False, 5, "still refused")
    assert (state.reachable, state.unreachable_for(7), state.last_error) == (False, 5, "still refused")
    assert not state.exhausted(11.9) and state.exhausted(12)
    assert state.record(True, 13)  # back: the stretch ends
    assert state.reachable and state.unreachable_for(50) == 0 and not state.exhausted(50)
    state.record(False, 60)  # a new stretch counts from its own start
    assert not state.exhausted(69) and state.exhausted(70)


def _table(aggregations: int) -> WindowedAggregate:
    calls = ["count()", "sum(x)", "min(x)", "max(x)", "avg(x)"][:aggregations]
    names = tuple(f"a{i}" for i in range(aggregations))
    return WindowedAggregate(
        TumblingWindows(size_ms=10_000, grace_ms=0, retention_ms=10**9),
        tuple(parse_aggregation(c) for c in calls),
        names,
        "final",
    )


@pytest.mark.parametrize("aggregations", [1, 5])
def test_the_cache_estimate_is_within_a_factor_of_two_of_what_python_allocates(aggregations: int) -> None:
    """Keys with several windows each, read into the cache and changed: the estimate tracks the
    objects the cache keeps alive, and a flush or a forget empties it."""
    inner = InMemoryWindowStore()
    cache = WriteBackStore(inner, window_bytes_for(aggregations))
    windows = PartitionWindows(_table(aggregations), cache, 0)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(20_000):
        windows.on_event(f"user-{i % 2_000}", {"x": i % 7}, (i // 2_000) * 10_000, i)
    allocated = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert cache.approx_bytes >= 2_000 * KEY_BYTES
    assert allocated / 2 <= cache.approx_bytes <= allocated * 2, (allocated, cache.approx_bytes)
    cache.flush()
    assert cache.approx_bytes == 0
    windows.on_event("user-1", {"x": 1}, 200_000, 1)
    assert cache.approx_bytes > 0
    cache.forget(0)
    assert cache.approx_bytes == 0


def test_the_gate_names_the_first_limit_reached() -> None:
    gate = CommitGate()
    assert gate.over_limit() is None
    use = {"cache": 10}
    gate.memory_limits["state_cache"] = 100
    gate.memory_use["state_cache"] = [lambda: use["cache"], lambda: 50]
    assert gate.over_limit() is None
    use["cache"] = 50
    assert gate.over_limit() == "state_cache"


def test_a_library_message_repeated_within_the_interval_is_logged_once_then_counted() -> None:
    now = [0.0]
    repeats = RepeatedMessageFilter(interval_s=10, clock=lambda: now[0])

    def record(name: str, msg: str) -> logging.LogRecord:
        return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, None, None)

    assert repeats.filter(record("aiokafka", "Unable connect to node 1"))
    now[0] = 5
    assert not repeats.filter(record("aiokafka", "Unable connect to node 1"))
    assert not repeats.filter(record("aiokafka", "Unable connect to node 1"))
    assert repeats.filter(record("aiokafka", "another message"))
    # continust's own errors count per event (tests/unit/test_log_lines.py), apart from these
    assert repeats.filter(record("continust.worker", "event=x"))
    assert not repeats.filter(record("continust.worker", "event=x a=1"))
    now[0] = 10
    again = record("aiokafka", "Unable connect to node 1")
    assert repeats.filter(again)
    assert again.getMessage() == "Unable connect to node 1 (repeated=2 in 10s)"
