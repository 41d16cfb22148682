"""Each collection of the cycle collector is observed once, by generation, for as long as it
ran on the given clock (:mod:`agents.gc_pauses`)."""

from __future__ import annotations

import gc

from agents.gc_pauses import GcPauses, watch_gc_pauses
from streams.telemetry.metrics import REGISTRY


def observed(generation: int) -> tuple[float, float]:
    labels = {"generation": str(generation)}
    count = REGISTRY.get_sample_value("continust_gc_pause_seconds_count", labels) or 0.0
    total = REGISTRY.get_sample_value("continust_gc_pause_seconds_sum", labels) or 0.0
    return count, total


def test_a_collection_is_observed_for_its_generation_on_the_clock() -> None:
    now = [10.0]
    pauses = GcPauses(clock=lambda: now[0])
    before = observed(1)
    pauses("start", {"generation": 1})
    now[0] += 0.25
    pauses("stop", {"generation": 1, "collected": 0, "uncollectable": 0})
    pauses("stop", {"generation": 1})  # a stop without its start counts nothing
    count, total = observed(1)
    assert count == before[0] + 1 and round(total - before[1], 6) == 0.25


def test_the_watcher_sees_the_collections_that_run() -> None:
    watcher = watch_gc_pauses()
    try:
        before = observed(2)[0]
        gc.collect(2)
        gc.collect(2)
        assert observed(2)[0] == before + 2
    finally:
        gc.callbacks.remove(watcher)
