"""How long the worker stands still for Python's cycle collector.

A collection runs inside whatever allocation triggered it, between two steps of the event loop:
processing and every query wait for it. A collection of generation 2 walks every container
object the worker holds (table caches, the ranked windows, Faust's and aiokafka's state), so its
pauses grow with the heap; they are what a query's tail latency meets first. Each collection is
observed in ``continust_gc_pause_seconds`` by generation (:func:`watch_gc_pauses`).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

from streams.telemetry.metrics import GC_PAUSE_SECONDS


class GcPauses:
    """A ``gc.callbacks`` entry observing each collection's duration (seconds, on ``clock``)."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self._started: float | None = None
        self._series = {
            generation: GC_PAUSE_SECONDS.labels(generation=str(generation)) for generation in range(3)
        }

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = self.clock()
            return
        if self._started is None:
            return
        paused, self._started = self.clock() - self._started, None
        series = self._series.get(info.get("generation", 2))
        if series is not None:
            series.observe(paused)


def watch_gc_pauses(clock: Callable[[], float] = time.perf_counter) -> GcPauses:
    """Observe every collection from now on; returns the callback (remove it from
    ``gc.callbacks`` to stop)."""
    watcher = GcPauses(clock)
    gc.callbacks.append(watcher)
    return watcher
