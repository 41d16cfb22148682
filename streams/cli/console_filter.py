"""Which log lines a console shows: continust's own events (loggers under ``continust``) at info
and above, everyone else's (Faust, aiokafka, mode) at warning and above. ``make demo`` uses it
for its own process and for the lines of the worker it starts, whose full log goes to a file."""

from __future__ import annotations

import logging

import orjson

from streams.telemetry.logfmt import parse_logfmt

OWN_LOGGERS = "continust"
#: the least level a continust line needs to reach the console
OWN_LEVEL = logging.INFO
#: the least level any other logger's line needs
LIBRARY_LEVEL = logging.WARNING


def shown(logger: str, level: int) -> bool:
    """Whether a record of ``logger`` at ``level`` (a ``logging`` level number) is shown."""
    own = logger == OWN_LOGGERS or logger.startswith(OWN_LOGGERS + ".")
    return level >= (OWN_LEVEL if own else LIBRARY_LEVEL)


def line_shown(line: str) -> bool:
    """Whether a line of a worker's log (logfmt or JSON, :mod:`streams.telemetry.logfmt`) is shown. A line
    that names no logger or level (a traceback printed by a crashing interpreter) is shown."""
    text = line.strip()
    fields: dict[str, object]
    if text.startswith("{"):
        try:
            loaded = orjson.loads(text)
        except orjson.JSONDecodeError:
            return True
        fields = loaded if isinstance(loaded, dict) else {}
    else:
        fields = dict(parse_logfmt(text))
    logger, level = fields.get("logger"), fields.get("level")
    if not isinstance(logger, str) or not isinstance(level, str):
        return True
    number = logging.getLevelName(level.upper())
    return shown(logger, number if isinstance(number, int) else logging.WARNING)


class ConsoleFilter(logging.Filter):
    """A handler filter that lets through the records :func:`shown` accepts."""

    def filter(self, record: logging.LogRecord) -> bool:
        return shown(record.name, record.levelno)
