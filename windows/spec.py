"""Window definitions: frozen, validated on construction, all times in integer milliseconds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


class Window(NamedTuple):
    """The half-open interval [start, end) in epoch milliseconds."""

    start: int
    end: int


@dataclass(frozen=True)
class TumblingWindows:
    """Fixed-size, non-overlapping windows aligned to the epoch: an event at ``t`` belongs to
    exactly one window, ``[t - t mod size, t - t mod size + size)``.

    ``grace_ms``: how long after a window's end (in stream time) it still accepts late events.
    ``retention_ms``: how long after it closes (in stream time) a window stays queryable.
    """

    size_ms: int
    grace_ms: int = 0
    retention_ms: int = 0

    def __post_init__(self) -> None:
        if self.size_ms <= 0:
            raise ValueError(f"tumbling window `size` must be positive, got {self.size_ms} ms")
        if self.grace_ms < 0:
            raise ValueError(f"window `grace` must not be negative, got {self.grace_ms} ms")
        if self.retention_ms < 0:
            raise ValueError(f"window `retention` must not be negative, got {self.retention_ms} ms")

    def windows_for(self, timestamp_ms: int) -> tuple[Window, ...]:
        """The windows an event at ``timestamp_ms`` belongs to (exactly one)."""
        return (tumbling_window(timestamp_ms, self.size_ms),)


def tumbling_window(timestamp_ms: int, size_ms: int) -> Window:
    """The tumbling window of ``size_ms`` that contains ``timestamp_ms``.

    Python's ``%`` is non-negative for a positive divisor, so timestamps before the epoch land in
    the window that contains them too.
    """
    start = timestamp_ms - timestamp_ms % size_ms
    return Window(start, start + size_ms)
