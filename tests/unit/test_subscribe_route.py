"""The subscribe route's answers before a stream starts, on Faust's aiohttp server in process
(no broker is reached: each of these requests is refused before a Kafka client is created),
and its OpenAPI description."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import faust
from aiohttp.test_utils import TestClient, TestServer

from streams.api.api_forward import Peers
from streams.api.http_api import register_http_api
from streams.api.subscriptions import Followable, Subscriptions, subscription_routes
from tests.unit.test_http_api import OWN, Queries


class TwoTables(Queries):
    def table_names(self) -> list[str]:
        return ["counts", "quiet"]


def answers(limit: int, *requests: tuple[str, dict[str, str]]) -> list[tuple[int, Any, dict[str, str]]]:
    async def ask() -> list[tuple[int, Any, dict[str, str]]]:
        app = faust.App(
            "subscribe-route-test",
            web_router_enabled=False,
            web_tables_enabled=False,
            web_graph_enabled=False,
            web_stats_enabled=False,
        )
        queries = TwoTables(restoring=False)
        tables = {"counts": Followable("counts-out", 3), "quiet": Followable(None, 3)}
        # no broker listens there: reaching it would fail the 503 case differently
        routes = subscription_routes(queries, Peers(OWN), Subscriptions(limit), tables, "127.0.0.1:1")
        register_http_api(app, queries, extra_routes=routes)
        app.web.init_server()
        got = []
        async with TestClient(TestServer(app.web.web_app)) as client:
            for path, headers in requests:
                reply = await client.get(path, headers=headers)
                got.append((reply.status, await reply.json(), dict(reply.headers)))
        return got

    return asyncio.run(ask())


def test_refusals_are_json_before_any_stream() -> None:
    got = answers(
        1,
        ("/api/tables/nope/subscribe", {}),
        ("/api/tables/quiet/subscribe", {}),
        ("/api/tables/counts/subscribe?key=a", {"Last-Event-ID": "not-an-offset"}),
        ("/api/tables/counts/subscribe?last_event_id=t0.1", {}),
        ("/api/tables/counts/subscribe", {"Last-Event-ID": "17"}),
        ("/api/tables/counts/subscribe?heartbeat=0", {}),
        ("/api/tables/counts/subscribe?heartbeat=61", {}),
        ("/api/tables/counts/subscribe?heartbeat=x", {}),
    )
    assert [(status, body["error"]) for status, body, _ in got] == [
        (404, "unknown_table"),
        (409, "no_output"),
        (400, "bad_last_event_id"),
        (400, "bad_last_event_id"),  # a table id of 2 partitions; the topic has 3
        (400, "bad_last_event_id"),  # a key id for the whole table
        (400, "bad_query"),
        (400, "bad_query"),
        (400, "bad_query"),
    ]
    assert all(headers["Content-Type"].startswith("application/json") for _, _, headers in got)


def test_beyond_the_subscriber_limit_the_answer_is_503_with_retry_after() -> None:
    [(status, body, headers)] = answers(0, ("/api/tables/counts/subscribe?key=a", {}))
    assert (status, body["error"]) == (503, "too_many_subscribers")
    assert int(headers["Retry-After"]) > 0


def test_the_openapi_document_describes_the_stream_and_its_errors() -> None:
    [(_status, document, _)] = answers(1, ("/api/openapi.json", {}))
    operation = document["paths"]["/api/tables/{table}/subscribe"]["get"]
    assert operation["security"] == [{"bearer": ["subscribe"]}]
    assert operation["responses"]["200"]["content"]["text/event-stream"]["schema"]["type"] == "string"
    assert {"400", "401", "403", "404", "409", "410", "503"} <= set(operation["responses"])
    assert "Retry-After" in operation["responses"]["503"]["headers"]
    params = {(p["name"], p["in"]) for p in operation["parameters"]}
    assert {
        ("table", "path"),
        ("key", "query"),
        ("heartbeat", "query"),
        ("Last-Event-ID", "header"),
    } <= params


def test_the_tail_command_loads_without_faust() -> None:
    probe = "import sys, agents.cli, streams.cli.tail_command; print('faust' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
