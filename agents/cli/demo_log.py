"""The demo worker's log: every line the worker writes (stdout and stderr) goes to a file the
demo names at start, and the lines :func:`streams.cli.console_filter.line_shown` accepts also go to
the demo's console, so the console shows continust's events and the runtime's warnings while the
file keeps the runtime's info logs too."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import IO

from streams.cli.console_filter import line_shown


def copy_lines(source: IO[bytes], log_file: IO[bytes], console: IO[str]) -> int:
    """Copy ``source`` line by line to ``log_file`` (flushed per line) and the lines shown on a
    console to ``console``, until ``source`` ends; return the number of lines copied. A line that
    is not UTF-8 is shown with replacement characters."""
    count = 0
    for raw in iter(source.readline, b""):
        log_file.write(raw)
        log_file.flush()
        text = raw.decode(errors="replace")
        if line_shown(text):
            console.write(text if text.endswith("\n") else text + "\n")
            console.flush()
        count += 1
    return count


def follow_worker_log(source: IO[bytes], path: Path, console: IO[str]) -> threading.Thread:
    """Start a daemon thread that runs :func:`copy_lines` from ``source`` into ``path``
    (truncated first, its folder created) and ``console``; it ends when the worker closes its
    output (exits)."""
    path.parent.mkdir(parents=True, exist_ok=True)

    def run() -> None:
        with open(path, "wb") as log_file:
            copy_lines(source, log_file, console)

    thread = threading.Thread(target=run, name="worker-log", daemon=True)
    thread.start()
    return thread
