"""The HTTP API's answers that depend on the worker's state or its settings, on Faust's aiohttp
server in process (the owner is this worker, so nothing is forwarded and no broker is
involved)."""

from __future__ import annotations

import asyncio
from typing import Any

import faust
import orjson
from aiohttp.test_utils import TestClient, TestServer

from streams.api.api_auth import ApiToken, TokenSet
from streams.api.http_api import PARSER_LIMITS, register_http_api, web_application_options

OWN = "http://127.0.0.1:6066"


class Queries:
    def __init__(self, restoring: bool) -> None:
        self._restoring = restoring

    def table_names(self) -> list[str]:
        return ["t"]

    def own_url(self) -> str:
        return OWN

    def health(self) -> dict[str, Any]:
        return {"status": "ok"}

    def ready(self) -> dict[str, Any]:
        return {"status": "ready"}


def replies(
    requests: list[tuple[str, str, dict[str, str]]], restoring: bool = False, **api: Any
) -> list[tuple[int, str, bytes]]:
    """Status, content type and body of each request (method, path, headers) to an API
    registered with ``api`` (:func:`register_http_api`'s keywords), on the application options
    a worker serves it with."""

    async def ask() -> list[tuple[int, str, bytes]]:
        app = faust.App(
            "http-api-test",
            web_router_enabled=False,
            web_tables_enabled=False,
            web_graph_enabled=False,
            web_stats_enabled=False,
            web_application_options=web_application_options(),
        )
        register_http_api(app, Queries(restoring), **api)
        app.web.init_server()
        got = []
        async with TestClient(TestServer(app.web.web_app)) as client:
            for method, path, headers in requests:
                reply = await client.request(method, path, headers=headers)
                got.append((reply.status, reply.content_type, await reply.read()))
        return got

    return asyncio.run(ask())


def answers(restoring: bool, *requests: tuple[str, str]) -> list[tuple[int, Any, str | None]]:
    async def ask() -> list[tuple[int, Any, str | None]]:
        app = faust.App(
            "http-api-test",
            web_router_enabled=False,
            web_tables_enabled=False,
            web_graph_enabled=False,
            web_stats_enabled=False,
        )
        register_http_api(app, Queries(restoring))
        app.web.init_server()
        got = []
        async with TestClient(TestServer(app.web.web_app)) as client:
            for method, path in requests:
                reply = await client.request(method, path)
                got.append((reply.status, await reply.json(), reply.headers.get("Allow")))
        return got

    return asyncio.run(ask())


def test_every_error_is_json_and_faust_views_are_not_served() -> None:
    got = answers(
        False,
        ("GET", "/router/"),
        ("GET", "/table/t/k/"),
        ("GET", "/nowhere"),
        ("DELETE", "/metrics"),
    )
    assert [(s, b["error"]) for s, b, _ in got] == [
        (404, "not_found"),
        (404, "not_found"),
        (404, "not_found"),
        (405, "method_not_allowed"),
    ]
    assert "GET" in (got[-1][2] or "")


def test_a_path_or_header_of_20000_characters_gets_a_json_answer() -> None:
    long = "k" * 20_000
    got = replies(
        [
            ("GET", f"/api/tables/t/keys/{long}/nowhere", {}),
            ("GET", "/health", {"X-Long": long}),
            ("GET", f"/health?x={long}", {}),
        ]
    )
    assert [(status, kind) for status, kind, _ in got] == [
        (404, "application/json"),
        (200, "application/json"),
        (200, "application/json"),
    ]
    assert orjson.loads(got[0][2])["error"] == "not_found"
    # beyond the raised limits the parser refuses the request before any route sees it
    too_long = "x" * (PARSER_LIMITS["max_field_size"] + 1)
    [(status, _, _)] = replies([("GET", "/health", {"X-Long": too_long})])
    assert status == 400


ADMIN = ApiToken("ops", b"admin-secret-0123456789", frozenset({"admin"}))
READER = ApiToken("dashboard", b"read-secret-0123456789", frozenset({"read"}))


def bearer(token: ApiToken) -> dict[str, str]:
    return {"Authorization": f"Bearer {token.secret.decode()}"}


def test_protected_metrics_need_an_admin_token_and_the_document_says_so() -> None:
    tokens = TokenSet((ADMIN, READER))
    asked = [
        ("GET", "/metrics", {}),
        ("GET", "/metrics", bearer(READER)),
        ("GET", "/metrics", bearer(ADMIN)),
        ("GET", "/api/openapi.json", {}),
        ("GET", "/health", {}),
    ]
    protected = replies(asked, tokens=tokens, protect_metrics=True)
    assert [(status, kind) for status, kind, _ in protected] == [
        (401, "application/json"),
        (403, "application/json"),
        (200, "text/plain"),
        (200, "application/json"),
        (200, "application/json"),
    ]
    assert orjson.loads(protected[0][2])["error"] == "unauthorized"
    assert orjson.loads(protected[1][2])["error"] == "forbidden"
    assert b"continust_" in protected[2][2]
    document = orjson.loads(protected[3][2])
    assert document["paths"]["/metrics"]["get"]["security"] == [{"bearer": ["admin"]}]
    assert document["paths"]["/health"]["get"]["security"] == []

    open_metrics = replies(asked, tokens=tokens, protect_metrics=False)
    assert [status for status, _, _ in open_metrics] == [200, 200, 200, 200, 200]
    assert orjson.loads(open_metrics[3][2])["paths"]["/metrics"]["get"]["security"] == []
