"""The worker's shutdown bound: once a stop begins (SIGTERM, SIGINT), the process has
``seconds`` to finish it (final commit, leaving the group, closing the stores); past that it
exits with :data:`EXIT_SHUTDOWN_OVERRAN` at once, so an orchestrator's grace period longer than
the bound always sees the worker end by itself. Exiting there is safe: an open transaction is
aborted by the next producer with the same transactional id, and local state that was not
closed cleanly is rebuilt from the changelog.

The timer runs on a daemon thread, so it fires even when the event loop is blocked, and does
not keep a process alive that ended in time.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from streams.telemetry.logfmt import logfmt

log = logging.getLogger("continust.worker")
EXIT_SHUTDOWN_OVERRAN = 1


@dataclass
class ShutdownBound:
    """Arms once: the first :meth:`arm` starts the countdown, later calls do nothing."""

    seconds: float
    exit: Callable[[int], object] = os._exit
    _timer: threading.Timer | None = field(default=None, init=False)

    def arm(self) -> None:
        if self._timer is not None:
            return
        self._timer = threading.Timer(self.seconds, self._overran)
        self._timer.daemon = True
        self._timer.start()

    def _overran(self) -> None:
        log.error(logfmt("worker.shutdown_overran", bound_s=self.seconds, code=EXIT_SHUTDOWN_OVERRAN))
        logging.shutdown()
        self.exit(EXIT_SHUTDOWN_OVERRAN)
