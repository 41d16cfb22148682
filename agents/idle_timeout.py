"""``idle_timeout``: once a table partition has received nothing for that long, its stream time
follows the wall clock, so the last windows of a stopped stream close too.

Each partition's quiet starts when it last received records (or was loaded), at the stream time
it then had; from ``timeout_ms`` of quiet on, its stream time is that stream time plus all the
quiet so far (:func:`windows.stream_time.idle_stream_time`). Stream time never moves back, so a
partition whose events ran ahead of the clock stays where its events put it. The clock is
injected (:class:`~agents.clock.Clock`); every time here is in integer milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agents.clock import WALL_CLOCK, Clock
from windows.emission import Emission
from windows.partition import PartitionWindows
from windows.stream_time import idle_stream_time


@dataclass
class IdleTimeout:
    """The quiet of the partitions of one table: ``timeout_ms`` of ``clock`` time without a
    record lets a partition's stream time follow ``clock``."""

    timeout_ms: int
    clock: Clock = WALL_CLOCK
    # partition -> (its stream time, the clock's time) when it last received records
    _quiet_since: dict[int, tuple[int | None, int]] = field(default_factory=dict)

    @property
    def check_interval_s(self) -> float:
        """How often to call :meth:`advance`, in seconds: a quarter of the timeout, from 50 ms
        to 1 s."""
        return max(0.05, min(1.0, self.timeout_ms / 4000))

    def received(self, partition: int, stream_time: int | None) -> None:
        """The partition received records, or was loaded, and its stream time is now
        ``stream_time``: its quiet starts again, at the clock's time now."""
        self._quiet_since[partition] = (stream_time, self.clock.now_ms())

    def forget(self) -> None:
        """Forget every partition's quiet (its partitions were revoked)."""
        self._quiet_since.clear()

    def advance(self, partition: int, windows: PartitionWindows) -> tuple[Emission, ...]:
        """Move the partition's stream time to what its quiet allows now, closing, emitting and
        expiring what it passes; returns the records. Nothing moves before the timeout, for a
        partition without a stream time yet, or for one not :meth:`received`."""
        quiet = self._quiet_since.get(partition)
        if quiet is None:
            return ()
        stream_time, since = quiet
        target = idle_stream_time(stream_time, since, self.clock.now_ms(), self.timeout_ms)
        if target is None or windows.stream_time is None or target <= windows.stream_time:
            return ()
        return windows.advance_to(target)
