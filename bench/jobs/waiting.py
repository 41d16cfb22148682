"""How a job that has finished waits for the harness's SIGTERM."""

from __future__ import annotations

import signal
import sys


def wait_for_sigterm() -> None:
    """Block until SIGTERM (or SIGINT), then exit the process with status 0."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    while True:
        signal.pause()
