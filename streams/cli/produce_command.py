"""``continust produce``: send NDJSON events to a worker's ingest route
(``POST /api/sources/{source}/events``), in batches.

    continust produce --source NAME [--url http://127.0.0.1:6066] [--token TOKEN] [--batch 500]
                      [FILE | -]

Reads FILE (``-`` or none: standard input) one event per line; blank lines are skipped. Each
batch of up to ``--batch`` events is one request (``Content-Type: application/x-ndjson``,
``Authorization: Bearer`` the token, by default ``$CONTINUST_API_TOKEN``). While it runs, a
progress line (events sent, events per second) goes to standard error at most once a second.

- 202: the batch is written.
- 400 ``invalid_records``: the valid events of the batch were written; the others are counted
  and, at the end, listed by line number (of FILE, from 1) with their reason.
- 429: waits the answer's ``Retry-After`` seconds and sends the same batch again.
- any other 4xx/5xx, or no answer: prints the error (the answer's JSON) to standard error and
  exits 1 at once; the batches before it stay written.

At the end the summary (events written, invalid ones) goes to standard error and one position
token covering every event written (the union of the batches' tokens) to standard output, so a
script can pass it to a query's ``?after=``. Exit status: 0 when every batch was answered (some
events may have been invalid: see the summary), 1 on an error answer or an unreachable worker,
2 when FILE cannot be read. Only the standard library: the command does not load the runtime.
"""

from __future__ import annotations

import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from streams.api.positions import BadToken, PositionToken, WrittenAt

TOKEN_ENV = "CONTINUST_API_TOKEN"
DEFAULT_URL = "http://127.0.0.1:6066"
DEFAULT_BATCH = 500
#: seconds one request may take
REQUEST_TIMEOUT_S = 60.0
#: invalid events listed one per line in the summary; the rest are counted
LISTED_INVALID = 50


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: Any


#: sends one batch: (url, body, headers) -> the worker's answer; raises OSError when none comes
Post = Callable[[str, bytes, dict[str, str]], Answer]


def post_with_urllib(url: str, body: bytes, headers: dict[str, str]) -> Answer:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as reply:
            return Answer(reply.status, dict(reply.headers.items()), _json(reply.read()))
    except urllib.error.HTTPError as err:
        return Answer(err.code, dict(err.headers.items()), _json(err.read()))


def _json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode(errors="replace")


@dataclass(frozen=True)
class ProduceOptions:
    source: str
    url: str = DEFAULT_URL
    token: str | None = None
    batch: int = DEFAULT_BATCH


class ProduceError(Exception):
    """The worker answered an error (other than invalid events) or did not answer."""


@dataclass
class Tally:
    """What the command has done so far."""

    sent: int = 0
    written: int = 0
    #: (line number, reason, detail) of each invalid event
    invalid: list[tuple[int, str, str]] = field(default_factory=list)
    places: list[WrittenAt] = field(default_factory=list)
    source: str = ""

    def position(self) -> str | None:
        """One token covering every event written, ``None`` before any was."""
        if not self.places:
            return None
        return PositionToken.of(self.source, self.places).encode()


def numbered_lines(stream: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """The non-blank lines of ``stream`` with their line numbers (from 1), without surrounding
    whitespace."""
    for number, line in enumerate(stream, 1):
        stripped = line.strip()
        if stripped:
            yield number, stripped


def batches(lines: Iterable[tuple[int, bytes]], size: int) -> Iterator[list[tuple[int, bytes]]]:
    batch: list[tuple[int, bytes]] = []
    for item in lines:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class Producer:
    """Sends batches and keeps the :class:`Tally`; ``clock`` (monotonic seconds) paces the
    progress lines, ``sleep`` waits out a 429."""

    def __init__(
        self,
        options: ProduceOptions,
        *,
        post: Post = post_with_urllib,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        err: IO[str] = sys.stderr,
    ) -> None:
        self.options = options
        self.post = post
        self.clock = clock
        self.sleep = sleep
        self.err = err
        self.tally = Tally(source=options.source)
        source = urllib.parse.quote(options.source, safe="")
        self.endpoint = f"{options.url.rstrip('/')}/api/sources/{source}/events"
        self.headers = {"Content-Type": "application/x-ndjson"}
        if options.token:
            self.headers["Authorization"] = f"Bearer {options.token}"
        self.started = clock()
        self.last_progress = self.started

    def send(self, batch: list[tuple[int, bytes]]) -> None:
        """Send one batch until it is answered (waiting out 429s); raises :class:`ProduceError`
        on another error answer."""
        body = b"\n".join(line for _, line in batch) + b"\n"
        while True:
            try:
                answer = self.post(self.endpoint, body, self.headers)
            except OSError as exc:
                raise ProduceError(f"no answer from {self.endpoint}: {exc}") from None
            if answer.status != 429:
                break
            wait = retry_after(answer.headers)
            print(f"rate limited: waiting {wait} s before sending again", file=self.err)
            self.sleep(wait)
        error = answer.body.get("error") if isinstance(answer.body, dict) else None
        if answer.status != 202 and not (answer.status == 400 and error == "invalid_records"):
            shown = orjson.dumps(answer.body).decode() if not isinstance(answer.body, str) else answer.body
            raise ProduceError(f"HTTP {answer.status}: {shown}")
        self.account(batch, answer.body)
        self.progress()

    def account(self, batch: list[tuple[int, bytes]], body: dict[str, Any]) -> None:
        self.tally.sent += len(batch)
        written = body.get("written") or []
        self.tally.written += len(written)
        for item in body.get("invalid") or []:
            index = item.get("index", -1)
            line = batch[index][0] if 0 <= index < len(batch) else -1
            self.tally.invalid.append((line, str(item.get("reason")), str(item.get("detail"))))
        position = body.get("position")
        if isinstance(position, str):
            try:
                self.tally.places.extend(PositionToken.decode(position).entries)
            except BadToken as exc:
                print(f"the worker answered a position token this command cannot read: {exc}", file=self.err)

    def progress(self) -> None:
        now = self.clock()
        if now - self.last_progress < 1.0:
            return
        self.last_progress = now
        rate = self.tally.sent / max(now - self.started, 1e-9)
        print(f"sent {self.tally.sent} events ({rate:.0f}/s), {self.tally.written} written", file=self.err)

    def summary(self) -> None:
        tally = self.tally
        print(f"written {tally.written} of {tally.sent} events; {len(tally.invalid)} invalid", file=self.err)
        for line, reason, detail in sorted(tally.invalid)[:LISTED_INVALID]:
            print(f"  line {line}: {reason}: {detail}", file=self.err)
        if len(tally.invalid) > LISTED_INVALID:
            print(f"  ... and {len(tally.invalid) - LISTED_INVALID} more", file=self.err)


def retry_after(headers: dict[str, str]) -> int:
    """The whole seconds a 429's ``Retry-After`` asks for (1 when missing or not a number)."""
    raw = next((value for name, value in headers.items() if name.lower() == "retry-after"), "")
    try:
        return max(1, int(raw))
    except ValueError:
        return 1


def produce(stream: Iterable[bytes], producer: Producer, out: IO[str] = sys.stdout) -> int:
    """Send every event of ``stream``; the exit status (0, or 1 after an error answer)."""
    status = 0
    try:
        for batch in batches(numbered_lines(stream), producer.options.batch):
            producer.send(batch)
    except ProduceError as exc:
        print(f"continust produce: {exc}", file=producer.err)
        status = 1
    producer.summary()
    position = producer.tally.position()
    if position is not None:
        print(position, file=out, flush=True)
    return status


def produce_file(path: str, options: ProduceOptions) -> int:
    """``continust produce``: events from ``path`` (``-``: standard input)."""
    if options.batch < 1:
        print("continust produce: --batch must be 1 or more", file=sys.stderr)
        return 2
    token = options.token if options.token is not None else os.environ.get(TOKEN_ENV)
    producer = Producer(ProduceOptions(options.source, options.url, token, options.batch))
    if path == "-":
        return produce(sys.stdin.buffer, producer)
    try:
        with Path(path).open("rb") as stream:
            return produce(stream, producer)
    except OSError as exc:
        print(f"continust produce: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
