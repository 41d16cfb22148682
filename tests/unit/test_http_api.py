"""The HTTP API's answers that depend on the worker's state, on Faust's aiohttp server in
process (the owner is this worker, so nothing is forwarded and no broker is involved)."""

from __future__ import annotations

import asyncio
from typing import Any

import faust
from aiohttp.test_utils import TestClient, TestServer

from streams.http_api import register_http_api

OWN = "http://127.0.0.1:6066"


class Queries:
    def __init__(self, restoring: bool) -> None:
        self._restoring = restoring

    def table_names(self) -> list[str]:
        return ["t"]

    def owner_url(self, table: str, key: str) -> str:
        return OWN

    def own_url(self) -> str:
        return OWN

    def restoring(self) -> bool:
        return self._restoring

    def windows(self, table: str, key: str, start_ms: int | None, end_ms: int | None) -> list[dict[str, Any]]:
        return [{"start": 0, "end": 10, "closed": True, "value": {"n": 1}, "version": 1}]

    def health(self) -> dict[str, Any]:
        return {"status": "ok"}


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


def test_a_restoring_owner_answers_503_and_a_restored_one_its_windows() -> None:
    [(status, body, _)] = answers(True, ("GET", "/api/tables/t/keys/k"))
    assert status == 503 and body["error"] == "restoring"
    [(status, body, _)] = answers(False, ("GET", "/api/tables/t/keys/k"))
    assert status == 200 and body["windows"][0]["value"] == {"n": 1}


def test_every_error_is_json_and_faust_views_are_not_served() -> None:
    got = answers(
        False,
        ("GET", "/router/"),
        ("GET", "/table/t/k/"),
        ("GET", "/nowhere"),
        ("DELETE", "/api/tables/t/keys/k"),
    )
    assert [(s, b["error"]) for s, b, _ in got] == [
        (404, "not_found"),
        (404, "not_found"),
        (404, "not_found"),
        (405, "method_not_allowed"),
    ]
    assert "GET" in (got[-1][2] or "")
