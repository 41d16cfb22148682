"""A signal that processing moved: waiters (queries waiting for a position, read-your-writes)
wake when the table stage says so, with no polling.

:meth:`ProgressSignal.wait_until` re-checks its condition each time :meth:`notify` is called
(after each batch a table stage applies), until it holds or the timeout passes. All of it runs
in the worker's event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class ProgressSignal:
    def __init__(self) -> None:
        self._moved: asyncio.Event | None = None

    def notify(self) -> None:
        """Wake every waiter (cheap when there is none)."""
        moved, self._moved = self._moved, None
        if moved is not None:
            moved.set()

    async def wait_until(self, condition: Callable[[], bool], timeout_s: float) -> bool:
        """Wait until ``condition()`` holds, re-checked at each :meth:`notify`, for at most
        ``timeout_s`` seconds; returns whether it holds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not condition():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            if self._moved is None:
                self._moved = asyncio.Event()
            try:
                await asyncio.wait_for(self._moved.wait(), remaining)
            except TimeoutError:
                return condition()
        return True
