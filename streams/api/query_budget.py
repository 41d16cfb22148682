"""How much of a worker's time queries may take.

The HTTP API shares the worker's event loop with processing, so a query reading table state is
time processing does not get: 50 clients scanning as fast as they can stopped a worker from
keeping up with its input. :class:`QueryBudget` bounds it: reads of table state for queries get
at most ``share`` of each ``window_s`` of wall time; a read that finds the window's share spent
waits for the next window. Under more query load than the share serves, answers take longer and
processing keeps its pace.

The budget takes only time processing would use: ``contended()`` (asked once per window) says
whether processing has work waiting (the worker: more records left to read than a fetch
returns). While it has none, reads run past the share and answers are not held back: the loop
would otherwise sit idle. Once processing falls behind, the next window holds queries to the
share again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")


@dataclass
class QueryBudget:
    share: float = 0.5
    window_s: float = 0.1
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    #: whether processing has work waiting; asked at the start of each window
    contended: Callable[[], bool] = lambda: True
    _window_start: float = field(default=float("-inf"), init=False)
    _spent: float = field(default=0.0, init=False)
    _contended: bool = field(default=True, init=False)

    def __post_init__(self) -> None:
        if not 0 < self.share <= 1:
            raise ValueError(f"share must be in (0, 1], got {self.share}")
        if self.window_s <= 0:
            raise ValueError(f"window_s must be positive, got {self.window_s}")

    async def run(self, read: Callable[[], T]) -> T:
        """``read()`` once the current window has budget left (or processing has nothing
        waiting), its time counted against it."""
        while True:
            now = self.clock()
            if now - self._window_start >= self.window_s:
                self._window_start, self._spent = now, 0.0
                self._contended = self.contended()
            if not self._contended or self._spent < self.share * self.window_s:
                break
            await self.sleep(self._window_start + self.window_s - now)
        started = self.clock()
        try:
            return read()
        finally:
            self._spent += self.clock() - started
