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


def configure_logging(level: str = "info") -> None:
    """Send every logger to stderr in logfmt; idempotent."""
    root = logging.getLogger()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LogfmtFormatter())
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
