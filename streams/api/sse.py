"""Server-sent events (the ``text/event-stream`` format of the HTML standard), both ways: the
bytes of one event or comment as a server writes them, and the events a client reads back
from a stream's lines.

An event is ``event: <name>``, optionally ``id: <id>``, one ``data: <line>`` per line of its
data, and a blank line. A comment is a line starting with ``:``; clients ignore it (servers
send them as heartbeats, so that proxies and clients see the connection alive). Names and ids
are single lines; the data may span several (each becomes its own ``data:`` line and the
client joins them with ``\\n`` again).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

MEDIA_TYPE = "text/event-stream"


@dataclass(frozen=True)
class SseEvent:
    """One event as a client sees it: its name (``"message"`` when the stream names none), its
    id (``None`` when the event carries none) and its data."""

    event: str
    data: str
    id: str | None = None


def _single_line(what: str, text: str) -> str:
    if "\n" in text or "\r" in text:
        raise ValueError(f"an event's {what} must be one line, got {text!r}")
    return text


def event_bytes(event: str, data: str, id: str | None = None) -> bytes:
    """The bytes of one event. ``ValueError`` when ``event`` or ``id`` spans lines (the
    stream could not be read back), or ``id`` holds a NUL (clients ignore such ids)."""
    lines = [f"event: {_single_line('name', event)}"]
    if id is not None:
        if "\0" in id:
            raise ValueError(f"an event's id cannot hold NUL, got {id!r}")
        lines.append(f"id: {_single_line('id', id)}")
    lines.extend(f"data: {line}" for line in data.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
    return ("\n".join(lines) + "\n\n").encode()


def comment_bytes(text: str) -> bytes:
    """The bytes of one comment line (``: text``), which clients skip."""
    return f": {_single_line('comment', text)}\n".encode()


def read_events(lines: Iterable[str]) -> Iterator[SseEvent | str]:
    """The events of a stream, from its lines (with or without their line ends), in order, as
    the standard parses them; a comment is yielded as its text (a ``str``) so a client can tell
    the stream is alive. An event not yet closed by a blank line when the lines end is not
    yielded (the connection dropped in the middle of it)."""
    event, id_, seen = "", None, False
    data: list[str] = []
    for raw in lines:
        line = raw.rstrip("\r\n")
        if line == "":
            if seen:
                yield SseEvent(event or "message", "\n".join(data), id_)
            event, data, id_, seen = "", [], None, False
            continue
        if line.startswith(":"):
            yield line[1:].removeprefix(" ")
            continue
        name, colon, value = line.partition(":")
        if colon:
            value = value.removeprefix(" ")
        if name == "event":
            event, seen = value, True
        elif name == "data":
            data.append(value)
            seen = True
        elif name == "id" and "\0" not in value:
            id_, seen = value, True
        # "retry" and unknown fields are not used by continust's streams
