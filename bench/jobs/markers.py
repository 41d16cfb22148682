"""What a job tells the harness, one JSON object per stdout line with a ``bench`` field:

- ``started``: the job has processed its first input event (the timed interval begins);
  with ``t`` (``time.monotonic()``, the same clock in every process) and ``cpu``
  (``time.process_time()``: all threads of the job) at that moment;
- ``progress`` with ``events``: input events processed so far (for the progress log);
- ``done`` with ``events``, ``t`` and ``cpu``: every input event is processed (the timed
  interval ends; the harness reads peak RSS now, before the job does anything else);
- ``results`` with ``path``: the job wrote its final aggregates to ``path`` (see
  :func:`write_results`); it then waits for SIGTERM.

Any other line on stdout is a log line and is kept in the run's log.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson

from bench.windowing import Results

PROGRESS_EVERY_S = 2.0


def announce(marker: str, **fields: Any) -> None:
    print(orjson.dumps({"bench": marker, **fields}).decode(), flush=True)


def parse(line: bytes) -> dict[str, Any] | None:
    """The marker on a stdout line, or None for a log line. A marker may follow terminal
    control codes that a library wrote without a newline (Faust's spinner does)."""
    start = line.find(b'{"bench"')
    if start < 0:
        return None
    try:
        marker = orjson.loads(line[start:])
    except orjson.JSONDecodeError:
        return None
    return marker if isinstance(marker, dict) else None


class Counter:
    """Counts processed events and announces ``started``, ``progress`` and ``done`` (never
    ``done`` when ``expected`` is 0: the job runs until SIGTERM)."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.seen = 0
        self._started = False
        self._next_progress = 0.0

    def begin(self) -> None:
        """Announce ``started`` (once): call it before processing the first batch of events, or
        let :meth:`add` call it after the first event."""
        if not self._started:
            self._started = True
            announce("started", t=time.monotonic(), cpu=time.process_time())
            self._next_progress = time.monotonic() + PROGRESS_EVERY_S

    def add(self, n: int = 1) -> bool:
        """Count ``n`` more processed events; return True once all expected events are in."""
        if n:
            self.begin()
        before, self.seen = self.seen, self.seen + n
        if self.seen >= self.expected > 0:
            if before < self.expected:
                announce("done", events=self.seen, t=time.monotonic(), cpu=time.process_time())
            return True
        if time.monotonic() >= self._next_progress:
            self._next_progress = time.monotonic() + PROGRESS_EVERY_S
            announce("progress", events=self.seen)
        return False


def write_results(path: Path, results: Results) -> None:
    """``results`` as a JSON list of ``[key, start, end, count, sum]``, then the ``results``
    marker."""
    rows = [[k, s, e, n, total] for (k, s, e), (n, total) in results.items()]
    path.write_bytes(orjson.dumps(rows))
    announce("results", path=str(path), windows=len(rows))


def read_results(path: Path) -> Results:
    return {(k, s, e): (n, total) for k, s, e, n, total in orjson.loads(path.read_bytes())}
