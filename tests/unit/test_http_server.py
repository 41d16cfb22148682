"""The HTTP API's own answers and connection limits (:mod:`streams.api.http_server`), on Faust's web
server as a worker runs it (:func:`agents.faust_compat.serve_web_with`), spoken to over raw
sockets: requests aiohttp's parser refuses, a header that is not UTF-8, a slow head, an idle
connection, one connection over the cap."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import faust
import orjson
import pytest
from aiohttp import web

from agents.faust_compat import serve_web_with
from streams.api.api_auth import ApiToken, TokenSet
from streams.api.api_routes import Route
from streams.api.http_api import register_http_api, web_application_options
from streams.api.http_server import BodyTimeout, ConnectionLimits, raw_answer, read_within
from streams.telemetry.metrics import HTTP_REJECTED
from tests.integration.broker_io import free_port

#: a bound on how long any answer here may take to come; never reached when the server is right
ANSWER_WITHIN_S = 10.0
READER = ApiToken("dashboard", b"read-secret-0123456789", frozenset({"read"}))


class Queries:
    def table_names(self) -> list[str]:
        return ["t"]

    def own_url(self) -> str:
        return "http://127.0.0.1:6066"

    def health(self) -> dict[str, Any]:
        return {"status": "ok"}

    def ready(self) -> dict[str, Any]:
        return {"status": "ready"}


async def fails(request: web.Request) -> web.StreamResponse:
    raise RuntimeError("a secret the answer must not show")


FAILING = Route("GET", "/fails", fails, "a route whose handler raises", None)


@asynccontextmanager
async def serving(limits: ConnectionLimits, tokens: TokenSet | None = None) -> AsyncIterator[int]:
    """A worker's web server (its application options, token check and connection handling) on
    a free port, yielded."""
    port = free_port()
    app = faust.App(
        "http-server-test",
        web_host="127.0.0.1",
        web_port=port,
        web_router_enabled=False,
        web_tables_enabled=False,
        web_graph_enabled=False,
        web_stats_enabled=False,
        web_application_options=web_application_options(),
    )
    register_http_api(
        app, Queries(), protect_metrics=True, extra_routes=[FAILING], **({"tokens": tokens} if tokens else {})
    )
    serve_web_with(app, limits)
    app.web.init_server()
    await app.web.start_server()
    try:
        yield port
    finally:
        await app.web.stop_server()


async def exchange(port: int, raw: bytes) -> bytes:
    """Everything the server sends for ``raw`` until it closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), ANSWER_WITHIN_S)
    finally:
        writer.close()


def parse(answer: bytes) -> tuple[int, dict[str, str], Any]:
    """Status, header fields (lower-case names) and JSON body of one HTTP/1.1 answer."""
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {
        name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])
    }
    return status, headers, orjson.loads(body)


REFUSED_BY_THE_PARSER = {
    "unknown HTTP version": b"GET /health HTTP/9.9\r\nHost: x\r\n\r\n",
    "unknown method": b"BREW /health HTTP/1.1\r\nHost: x\r\n\r\n",
    "bad UTF-8 in the path": b"GET /\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n",
    "Content-Length with Transfer-Encoding": (
        b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc"
    ),
    "negative Content-Length": b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    "500 header fields": b"GET /health HTTP/1.1\r\n"
    + b"".join(b"X-%d: v\r\n" % i for i in range(500))
    + b"\r\n",
    "a header line with no colon": b"GET /health HTTP/1.1\r\nHost: x\r\nnonsense\r\n\r\n",
}


@pytest.mark.parametrize("raw", REFUSED_BY_THE_PARSER.values(), ids=REFUSED_BY_THE_PARSER.keys())
async def test_a_request_the_parser_refuses_gets_a_json_error_and_the_connection_closes(raw: bytes) -> None:
    before = HTTP_REJECTED.labels(reason="bad_request")._value.get()
    async with serving(ConnectionLimits()) as port:
        status, headers, body = parse(await exchange(port, raw))
    assert status == 400
    assert headers["content-type"].startswith("application/json")
    assert headers["connection"] == "close"
    assert body["error"] == "bad_request" and body["detail"] and "\n" not in body["detail"]
    assert "b'" not in body["detail"]  # the parser's words, not the request's bytes
    assert HTTP_REJECTED.labels(reason="bad_request")._value.get() == before + 1


async def test_a_handler_that_raises_gets_a_json_500_that_shows_nothing_of_it() -> None:
    async with serving(ConnectionLimits()) as port:
        status, headers, body = parse(await exchange(port, b"GET /fails HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert (status, body["error"]) == (500, "internal_error")
    assert "secret" not in body["detail"] and headers["content-type"].startswith("application/json")


async def test_a_header_that_is_not_utf8_matches_no_token_and_crashes_nothing() -> None:
    tokens = TokenSet((READER,))
    async with serving(ConnectionLimits(), tokens) as port:
        health = await exchange(
            port,
            b"GET /health HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\r\nConnection: close\r\n\r\n",
        )
        metrics = await exchange(
            port,
            b"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\r\n"
            b"Connection: close\r\n\r\n",
        )
        good = await exchange(
            port,
            b"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            + READER.secret
            + b"\r\nConnection: close\r\n\r\n",
        )
    assert parse(health)[0] == 200
    status, _, body = parse(metrics)
    assert (status, body["error"]) == (401, "unauthorized")
    assert parse(good)[0] == 403  # a real token, too small a scope: the check itself works


async def test_a_slow_request_head_gets_408_when_the_head_timeout_passes() -> None:
    """A client that has sent part of a head and goes quiet is answered 408 at the head
    timeout, long before the idle timeout would close the connection."""
    limits = ConnectionLimits(head_timeout_s=0.2, idle_timeout_s=60)
    async with serving(limits) as port:
        status, headers, body = parse(await exchange(port, b"GET /health HTTP/1.1\r\nHost: x\r\n"))
    assert (status, body["error"]) == (408, "request_timeout")
    assert "head" in body["detail"] and headers["connection"] == "close"


async def test_a_connection_that_sends_nothing_is_closed_at_the_idle_timeout() -> None:
    async with serving(ConnectionLimits(head_timeout_s=60, idle_timeout_s=0.2)) as port:
        assert await exchange(port, b"") == b""


async def test_a_connection_over_the_cap_gets_503_with_retry_after() -> None:
    async with serving(ConnectionLimits(max_connections=2)) as port:
        held = []
        for _ in range(2):  # two keep-alive connections, each answered once: both are open
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), ANSWER_WITHIN_S)
            assert head.startswith(b"HTTP/1.1 200")
            held.append(writer)
        status, headers, body = parse(await exchange(port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"))
        for writer in held:
            writer.close()
    assert (status, body["error"], headers["retry-after"]) == (503, "too_many_connections", "1")


async def test_a_body_that_does_not_arrive_in_time_is_refused() -> None:
    never: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
    with pytest.raises(BodyTimeout, match=r"within 0\.05 s"):
        await read_within(never, ConnectionLimits(body_timeout_s=0.05))
    arrived: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
    arrived.set_result(b"body")
    assert await read_within(arrived, ConnectionLimits()) == b"body"


def test_a_raw_answer_is_one_whole_http_answer() -> None:
    status, headers, body = parse(raw_answer(503, "full", retry_after_s=2))
    assert (status, headers["retry-after"], headers["connection"], body) == (
        503,
        "2",
        "close",
        {"error": "too_many_connections", "detail": "full"},
    )
    assert int(headers["content-length"]) == len(orjson.dumps(body))


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        ConnectionLimits(max_connections=0)
