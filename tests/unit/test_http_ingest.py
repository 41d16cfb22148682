"""The ingest route's answers that need no broker, on Faust's aiohttp server in process: the
producer points at a port where nothing listens, so a batch that gets as far as writing is
answered 503."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import faust
from aiohttp.test_utils import TestClient, TestServer

from streams.api.http_api import register_http_api
from streams.api.http_ingest import IngestSource, ingest_route
from streams.api.ingest_body import SourceRules
from streams.api.ingest_producer import IngestProducer
from streams.api.ingest_rate import IngestRateLimit
from tests.unit.test_http_api import Queries

MIB = 1024 * 1024
SOURCE = IngestSource("clicks", ("in-a", "in-b"), SourceRules("user", None, 60_000), keyed_partitions=3)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def answers(
    *requests: tuple[str, bytes, dict[str, str]], max_bytes: int = MIB, rate: float = 1000
) -> list[Any]:
    async def ask() -> list[Any]:
        app = faust.App(
            "ingest-test",
            web_router_enabled=False,
            web_tables_enabled=False,
            web_graph_enabled=False,
            web_stats_enabled=False,
        )
        producer = IngestProducer(f"127.0.0.1:{closed_port()}", timeout_s=5)
        route = ingest_route(
            {"clicks": SOURCE}, producer, max_bytes=max_bytes, rate_limit=IngestRateLimit(rate, Clock())
        )
        register_http_api(app, Queries(False), extra_routes=[route])
        app.web.init_server()
        got = []
        try:
            async with TestClient(TestServer(app.web.web_app)) as client:
                for path, body, headers in requests:
                    reply = await client.post(path, data=body, headers=headers)
                    got.append((reply.status, await reply.json(), reply.headers.get("Retry-After")))
        finally:
            await producer.close()
        return got

    return asyncio.run(ask())


EVENTS = "/api/sources/clicks/events"
ONE = b'{"user": "a"}'


def test_unknown_source_and_a_topic_not_of_the_source() -> None:
    got = answers(("/api/sources/nope/events", ONE, {}), (f"{EVENTS}?topic=elsewhere", ONE, {}))
    assert [(s, b["error"]) for s, b, _ in got] == [(404, "unknown_source"), (400, "bad_query")]
    assert "clicks" in got[0][1]["detail"] and "in-a, in-b" in got[1][1]["detail"]


def test_a_body_over_the_limit_is_413_and_the_limit_is_the_setting_not_the_servers_1_mib() -> None:
    blank = b" " * (int(1.5 * MIB))
    got = answers(
        (EVENTS, blank + b"x", {}),
        (EVENTS, blank, {}),
        max_bytes=len(blank),
    )
    # one byte over the limit: refused before it is parsed; at the limit (and over 1 MiB): read
    assert [(s, b["error"]) for s, b, _ in got] == [(413, "too_large"), (400, "empty_body")]


def test_a_body_over_the_limit_without_a_content_length_is_413() -> None:
    async def chunks() -> Any:
        for _ in range(8):
            yield b"{" * 1024

    async def ask() -> tuple[int, Any]:
        app = faust.App(
            "ingest-test-chunked",
            web_router_enabled=False,
            web_tables_enabled=False,
            web_graph_enabled=False,
            web_stats_enabled=False,
        )
        route = ingest_route(
            {"clicks": SOURCE}, IngestProducer("127.0.0.1:1"), max_bytes=4096, rate_limit=IngestRateLimit(10)
        )
        register_http_api(app, Queries(False), extra_routes=[route])
        app.web.init_server()
        async with TestClient(TestServer(app.web.web_app)) as client:
            reply = await client.post(EVENTS, data=chunks())
            return reply.status, await reply.json()

    status, body = asyncio.run(ask())
    assert (status, body["error"]) == (413, "too_large")


def test_no_record_and_only_invalid_records_are_400_without_writing() -> None:
    got = answers((EVENTS, b"[]", {}), (EVENTS, b'[{"n": 1}, 2]', {}))
    assert [(s, b["error"]) for s, b, _ in got] == [(400, "empty_body"), (400, "invalid_records")]
    invalid = got[1][1]
    assert [(i["index"], i["reason"]) for i in invalid["invalid"]] == [(0, "missing_key"), (1, "not_object")]
    assert invalid["written"] == [] and invalid["position"] is None


def test_an_unreachable_cluster_is_503_and_the_rate_limit_429_with_retry_after() -> None:
    ndjson = {"Content-Type": "application/x-ndjson"}
    got = answers(
        (EVENTS, b"\n".join([ONE] * 10), ndjson),
        (EVENTS, ONE, ndjson),
        rate=10,
    )
    (unavailable, _, _), (limited, body, retry_after) = got
    assert unavailable == 503 and got[0][1]["error"] == "unavailable"
    assert (limited, body["error"], retry_after) == (429, "rate_limited", "1")


def test_the_openapi_document_describes_the_route() -> None:
    from streams.api.api_routes import openapi_document

    route = ingest_route(
        {"clicks": SOURCE}, IngestProducer("127.0.0.1:1"), max_bytes=1, rate_limit=IngestRateLimit(1)
    )
    operation = openapi_document([route], "0")["paths"][EVENTS.replace("clicks", "{source}")]["post"]
    assert operation["security"] == [{"bearer": ["ingest"]}]
    assert [(p["name"], p["in"]) for p in operation["parameters"]] == [("source", "path"), ("topic", "query")]
    assert set(operation["requestBody"]["content"]) == {
        "application/json",
        "application/x-ndjson",
        "text/plain",
    }
    answers = operation["responses"]
    assert {"202", "400", "401", "403", "404", "413", "429", "503"} <= set(answers)
    assert "Retry-After" in answers["429"]["headers"]
    accepted = answers["202"]["content"]["application/json"]["schema"]
    assert accepted["required"] == ["source", "topic", "written", "position"]
