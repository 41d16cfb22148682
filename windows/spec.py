"""Window definitions: frozen, validated on construction, all times in integer milliseconds.

Every window is the half-open interval [start, end). Every definition carries

* ``grace_ms``: a window is *closed* once stream time >= end + grace; a closed window takes no
  more events (see :mod:`windows.stream_time`);
* ``retention_ms``: a closed window stays queryable until stream time >= end + grace + retention,
  then it is deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


class Window(NamedTuple):
    """The half-open interval [start, end) in epoch milliseconds."""

    start: int
    end: int

    def overlaps(self, other: Window) -> bool:
        """Whether the two half-open intervals share at least one millisecond."""
        return self.start < other.end and other.start < self.end


def _check_bounds(grace_ms: int, retention_ms: int) -> None:
    if grace_ms < 0:
        raise ValueError(f"window `grace` must not be negative, got {grace_ms} ms")
    if retention_ms < 0:
        raise ValueError(f"window `retention` must not be negative, got {retention_ms} ms")


@dataclass(frozen=True)
class TumblingWindows:
    """Fixed-size, non-overlapping windows aligned to the epoch: an event at ``t`` belongs to
    exactly one window, ``[t - t mod size, t - t mod size + size)``."""

    size_ms: int
    grace_ms: int = 0
    retention_ms: int = 0

    kind = "tumbling"

    def __post_init__(self) -> None:
        if self.size_ms <= 0:
            raise ValueError(f"tumbling window `size` must be positive, got {self.size_ms} ms")
        _check_bounds(self.grace_ms, self.retention_ms)

    def windows_for(self, timestamp_ms: int) -> tuple[Window, ...]:
        """The windows an event at ``timestamp_ms`` belongs to (exactly one)."""
        return (tumbling_window(timestamp_ms, self.size_ms),)


@dataclass(frozen=True)
class SlidingWindows:
    """Windows of ``size`` starting every ``slide``, aligned to the epoch: every
    ``[k*slide, k*slide + size)`` that contains ``t`` (Flink's sliding windows, Kafka Streams'
    hopping windows). An event belongs to ``size / slide`` windows when ``slide`` divides
    ``size``, otherwise to the floor or ceiling of it."""

    size_ms: int
    slide_ms: int
    grace_ms: int = 0
    retention_ms: int = 0

    kind = "sliding"

    def __post_init__(self) -> None:
        if self.size_ms <= 0:
            raise ValueError(f"sliding window `size` must be positive, got {self.size_ms} ms")
        if not 0 < self.slide_ms <= self.size_ms:
            raise ValueError(
                f"sliding window `slide` must be positive and at most `size` ({self.size_ms} ms), "
                f"got {self.slide_ms} ms"
            )
        _check_bounds(self.grace_ms, self.retention_ms)

    def windows_for(self, timestamp_ms: int) -> tuple[Window, ...]:
        """The windows containing ``timestamp_ms``, earliest start first."""
        return sliding_windows(timestamp_ms, self.size_ms, self.slide_ms)


@dataclass(frozen=True)
class SessionWindows:
    """Per-key sessions of activity: an event at ``t`` opens ``[t, t + gap)``; the key's open
    sessions that overlap it merge with it into ``[min start, max end)``. Two events exactly
    ``gap`` apart are in different sessions (the intervals are half-open)."""

    gap_ms: int
    grace_ms: int = 0
    retention_ms: int = 0

    kind = "session"

    def __post_init__(self) -> None:
        if self.gap_ms <= 0:
            raise ValueError(f"session window `gap` must be positive, got {self.gap_ms} ms")
        _check_bounds(self.grace_ms, self.retention_ms)


WindowSpec = TumblingWindows | SlidingWindows | SessionWindows


def tumbling_window(timestamp_ms: int, size_ms: int) -> Window:
    """The tumbling window of ``size_ms`` that contains ``timestamp_ms``.

    Python's ``%`` is non-negative for a positive divisor, so timestamps before the epoch land in
    the window that contains them too.
    """
    start = timestamp_ms - timestamp_ms % size_ms
    return Window(start, start + size_ms)


def sliding_windows(timestamp_ms: int, size_ms: int, slide_ms: int) -> tuple[Window, ...]:
    """Every ``[k*slide, k*slide + size)`` containing ``timestamp_ms``: ``k`` runs from
    ``floor((t - size) / slide) + 1`` to ``floor(t / slide)``."""
    first = (timestamp_ms - size_ms) // slide_ms + 1
    last = timestamp_ms // slide_ms
    return tuple(Window(k * slide_ms, k * slide_ms + size_ms) for k in range(first, last + 1))
