"""``continust tail TABLE [--key K] [--url URL ...] [--token T] [--from-id ID] [--count N]``:
follow a table's live subscription (``GET /api/tables/{table}/subscribe``) and print each
event as one NDJSON line on stdout, ``{"event", "id", "data"}`` (``data`` parsed from JSON).

When the connection drops, the stream ends or the worker drops the subscription
(``event: dropped``), the command connects again, to the next ``--url`` in turn, with
``Last-Event-ID`` set to the last id it received, so the output continues exactly where it
stopped: a worker restart shows only as a log line on stderr. Before the first id (while a
snapshot is being sent) a reconnection starts a new snapshot. Reconnections wait 0.5 s, then
twice as long each time up to 5 s (or what ``Retry-After`` says), and go on until Ctrl-C.

``--count N`` stops after N printed events (exit 0). An answer that retrying cannot change
(400, 401, 403, 404, 409, 410) ends the command with exit code 1 and the error on stderr.
Heartbeats are not printed; a connection without a byte for three heartbeats is taken as
dropped. The token defaults to ``CONTINUST_API_TOKEN``. It imports no Faust.
"""

from __future__ import annotations

import http.client
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import quote, urlencode

import orjson

from streams.api.sse import SseEvent, read_events
from streams.telemetry.logfmt import logfmt

log = logging.getLogger("continust.tail")

HEARTBEAT_S = 15
FIRST_BACKOFF_S, MAX_BACKOFF_S = 0.5, 5.0
#: answers after which connecting again cannot help
FINAL_STATUSES = frozenset({400, 401, 403, 404, 405, 409, 410})


@dataclass(frozen=True)
class TailOptions:
    table: str
    urls: tuple[str, ...]
    key: str | None = None
    token: str | None = None
    from_id: str | None = None
    #: stop after this many printed events; ``None``: never
    count: int | None = None
    heartbeat_s: int = HEARTBEAT_S


class FinalAnswer(Exception):
    """The worker answered with an error that retrying cannot change."""


def subscribe_url(base: str, options: TailOptions) -> str:
    query: dict[str, str] = {"heartbeat": str(options.heartbeat_s)}
    if options.key is not None:
        query["key"] = options.key
    return f"{base.rstrip('/')}/api/tables/{quote(options.table, safe='')}/subscribe?{urlencode(query)}"


def event_line(event: SseEvent) -> bytes:
    """The NDJSON line of one event: its data parsed as JSON (kept as text when it is not)."""
    try:
        data: Any = orjson.loads(event.data)
    except orjson.JSONDecodeError:
        data = event.data
    return orjson.dumps({"event": event.event, "id": event.id, "data": data}) + b"\n"


def _lines(response: Any) -> Iterator[str]:
    for raw in response:
        yield raw.decode("utf-8", errors="replace")


class Tail:
    """One run of the command; ``sleep`` is passed in for tests."""

    def __init__(
        self, options: TailOptions, out: IO[bytes], sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.options = options
        self.out = out
        self.sleep = sleep
        self.last_id = options.from_id
        self.printed = 0

    def done(self) -> bool:
        return self.options.count is not None and self.printed >= self.options.count

    def _request(self, base: str) -> urllib.request.Request:
        headers = {"Accept": "text/event-stream"}
        if self.options.token:
            headers["Authorization"] = f"Bearer {self.options.token}"
        if self.last_id:
            headers["Last-Event-ID"] = self.last_id
        return urllib.request.Request(subscribe_url(base, self.options), headers=headers)

    def follow_once(self, base: str) -> str:
        """Print the events of one connection to ``base``; why it ended (``"count"`` once
        ``--count`` events were printed). Raises :class:`FinalAnswer`, or what the connection
        raises when it drops (``OSError``, ``http.client.HTTPException``)."""
        request = self._request(base)
        try:
            response = urllib.request.urlopen(request, timeout=3 * self.options.heartbeat_s)
        except urllib.error.HTTPError as err:
            body = err.read().decode("utf-8", errors="replace")
            if err.code in FINAL_STATUSES:
                raise FinalAnswer(f"{err.code} {body}") from None
            raise RetryLater(f"{err.code} {body}", _seconds(err.headers.get("Retry-After"))) from None
        with response:
            for item in read_events(_lines(response)):
                if isinstance(item, str):
                    continue  # a heartbeat
                if item.event == "dropped":
                    return f"dropped: {item.data}"
                self.out.write(event_line(item))
                self.out.flush()
                if item.id:
                    self.last_id = item.id
                self.printed += 1
                if self.done():
                    return "count"
        return "the stream ended"

    def run(self) -> int:
        backoff, turn = FIRST_BACKOFF_S, 0
        while True:
            base = self.options.urls[turn % len(self.options.urls)]
            turn += 1
            wait: float | None = None
            try:
                why = self.follow_once(base)
                if why == "count":
                    return 0
            except FinalAnswer as exc:
                log.error(logfmt("tail.failed", url=base, answer=str(exc)))
                return 1
            except RetryLater as exc:
                why, wait = str(exc), exc.retry_after
            except (OSError, http.client.HTTPException) as exc:
                why = repr(exc)
            else:
                backoff = FIRST_BACKOFF_S  # the connection worked: the next one starts afresh
            delay = wait if wait is not None else backoff
            log.warning(
                logfmt("tail.reconnect", url=base, reason=why, last_event_id=self.last_id or "", wait_s=delay)
            )
            self.sleep(delay)
            backoff = min(MAX_BACKOFF_S, backoff * 2)


class RetryLater(Exception):
    """The worker cannot serve the subscription now (503 and the like)."""

    def __init__(self, detail: str, retry_after: float | None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


def _seconds(retry_after: str | None) -> float | None:
    try:
        return max(0.0, float(retry_after)) if retry_after else None
    except ValueError:
        return None  # an HTTP date: the usual backoff


def token_from_env(given: str | None) -> str | None:
    return given if given is not None else os.environ.get("CONTINUST_API_TOKEN") or None
