"""Structured log lines: every line continust writes is ``key=value`` pairs (logfmt) by default,
or one JSON object per line with the same fields (``log_format = "json"``).

A line holds, in order: ``ts`` (UTC, milliseconds), ``level``, ``logger``, ``app`` and
``worker`` (when the process runs a worker), then the message: ``event`` and its fields for
continust's own lines (built with :func:`logfmt`), ``msg`` for anything else (Faust, aiokafka),
and ``exc`` when the record carries an exception."""

from __future__ import annotations

import logging
import re
import sys
import time
from dataclasses import dataclass
from typing import Any

import orjson

from streams.plan.pipeline import LOG_FORMATS

#: a record logged with ``extra={EVERY_LINE: True}`` is never dropped as a repeat (diagnostic
#: dumps that log many lines of one event on purpose)
EVERY_LINE = "continust_every_line"


def _quote(value: Any) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' "=\n\t'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


class LogLine(str):
    """The text of a :func:`logfmt` message, remembering its event and fields (with their
    types), so the JSON formatter writes the same fields without parsing the text."""

    event: str
    fields: dict[str, Any]

    def __new__(cls, event: str, fields: dict[str, Any]) -> LogLine:
        parts = [f"event={_quote(event)}"]
        parts.extend(f"{key}={_quote(value)}" for key, value in fields.items())
        line = super().__new__(cls, " ".join(parts))
        line.event, line.fields = event, fields
        return line


def logfmt(event: str, **fields: Any) -> str:
    """Render ``event=<event>`` followed by ``key=value`` for every field, in order."""
    return LogLine(event, fields)


_PAIR = re.compile(r'([^\s=]+)=("(?:[^"\\]|\\.)*"|\S*)')


def parse_logfmt(text: str) -> dict[str, str]:
    """The ``key=value`` pairs of a logfmt line, values unquoted (the inverse of the quoting
    :func:`logfmt` does); text that is not a pair is skipped."""
    fields: dict[str, str] = {}
    for key, value in _PAIR.findall(text):
        if value.startswith('"'):
            value = re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value[1:-1])
        fields[key] = value
    return fields


@dataclass(frozen=True)
class LogContext:
    """What every line names: the app id and the worker (its group instance id, else
    ``host:port``); None leaves the field out (commands that run no worker)."""

    app: str | None = None
    worker: str | None = None


def _add_event_fields(fields: dict[str, Any], event_fields: dict[str, Any]) -> None:
    """Add an event's fields after the line's own; one named like a line field (``ts`` of a late
    event, ``app``) is kept as ``event_<name>`` unless it repeats the line's value."""
    for key, value in event_fields.items():
        if key not in fields:
            fields[key] = value
        elif str(fields[key]) != str(value):
            fields[f"event_{key}"] = value


def record_fields(record: logging.LogRecord, context: LogContext, exc_text: str | None) -> dict[str, Any]:
    """The fields of one line, in order (see the module's docstring)."""
    ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    fields: dict[str, Any] = {
        "ts": f"{ts}.{int(record.msecs):03d}Z",
        "level": record.levelname.lower(),
        "logger": record.name,
    }
    if context.app is not None:
        fields["app"] = context.app
    if context.worker is not None:
        fields["worker"] = context.worker
    message = record.msg if not record.args else record.getMessage()
    if isinstance(message, LogLine):
        fields["event"] = message.event
        _add_event_fields(fields, message.fields)
    else:
        text = str(message)
        if text.startswith("event="):
            _add_event_fields(fields, parse_logfmt(text))
        else:
            fields["msg"] = text
    if exc_text:
        fields["exc"] = exc_text
    return fields


class LogfmtFormatter(logging.Formatter):
    """One ``key=value`` line per record; messages built with :func:`logfmt` keep their fields,
    anything else (Faust, aiokafka) is quoted as ``msg``."""

    def __init__(self, app: str | None = None, worker: str | None = None) -> None:
        super().__init__()
        self.context = LogContext(app, worker)

    def format(self, record: logging.LogRecord) -> str:
        exc = self.formatException(record.exc_info) if record.exc_info else None
        fields = record_fields(record, self.context, exc)
        return " ".join(f"{key}={_quote(value)}" for key, value in fields.items())


class JsonFormatter(LogfmtFormatter):
    """One JSON object per record (orjson) with the same fields as :class:`LogfmtFormatter`;
    numbers and booleans a :func:`logfmt` message was given stay numbers and booleans, any
    other value is written as its text."""

    def format(self, record: logging.LogRecord) -> str:
        exc = self.formatException(record.exc_info) if record.exc_info else None
        fields = record_fields(record, self.context, exc)
        return orjson.dumps(fields, default=str).decode()


def formatter(
    log_format: str = "logfmt", app: str | None = None, worker: str | None = None
) -> LogfmtFormatter:
    """The formatter of ``log_format`` (one of :data:`LOG_FORMATS`); ValueError for another."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format {log_format!r}; allowed: {', '.join(LOG_FORMATS)}")
    return (JsonFormatter if log_format == "json" else LogfmtFormatter)(app, worker)


class RepeatedMessageFilter(logging.Filter):
    """Drops a record that repeats one let through less than ``interval_s`` ago; the next one
    let through says how many were dropped (``repeated=N``).

    A repeat is, for a library's record (any logger outside ``continust``), the same logger,
    level and message: while a broker is down, aiokafka logs the same connection error several
    times a second. For continust's own warnings and errors it is the same logger, level and
    ``event``, whatever the other fields say. continust's info and debug lines, and records
    logged with ``extra={EVERY_LINE: True}``, are never dropped. ``clock``: monotonic seconds,
    passed in for tests."""

    def __init__(self, interval_s: float = 10.0, clock: Any = time.monotonic) -> None:
        super().__init__()
        self.interval_s, self.clock = interval_s, clock
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}

    @staticmethod
    def repeat_key(record: logging.LogRecord) -> tuple[str, int, str] | None:
        """What makes two records repeats of each other; None: never a repeat."""
        if record.__dict__.get(EVERY_LINE, False):  # set through ``extra`` by the caller
            return None
        if not record.name.startswith("continust"):
            return (record.name, record.levelno, record.getMessage())
        if record.levelno < logging.WARNING:
            return None
        event = record.msg.event if isinstance(record.msg, LogLine) else record.getMessage()
        if not isinstance(record.msg, LogLine) and event.startswith("event="):
            event = parse_logfmt(event).get("event", event)
        return (record.name, record.levelno, event)

    def filter(self, record: logging.LogRecord) -> bool:
        key = self.repeat_key(record)
        if key is None:
            return True
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
            self._count_dropped(record, dropped)
        return True

    def _count_dropped(self, record: logging.LogRecord, dropped: int) -> None:
        if isinstance(record.msg, LogLine) and not record.args:
            record.msg = logfmt(
                record.msg.event, **record.msg.fields, repeated=dropped, within_s=round(self.interval_s)
            )
        else:
            record.msg = f"{record.getMessage()} (repeated={dropped} in {self.interval_s:.0f}s)"
            record.args = ()


def configure_logging(level: str = "info", log_format: str = "logfmt") -> None:
    """Send every logger to stderr in ``log_format``, repeats rate-limited
    (:class:`RepeatedMessageFilter`); idempotent."""
    root = logging.getLogger()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    handler.addFilter(RepeatedMessageFilter())
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
