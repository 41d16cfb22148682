"""How the HTTP API's connections are handled: aiohttp's request handler with every answer it
gives on its own in JSON, and bounds on what one client may hold.

aiohttp answers some requests before any middleware runs: those its parser refuses (a malformed
request line or header field, an unknown method, bad UTF-8 in the path, ``HTTP/9.9``, both
``Content-Length`` and ``Transfer-Encoding``, a negative ``Content-Length``, a line over
:data:`streams.api.http_api.PARSER_LIMITS`), and a request whose handler raised what no middleware
caught. Here those answers are ``{"error", "detail"}`` JSON like every other error of the API,
counted in ``continust_http_rejected_total`` by reason, and close the connection.

:class:`ConnectionLimits` bound what one client holds:

* ``head_timeout_s``: from the first byte of a request until its head (request line and header
  fields) is read. A client that sends its header fields slowly (one line a second) gets 408
  ``request_timeout`` when it passes, and the connection is closed.
* ``body_timeout_s``: a request body must have arrived this long after the handler starts
  reading it (:func:`read_within`), or the answer is 408 ``request_timeout``.
* ``idle_timeout_s``: a connection with no request in progress (a keep-alive connection between
  requests, or one that never sends a byte) is closed after this long.
* ``max_connections``: open connections per worker, live subscriptions included. The next one
  is answered 503 ``too_many_connections`` with ``Retry-After`` and closed at once.

This module holds what the answers and limits are; the adapters that put them into aiohttp's
connection handling (private members of its request handler, server and runner) are in the
runtime seam, :class:`agents.faust_compat.ApiRunner`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from http import HTTPStatus
from typing import TypeVar

import orjson
from aiohttp import web

from streams.telemetry.metrics import HTTP_REJECTED

T = TypeVar("T")

#: the error code of each status aiohttp answers on its own
ERROR_CODES = {
    400: "bad_request",
    408: "request_timeout",
    413: "too_large",
    431: "header_too_large",
    500: "internal_error",
    501: "not_implemented",
    503: "too_many_connections",
}
#: what ``Retry-After`` says to a connection refused for the cap (seconds)
RETRY_AFTER_S = 1


@dataclass(frozen=True)
class ConnectionLimits:
    """What one connection may hold; see the module's documentation. Seconds, and a count."""

    head_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    idle_timeout_s: float = 60.0
    max_connections: int = 1_024

    def __post_init__(self) -> None:
        if (
            min(self.head_timeout_s, self.body_timeout_s, self.idle_timeout_s) <= 0
            or self.max_connections < 1
        ):
            raise ValueError(f"connection limits must be positive: {self}")


DEFAULT_LIMITS = ConnectionLimits()


def error_json(status: int, detail: str) -> bytes:
    return orjson.dumps({"error": ERROR_CODES.get(status, f"http_{status}"), "detail": detail})


def raw_answer(status: int, detail: str, retry_after_s: int | None = None) -> bytes:
    """A whole HTTP/1.1 answer with a JSON error body that closes the connection: for when no
    request object exists to answer through (a head that never completed, a connection over
    the cap)."""
    body = error_json(status, detail)
    head = [
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: close",
    ]
    if retry_after_s is not None:
        head.append(f"Retry-After: {retry_after_s}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def handler_error_answer(status: int, message: str | None) -> web.Response:
    """The JSON answer to a request the web server could not hand to a route (see the module's
    documentation); a 500's detail says nothing of the exception. Counted by reason."""
    if status >= 500:
        detail = "the worker failed to answer this request; it is logged"
    else:  # the parser's words ("Bad status line: Invalid HTTP version"), not the bytes it quotes
        lines = (line.strip().rstrip(":") for line in (message or "").splitlines())
        detail = ": ".join(line for line in lines if line and not line.startswith(("b'", 'b"', "^")))
        detail = detail or HTTPStatus(status).phrase
    HTTP_REJECTED.labels(reason=ERROR_CODES.get(status, f"http_{status}")).inc()
    response = web.Response(
        status=status,
        body=error_json(status, detail),
        content_type="application/json",
        headers={"Connection": "close"},
    )
    response.force_close()
    return response


def head_timeout_answer(limits: ConnectionLimits) -> bytes:
    """What a connection whose request head is too slow gets before it is closed (counted)."""
    HTTP_REJECTED.labels(reason="request_timeout").inc()
    return raw_answer(408, f"the request's head did not arrive within {limits.head_timeout_s:g} s")


def over_cap_answer(limits: ConnectionLimits) -> bytes:
    """What a connection over ``max_connections`` gets before it is closed (counted)."""
    HTTP_REJECTED.labels(reason="too_many_connections").inc()
    detail = f"this worker holds {limits.max_connections} connections, its most; retry"
    return raw_answer(503, detail, RETRY_AFTER_S)


async def read_within(read: Awaitable[T], limits: ConnectionLimits) -> T:
    """``read`` (a request body), or :class:`BodyTimeout` when it has not arrived within
    ``body_timeout_s``."""
    try:
        async with asyncio.timeout(limits.body_timeout_s):
            return await read
    except TimeoutError:
        HTTP_REJECTED.labels(reason="request_timeout").inc()
        raise BodyTimeout(limits.body_timeout_s) from None


class BodyTimeout(Exception):
    """A request body did not arrive within the body timeout."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the request body did not arrive within {seconds:g} s")
