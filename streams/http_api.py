"""The worker's HTTP API (served by Faust's web server).

``GET /api/tables/{table}/{key}?from=&to=``: the key's windows that overlap [from, to), sorted
by start, answered by the worker that owns the key's partition wherever the request lands.
``GET /health``: whether this worker is up and which partitions it owns.
``GET /metrics``: Prometheus metrics.

Every error is a JSON body ``{"error": ..., "detail": ...}`` with a 4xx/5xx status.
"""

from __future__ import annotations

from typing import Any, Protocol

import faust
import orjson
from faust.exceptions import SameNode
from faust.web import Request, Response, View
from faust.web.exceptions import ServiceUnavailable
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams.metrics import HTTP_ERRORS, REGISTRY


class TableQueries(Protocol):
    """What the HTTP API needs from the tables of a pipeline."""

    def table_names(self) -> list[str]: ...

    def routing_table(self, table: str) -> str:
        """The name of the Faust table whose changelog partitioning decides the key's owner."""
        ...

    def windows(self, table: str, key: str, start_ms: int | None, end_ms: int | None) -> list[dict[str, Any]]:
        """The key's windows overlapping [start_ms, end_ms), sorted by start."""
        ...

    def health(self) -> dict[str, Any]: ...


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


def register_http_api(app: faust.App, queries: TableQueries) -> None:
    """Add the API's routes to ``app``'s web server."""

    @app.page("/health")
    class Health(View):
        async def get(self, request: Request) -> Response:
            return _json(self, {"status": "ok", **queries.health()})

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            return self.bytes(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/api/tables/{table}/{key}")
    class TableKey(View):
        async def get(self, request: Request, table: str, key: str) -> Response:
            if table not in queries.table_names():
                return _error(
                    self, 404, "unknown_table",
                    f"no table {table!r}; tables: {', '.join(queries.table_names())}",
                )
            try:
                start, end = _bound(request, "from"), _bound(request, "to")
            except ValueError as exc:
                return _error(self, 400, "bad_query", str(exc))
            if start is not None and end is not None and start >= end:
                return _error(self, 400, "bad_query", "`from` must be before `to`")
            try:
                return await app.router.route_req(queries.routing_table(table), key, self.web, request)
            except SameNode:
                pass
            except ServiceUnavailable:
                return _error(self, 503, "not_ready", "partition ownership is being (re)assigned; retry")
            windows = queries.windows(table, key, start, end)
            return _json(self, {"table": table, "key": key, "windows": windows})
