"""A Faust sensor that feeds the worker's Prometheus metrics from Faust's callbacks: records
fetched, rebalances (``continust_rebalances_total`` when one starts,
``continust_rebalance_seconds_total`` when it ends, which is after its recovery) and recovery
durations (``continust_recovery_seconds``, observed when the rebalance that ran it ends)."""

from __future__ import annotations

import logging
import time
from typing import Any

from faust import Sensor
from faust.types import TP

from agents.faust_compat import recovery_times
from streams.telemetry.logfmt import logfmt
from streams.telemetry.metrics import REBALANCE_SECONDS, REBALANCES, RECORDS_FETCHED, RECOVERY_SECONDS

log = logging.getLogger("continust.sensor")


class MetricsSensor(Sensor):
    def __post_init__(self) -> None:
        super().__post_init__()
        #: the end time (monotonic) of the last recovery observed
        self.recovery_seen: float | None = None

    def on_message_in(self, tp: TP, offset: int, message: Any) -> None:
        RECORDS_FETCHED.labels(topic=tp.topic, partition=str(tp.partition)).inc()

    def on_rebalance_start(self, app: Any) -> dict[str, Any]:
        REBALANCES.inc()
        return {"started": time.monotonic()}

    def on_rebalance_end(self, app: Any, state: dict[str, Any]) -> None:
        started = state.get("started") if isinstance(state, dict) else None
        if started is not None:
            REBALANCE_SECONDS.inc(max(0.0, time.monotonic() - started))
        try:
            began, ended = recovery_times(app)
        except AttributeError as exc:  # the seam's canary names the change
            log.warning(logfmt("sensor.recovery_times_failed", error=repr(exc)))
            return
        if began is not None and ended is not None and ended >= began and ended != self.recovery_seen:
            self.recovery_seen = ended
            RECOVERY_SECONDS.observe(ended - began)
