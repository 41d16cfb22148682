"""The demo worker's log: the file gets every line, the console the lines it shows."""

import io
import logging
from pathlib import Path

from agents.cli.demo_log import copy_lines, follow_worker_log
from streams.telemetry.logfmt import LogfmtFormatter, logfmt

LINES = [
    'ts=2026-11-30T09:00:00.000Z level=info logger=faust.worker app=a worker=w msg="[^Worker]: Starting..."',
    "ts=2026-11-30T09:00:00.100Z level=info logger=continust.worker app=a worker=w event=worker.start",
    "ts=2026-11-30T09:00:00.200Z level=warning logger=aiokafka.consumer app=a worker=w msg=Heartbeat",
    "ts=2026-11-30T09:00:00.300Z level=debug logger=continust.table app=a worker=w event=table.step",
    "Traceback (most recent call last):",
]


def test_the_file_gets_every_line_and_the_console_the_shown_ones() -> None:
    source = io.BytesIO("".join(line + "\n" for line in LINES).encode())
    log_file, console = io.BytesIO(), io.StringIO()
    assert copy_lines(source, log_file, console) == len(LINES)
    assert log_file.getvalue().decode().splitlines() == LINES
    assert console.getvalue().splitlines() == [LINES[1], LINES[2], LINES[4]]


def test_the_thread_writes_the_named_file_until_the_worker_closes_its_output(tmp_path: Path) -> None:
    record = logging.LogRecord("faust.worker", logging.INFO, __file__, 1, "hidden", None, None)
    own = logging.LogRecord("continust.demo", logging.INFO, __file__, 1, logfmt("demo.ok"), None, None)
    text = "\n".join(LogfmtFormatter().format(r) for r in (record, own)) + "\n"
    console = io.StringIO()
    path = tmp_path / "demo" / "worker.log"
    thread = follow_worker_log(io.BytesIO(text.encode()), path, console)
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert path.read_text() == text
    assert "event=demo.ok" in console.getvalue() and "hidden" not in console.getvalue()
