"""Liveness: whether the worker's processing loop is alive or wedged.

A worker is **wedged** when it has made no progress for ``wedged_after`` (milliseconds) while
it has records to read: the consumer lag of the partitions it processes is above 0. Progress is
a batch processed (:meth:`Liveness.progressed`, from the commit gate), a commit that moved
offsets (from the consumer), or, while tables are being restored, fewer changelog records left
to restore than at the last check. A worker with nothing to read is never wedged, however long
it has been quiet.

The rule reads its :class:`~agents.clock.Clock`, so it runs on any time source (a test's
included); ``GET /health`` asks :meth:`Liveness.check` and answers 503 with its reason.
"""

from __future__ import annotations

from agents.clock import WALL_CLOCK, Clock

#: the default of ``[app] wedged_after``: 5 minutes
DEFAULT_WEDGED_AFTER_MS = 300_000


class Liveness:
    """The wedge rule of one worker. Not thread-safe: the worker's event loop calls it."""

    def __init__(self, wedged_after_ms: int = DEFAULT_WEDGED_AFTER_MS, clock: Clock = WALL_CLOCK) -> None:
        if wedged_after_ms <= 0:
            raise ValueError(f"wedged_after must be positive, got {wedged_after_ms} ms")
        self.wedged_after_ms = wedged_after_ms
        self.clock = clock
        #: when the worker last made progress (epoch ms; at first, when this was made)
        self.progress_at_ms = clock.now_ms()
        self._restore_remaining: int | None = None

    def progressed(self) -> None:
        """The worker processed a batch or committed offsets just now."""
        self.progress_at_ms = self.clock.now_ms()

    def check(self, lag_records: int, restore_remaining: int = 0) -> str | None:
        """``None`` while alive; the reason it is wedged otherwise. ``lag_records``: records
        left to read over the partitions the worker processes; ``restore_remaining``: changelog
        records left to restore (a decrease since the last check counts as progress)."""
        if self._restore_remaining is not None and restore_remaining < self._restore_remaining:
            self.progressed()
        self._restore_remaining = restore_remaining
        if lag_records <= 0:
            return None
        stalled_ms = self.clock.now_ms() - self.progress_at_ms
        if stalled_ms < self.wedged_after_ms:
            return None
        waiting = f"{restore_remaining} changelog records to restore and " if restore_remaining else ""
        return (
            f"no batch processed and no commit for {stalled_ms / 1000:.0f}s "
            f"(wedged_after {self.wedged_after_ms / 1000:.0f}s) while {waiting}{lag_records} records "
            "wait to be read"
        )
