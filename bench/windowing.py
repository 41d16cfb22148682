"""The three window shapes of the benchmark and the reference aggregation over them.

Every window is half-open ``[start, end)`` in epoch ms, as in continust's README. A result is a
mapping ``(key, start, end) -> (count, sum)``; every contender's output is reduced to one and
compared with the reference computed here from the events themselves.

- tumbling ``size``: one window ``[t - t mod size, + size)`` per event;
- sliding ``size``/``slide``: every ``[k * slide, k * slide + size)`` that contains ``t``;
- session ``gap``: per key, events sorted by time; a new session starts where the next event is
  ``gap`` or more after the previous one (events exactly ``gap`` apart are separate sessions);
  a session is ``[first event, last event + gap)``.

The events never arrive later than the grace allows (see :mod:`bench.events`), so no window
closes before all of its events are in and the offline reference is exact.

A contender that emits a window only once it closes (``emit = "final"``, Quix ``.final()``) is
checked against :func:`closed_only`: the windows of the reference that are closed at the end of
the input, by the rule continust and Quix (``closing_strategy="partition"``) share. A partition's
stream time is the largest ``ts`` on it; a window closes once the stream time of its key's
partition reaches ``end + grace``. The input is keyed by ``user`` (Kafka's default partitioner),
so a key's partition is the partition of its name.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from bench.events import Event
from streams.kafka.partitioning import key_partition

Window = tuple[str, int, int]
Aggregate = tuple[int, float]
Results = dict[Window, Aggregate]


@dataclass(frozen=True)
class WindowShape:
    """``kind`` is ``tumbling``, ``sliding`` or ``session``; sizes in ms."""

    kind: str
    size_ms: int = 0
    slide_ms: int = 0
    gap_ms: int = 0
    grace_ms: int = 5_000

    def describe(self) -> str:
        if self.kind == "tumbling":
            return f"tumbling {self.size_ms // 1000}s"
        if self.kind == "sliding":
            return f"sliding {self.size_ms // 1000}s/{self.slide_ms // 1000}s"
        return f"session gap {self.gap_ms // 1000}s"


TUMBLING = WindowShape("tumbling", size_ms=10_000)
SLIDING = WindowShape("sliding", size_ms=60_000, slide_ms=10_000)
SESSION = WindowShape("session", gap_ms=30_000)


def starts(shape: WindowShape, ts: int) -> list[int]:
    """Starts of the tumbling or sliding windows that contain ``ts``."""
    step = shape.size_ms if shape.kind == "tumbling" else shape.slide_ms
    first = ts - ts % step
    return list(range(first, ts - shape.size_ms, -step))


def reference(shape: WindowShape, events: Iterable[Event]) -> Results:
    """The exact result of counting and summing ``amount`` per key per window."""
    if shape.kind == "session":
        return _sessions(shape.gap_ms, events)
    acc: dict[Window, list[float]] = {}
    for user, ts, amount in events:
        for start in starts(shape, ts):
            window = (user, start, start + shape.size_ms)
            slot = acc.get(window)
            if slot is None:
                acc[window] = [1, amount]
            else:
                slot[0] += 1
                slot[1] += amount
    return {w: (int(n), s) for w, (n, s) in acc.items()}


def _sessions(gap_ms: int, events: Iterable[Event]) -> Results:
    per_key: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for user, ts, amount in events:
        per_key[user].append((ts, amount))
    results: Results = {}
    for user, points in per_key.items():
        points.sort(key=lambda p: p[0])
        first, last, count, total = points[0][0], points[0][0], 0, 0.0
        for ts, amount in points:
            if ts - last >= gap_ms:
                results[(user, first, last + gap_ms)] = (count, total)
                first, count, total = ts, 0, 0.0
            last = ts
            count += 1
            total += amount
        results[(user, first, last + gap_ms)] = (count, total)
    return results


def partition_stream_times(events: Iterable[Event], partitions: int) -> dict[int, int]:
    """The largest ``ts`` per partition of the input keyed by ``user``."""
    times: dict[int, int] = {}
    for user, ts, _amount in events:
        p = key_partition(user.encode(), partitions)
        times[p] = max(ts, times.get(p, ts))
    return times


def closed_only(shape: WindowShape, results: Results, events: Iterable[Event], partitions: int) -> Results:
    """The windows of ``results`` that are closed once every event is in: ``end + grace`` at or
    before the stream time of the key's partition."""
    times = partition_stream_times(events, partitions)
    closed: Results = {}
    for window, agg in results.items():
        key, _start, end = window
        stream_time = times.get(key_partition(key.encode(), partitions))
        if stream_time is not None and end + shape.grace_ms <= stream_time:
            closed[window] = agg
    return closed
