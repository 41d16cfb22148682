"""A Faust sensor that feeds the worker's Prometheus metrics from the consumer's callbacks."""

from __future__ import annotations

from typing import Any

from faust import Sensor
from faust.types import TP

from streams.metrics import RECORDS_FETCHED


class MetricsSensor(Sensor):
    def on_message_in(self, tp: TP, offset: int, message: Any) -> None:
        RECORDS_FETCHED.labels(topic=tp.topic, partition=str(tp.partition)).inc()
