"""A contender's process: started in a session of its own (so it and anything it starts can be
signalled together), its stdout split into markers and log lines, and stopped with SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from typing import IO, Any

from bench.contenders import PROJECT_ROOT, Launch
from bench.jobs.markers import parse
from streams.telemetry.logfmt import logfmt

log = logging.getLogger("continust.bench")


async def start_child(launch: Launch, log_file: IO[bytes]) -> asyncio.subprocess.Process:
    """Start the process in the project folder; stderr goes to ``log_file``, stdout is piped."""
    return await asyncio.create_subprocess_exec(
        *launch.argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=log_file,
        env=launch.env,
        cwd=str(PROJECT_ROOT),
        start_new_session=True,
    )


async def pump_markers(
    proc: asyncio.subprocess.Process, log_file: IO[bytes], markers: asyncio.Queue[dict[str, Any]]
) -> None:
    """Markers from the child's stdout into ``markers``, every other line into its log."""
    assert proc.stdout is not None
    while line := await proc.stdout.readline():
        marker = parse(line)
        if marker is None:
            log_file.write(line)
            log_file.flush()
        else:
            markers.put_nowait(marker)


async def stop_child(proc: asyncio.subprocess.Process, grace_s: float = 60.0) -> int:
    """SIGTERM to the child's process group, SIGKILL after ``grace_s``; its exit status."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), grace_s)
        except TimeoutError:
            log.warning(logfmt("bench.child.kill", pid=proc.pid, reason="no exit after SIGTERM"))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
    return proc.returncode if proc.returncode is not None else -1
