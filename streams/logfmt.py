"""Structured log lines: every line continust writes is ``key=value`` pairs (logfmt)."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any


def _quote(value: Any) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' "=\n\t'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


def logfmt(event: str, **fields: Any) -> str:
    """Render ``event=<event>`` followed by ``key=value`` for every field, in order."""
    parts = [f"event={_quote(event)}"]
    parts.extend(f"{key}={_quote(value)}" for key, value in fields.items())
    return " ".join(parts)


class LogfmtFormatter(logging.Formatter):
    """Prefixes each record with ``ts``, ``level`` and ``logger``; messages built with
    :func:`logfmt` stay key=value, anything else (Faust, aiokafka) is quoted as ``msg``."""

    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        message = record.getMessage()
        if not message.startswith("event="):
            message = f"msg={_quote(message)}"
        level = record.levelname.lower()
        line = f"ts={ts}.{int(record.msecs):03d}Z level={level} logger={record.name} {message}"
        if record.exc_info:
            line += " exc=" + _quote(self.formatException(record.exc_info))
        return line


class RepeatedMessageFilter(logging.Filter):
    """Drops a library's log record (any logger outside ``continust``) whose message is the same
    as one let through less than ``interval_s`` ago; the next one let through says how many were
    dropped (``repeated=N``). While a broker is down, aiokafka logs the same connection error
    several times a second; this keeps one line per message per interval. ``clock``: monotonic
    seconds, passed in for tests."""

    def __init__(self, interval_s: float = 10.0, clock: Any = time.monotonic) -> None:
        super().__init__()
        self.interval_s, self.clock = interval_s, clock
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("continust"):
            return True
        key = (record.name, record.levelno, record.getMessage())
        now = self.clock()
        last = self._seen.get(key)
        if last is not None and now - last[0] < self.interval_s:
            self._seen[key] = (last[0], last[1] + 1)
            return False
        if len(self._seen) > 1_000:
            self._seen.clear()
        dropped = 0 if last is None else last[1]
        self._seen[key] = (now, 0)
        if dropped:
            record.msg = f"{record.getMessage()} (repeated={dropped} in {self.interval_s:.0f}s)"
            record.args = ()
        return True


def configure_logging(level: str = "info") -> None:
    """Send every logger to stderr in logfmt; idempotent."""
    root = logging.getLogger()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LogfmtFormatter())
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
