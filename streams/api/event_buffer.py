"""The bounded buffer between what a subscription reads and what its client has taken: the
reader offers events, the writer takes them as fast as the client reads. When the client falls
``capacity`` events behind, the buffer overflows: it takes nothing more and says so, and the
subscription ends (the client resumes from the last id it got) instead of holding ever more
events in memory or slowing the reader."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

Item = TypeVar("Item")


class EventBuffer(Generic[Item]):
    """At most ``capacity`` items, first in first out. Create it inside the event loop."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be 1 or more, got {capacity}")
        self.capacity = capacity
        self._items: deque[Item] = deque()
        self._changed = asyncio.Event()
        #: set once an item was refused; nothing is taken afterwards
        self.overflowed = False
        #: why the reader stopped (``None`` while it reads)
        self.ended: str | None = None

    def __len__(self) -> int:
        return len(self._items)

    def offer(self, item: Item) -> bool:
        """Keep ``item``; ``False`` (and :attr:`overflowed` set) when the buffer is full or
        has overflowed before."""
        if self.overflowed or len(self._items) >= self.capacity:
            self.overflowed = True
            self._changed.set()
            return False
        self._items.append(item)
        self._changed.set()
        return True

    def end(self, reason: str) -> None:
        """The reader stops: no more items will come, for ``reason``."""
        if self.ended is None:
            self.ended = reason
        self._changed.set()

    def take(self) -> Item | None:
        """The oldest item, ``None`` when there is none."""
        return self._items.popleft() if self._items else None

    async def changed(self, timeout_s: float) -> bool:
        """Wait until an item is offered, the buffer overflows or the reader ends (``True``),
        or ``timeout_s`` seconds pass (``False``)."""
        if self._items or self.overflowed or self.ended is not None:
            return True
        self._changed.clear()
        try:
            await asyncio.wait_for(self._changed.wait(), timeout_s)
        except TimeoutError:
            return False
        return True
