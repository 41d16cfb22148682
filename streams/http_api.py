"""The worker's HTTP API (served by Faust's web server).

``GET /api/tables/{table}/{key}?from=&to=``: the key's windows that overlap [from, to), sorted
by start, answered by the worker that owns the key's partition wherever the request lands;
503 (``"error": "restoring"``) while that worker restores its tables from their changelogs.
``GET /health``: whether this worker is up, reaches its Kafka cluster and which partitions it
owns; 503 (``"status": "broker_unreachable"``) while no broker answers its probes.
``GET /metrics``: Prometheus metrics.

Every error is a JSON body ``{"error": ..., "detail": ...}`` with a 4xx/5xx status, for any
path (:func:`json_errors`). Faust's own views (``/router``, ``/table``, ``/graph``, its
statistics) are not served: they would show internal state past any check of continust's.
"""

from __future__ import annotations

from typing import Any, Protocol

import aiohttp
import faust
import orjson
from aiohttp import web as aiohttp_web
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from yarl import URL

from streams.metrics import HTTP_ERRORS, REGISTRY

FORWARDED = "X-Continust-Forwarded-By"


class TableQueries(Protocol):
    """What the HTTP API needs from the tables of a pipeline."""

    def table_names(self) -> list[str]: ...

    def owner_url(self, table: str, key: str) -> str | None:
        """The base URL of the worker that owns ``key`` of ``table``; ``None`` while unassigned."""
        ...

    def own_url(self) -> str: ...

    def restoring(self) -> bool:
        """Whether this worker is still restoring its tables from their changelogs (its answers
        would miss what the changelogs hold beyond its stores)."""
        ...

    def windows(self, table: str, key: str, start_ms: int | None, end_ms: int | None) -> list[dict[str, Any]]:
        """The key's windows overlapping [start_ms, end_ms), sorted by start."""
        ...

    def health(self) -> dict[str, Any]:
        """The worker's state; ``"status"`` is ``"ok"`` when it is healthy."""
        ...


def _json(view: View, body: Any, status: int = 200) -> Response:
    if status >= 400:
        HTTP_ERRORS.labels(status=str(status)).inc()
    return view.bytes(orjson.dumps(body), content_type="application/json", status=status)


def _error(view: View, status: int, error: str, detail: str) -> Response:
    return _json(view, {"error": error, "detail": detail}, status)


def _bound(request: Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"`{name}` must be epoch milliseconds (an integer), got {raw!r}") from None


ERROR_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}


def _error_response(status: int, reason: str, headers: Any = None) -> aiohttp_web.Response:
    HTTP_ERRORS.labels(status=str(status)).inc()
    body = {"error": ERROR_CODES.get(status, f"http_{status}"), "detail": reason}
    kept = {name: value for name, value in (headers or {}).items() if name.lower() == "allow"}
    return aiohttp_web.Response(
        body=orjson.dumps(body), status=status, content_type="application/json", headers=kept
    )


@aiohttp_web.middleware
async def json_errors(request: aiohttp_web.Request, handler: Any) -> aiohttp_web.StreamResponse:
    """Every error the web server answers has a JSON body ``{"error", "detail"}``, also for the
    routes continust did not write (an unknown path: 404, a method a route does not take: 405
    with its ``Allow`` header); the answers of continust's own routes are left as they are."""
    try:
        response: aiohttp_web.StreamResponse = await handler(request)
    except aiohttp_web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error_response(exc.status, exc.reason, exc.headers)
    if response.status >= 400 and response.content_type != "application/json":
        return _error_response(response.status, response.reason, response.headers)
    return response


def register_http_api(app: faust.App, queries: TableQueries) -> None:
    """Add the API's routes to ``app``'s web server, and make its every error JSON."""
    app.web.web_app.middlewares.append(json_errors)  # type: ignore[attr-defined]

    @app.page("/health")
    class Health(View):
        async def get(self, request: Request) -> Response:
            body = queries.health()
            return _json(self, body, 200 if body["status"] == "ok" else 503)

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            return self.bytes(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/api/tables/{table}/{key}")
    class TableKey(View):
        async def get(self, request: Request, table: str, key: str) -> Response:
            if table not in queries.table_names():
                return _error(
                    self,
                    404,
                    "unknown_table",
                    f"no table {table!r}; tables: {', '.join(queries.table_names())}",
                )
            try:
                start, end = _bound(request, "from"), _bound(request, "to")
            except ValueError as exc:
                return _error(self, 400, "bad_query", str(exc))
            if start is not None and end is not None and start >= end:
                return _error(self, 400, "bad_query", "`from` must be before `to`")
            owner = queries.owner_url(table, key)
            if owner is None:
                return _error(self, 503, "not_ready", "partition ownership is being (re)assigned; retry")
            if URL(owner).origin() != URL(queries.own_url()).origin():
                if request.headers.get(FORWARDED) is not None:
                    return _error(self, 503, "not_ready", "owners disagree during a rebalance; retry")
                return await self.forward(request, owner)
            if queries.restoring():
                return _error(self, 503, "restoring", "the owner is restoring its tables; retry")
            windows = queries.windows(table, key, start, end)
            return _json(self, {"table": table, "key": key, "windows": windows})

        async def forward(self, request: Request, owner: str) -> Response:
            """Ask the owner once (marked, so a stale assignment cannot bounce it back)."""
            target = URL(owner).with_path(request.url.path).with_query(request.query)
            try:
                async with app.http_client.get(target, headers={FORWARDED: queries.own_url()}) as reply:
                    body = await reply.read()
                    if reply.status >= 400:
                        HTTP_ERRORS.labels(status=str(reply.status)).inc()
                    return self.bytes(body, content_type="application/json", status=reply.status)
            except aiohttp.ClientError as exc:
                return _error(self, 503, "owner_unreachable", f"{owner}: {exc}")
