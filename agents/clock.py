"""The wall clock, as a dependency: what the worker reads it for (``idle_timeout``, stream-time
lag) takes a :class:`Clock`, so the rules that follow it run on any time source, a test's
included. Window code (:mod:`windows`) never reads a clock: it is handed times."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """The time now, in integer epoch milliseconds."""
        ...


class WallClock:
    """The system's wall clock (``time.time_ns``), in epoch milliseconds."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


WALL_CLOCK = WallClock()
