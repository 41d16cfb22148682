"""Stream time and the close rule.

Stream time is the largest event timestamp seen so far on one partition of the keyed stream
(``None`` before the first event). It never moves backwards and never depends on the wall clock.
"""

from __future__ import annotations


def advance(stream_time: int | None, timestamp_ms: int) -> int:
    """Stream time after an event at ``timestamp_ms``."""
    return timestamp_ms if stream_time is None or timestamp_ms > stream_time else stream_time


def is_closed(window_end: int, grace_ms: int, stream_time: int | None) -> bool:
    """A window is closed once stream time >= end + grace; a closed window takes no events."""
    return stream_time is not None and stream_time >= window_end + grace_ms


def is_expired(window_end: int, grace_ms: int, retention_ms: int, stream_time: int | None) -> bool:
    """A closed window is deleted once it has been closed for ``retention_ms`` of stream time."""
    return stream_time is not None and stream_time >= window_end + grace_ms + retention_ms


def idle_stream_time(
    stream_time: int | None, quiet_since_ms: int, now_ms: int, idle_timeout_ms: int
) -> int | None:
    """Stream time of a partition that has received nothing since wall-clock ``quiet_since_ms``
    (when its stream time was ``stream_time``): unchanged until ``idle_timeout_ms`` has passed,
    then advanced by all the wall-clock time that passed since. All arguments in ms."""
    quiet = now_ms - quiet_since_ms
    if stream_time is None or quiet < idle_timeout_ms:
        return stream_time
    return stream_time + quiet
