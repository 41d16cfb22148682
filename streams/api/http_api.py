"""The worker's HTTP API, on Faust's aiohttp web server: continust's routes and nothing else.

The routes are data (:class:`~streams.api.api_routes.Route`): this module registers them, puts the
bearer-token check (:mod:`streams.api.api_auth`) and the JSON error bodies in front of them, and
serves the OpenAPI document generated from them at ``GET /api/openapi.json``. The table
routes are :mod:`streams.api.table_routes`, :mod:`streams.api.subscriptions` and
:mod:`streams.api.http_ingest`; the routes of this module:

``GET /health``: liveness: whether this worker's processing loop is alive, reaches its Kafka
cluster, and which partitions it owns; 503 with ``"status": "broker_unreachable"`` while no
broker answers its probes, or ``"status": "wedged"`` and a ``"reason"`` when it has made no
progress for ``wedged_after`` while records wait to be read (:mod:`agents.liveness`).
``GET /ready``: readiness: 200 once the worker has joined its group, holds an assignment and
has restored every assigned table partition; 503 during a rebalance or a recovery, with the
changelog records left per changelog partition (:mod:`agents.readiness`).
``GET /metrics``: Prometheus metrics.

Every request is observed in ``continust_http_request_seconds`` by route (the path template
it matched, ``other`` for none), method and status (:func:`request_timing`).

Every error is a JSON body ``{"error": ..., "detail": ...}`` with a 4xx/5xx status, for any
path and method (:func:`json_errors`); requests aiohttp's parser refuses before any middleware
runs (a line or field over :data:`PARSER_LIMITS`, a malformed head) get JSON too
(:mod:`streams.api.http_server`). ``protect_metrics`` gives ``/metrics`` the ``admin`` scope, in the document
too. Faust's own views (``/router``, ``/table``, ``/graph``, its statistics) are not served:
they would show internal state past any check of continust's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import replace
from typing import Any, Protocol

import faust
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams.api.api_auth import OPEN, TOKEN, TokenSet, bearer
from streams.api.api_forward import Peers
from streams.api.api_routes import (
    ANY_OBJECT,
    Answer,
    BadQuery,
    Route,
    error_response,
    json_response,
    openapi_document,
)
from streams.telemetry.logfmt import logfmt
from streams.telemetry.metrics import HTTP_ERRORS, HTTP_REQUEST_SECONDS, REGISTRY
from streams.telemetry.tracing import current_tracer

log = logging.getLogger("continust.http")
VERSION = "0.1.0"
#: where the request's authenticated token is kept (``None`` when the API is open)


class TableQueries(Protocol):
    """What the HTTP API needs from the tables of a pipeline."""

    def table_names(self) -> list[str]: ...

    def own_url(self) -> str: ...

    def health(self) -> dict[str, Any]:
        """The worker's liveness; ``"status"`` is ``"ok"`` when it is alive."""
        ...

    def ready(self) -> dict[str, Any]:
        """The worker's readiness; ``"status"`` is ``"ready"`` when it is ready."""
        ...


#: the longest request line and header field (bytes) aiohttp's parser takes (its default:
#: 8190). Beyond them the parser answers 400 ``bad_request`` before any middleware runs
#: (:mod:`streams.api.http_server`); up to them a request reaches continust's routes, so a long
#: key or header gets the route's own answer. With at most 128 header fields a request's
#: head stays under 128 x 64 KiB = 8 MiB.
PARSER_LIMITS: dict[str, int] = {"max_line_size": 64 * 1024, "max_field_size": 64 * 1024}


def web_application_options() -> dict[str, Any]:
    """The options of the aiohttp application the API is served on (Faust's
    ``web_application_options`` setting): :data:`PARSER_LIMITS`."""
    return {"handler_args": dict(PARSER_LIMITS)}


ERROR_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}


def _error_for(status: int, reason: str, headers: Any = None) -> web.Response:
    kept = {name: value for name, value in (headers or {}).items() if name.lower() == "allow"}
    return error_response(status, ERROR_CODES.get(status, f"http_{status}"), reason, kept)


@web.middleware
async def request_timing(request: web.Request, handler: Any) -> web.StreamResponse:
    """Observe each request's duration (seconds, until the handler returned: a streamed answer
    counts until its headers went out) by route template, method and status, and trace it
    (:mod:`streams.telemetry.tracing`). The outermost middleware, so answers of the token check and the
    error bodies count too."""
    started = time.perf_counter()
    status = 500
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "other"
    span = current_tracer().http_request(request.method, route, request.headers.get("traceparent"))
    with span:
        try:
            response: web.StreamResponse = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            span.set_status_code(status)
            HTTP_REQUEST_SECONDS.labels(route=route, method=request.method, status=str(status)).observe(
                time.perf_counter() - started
            )


@web.middleware
async def json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every error the web server answers has a JSON body ``{"error", "detail"}``, also for the
    routes continust did not write (an unknown path: 404, a method a route does not take: 405
    with its ``Allow`` header); the answers of continust's own routes are left as they are."""
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error_for(exc.status, exc.reason, exc.headers)
    except BadQuery as exc:
        return error_response(400, "bad_query", str(exc))
    if response.status >= 400 and response.content_type != "application/json" and response.prepared is False:
        return _error_for(response.status, response.reason, response.headers)
    return response


def single_values_middleware(routes: Iterable[Route]) -> Any:
    """400 ``bad_query`` for a query parameter given more than once: every documented one
    takes one value (``?to=1&to=2`` has no meaning to pick for the client)."""
    names: dict[tuple[str, str], frozenset[str]] = {
        (r.method, r.path): frozenset(p.name for p in r.params if p.where == "query") for r in routes
    }

    @web.middleware
    async def check(request: web.Request, handler: Any) -> web.StreamResponse:
        resource = request.match_info.route.resource
        declared = names.get(
            (request.method, resource.canonical if resource is not None else ""), frozenset()
        )
        for name in declared:
            if len(request.query.getall(name, ())) > 1:
                return error_response(400, "bad_query", f"`{name}` is given more than once; give it once")
        return await handler(request)

    return check


def auth_middleware(tokens: TokenSet, routes: Iterable[Route]) -> Any:
    """The scope check in front of every route: 401 without a known bearer token, 403 when the
    token lacks the route's scope. Routes without a scope are open; so is every route when no
    token is configured."""
    scopes: dict[tuple[str, str], str | None] = {(r.method, r.path): r.scope for r in routes}

    @web.middleware
    async def check(request: web.Request, handler: Any) -> web.StreamResponse:
        request[TOKEN] = None
        if tokens.open:
            return await handler(request)
        resource = request.match_info.route.resource
        path = resource.canonical if resource is not None else None
        scope = scopes.get((request.method, path or ""))
        presented = bearer(request.headers.get("Authorization"))
        token = tokens.find(presented) if presented is not None else None
        request[TOKEN] = token
        if scope is None:
            return await handler(request)
        if token is None:
            return error_response(
                401,
                "unauthorized",
                "this route needs `Authorization: Bearer <token>` with a token of the worker's token file",
                {"WWW-Authenticate": 'Bearer realm="continust"'},
            )
        if not token.allows(scope):
            return error_response(403, "forbidden", f"token {token.name!r} lacks scope {scope!r}")
        return await handler(request)

    return check


READY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["status", "ready", "remaining_records", "recovery"],
    "properties": {
        "status": {
            "type": "string",
            "enum": ["ready", "not_joined", "no_assignment", "rebalancing", "recovering"],
        },
        "ready": {"type": "boolean"},
        "remaining_records": {"type": "integer", "description": "changelog records left to restore"},
        "recovery": {
            "type": "object",
            "description": "changelog records left to restore per changelog topic:partition",
            "additionalProperties": {"type": "integer"},
        },
    },
}


def core_routes(queries: TableQueries) -> list[Route]:
    """The operations routes: liveness, readiness and metrics."""

    async def health(request: web.Request) -> web.StreamResponse:
        body = queries.health()
        return json_response(body, 200 if body["status"] == "ok" else 503)

    async def ready(request: web.Request) -> web.StreamResponse:
        body = queries.ready()
        return json_response(body, 200 if body["status"] == "ready" else 503)

    async def metrics(request: web.Request) -> web.StreamResponse:
        return web.Response(body=generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    return [
        Route(
            "GET",
            "/health",
            health,
            "liveness: the worker's processing loop is alive and it reaches its Kafka cluster",
            None,
            answers=(
                Answer(200, "alive", ANY_OBJECT),
                Answer(
                    503,
                    "no broker answers, or wedged (no progress for wedged_after with records to read)",
                    ANY_OBJECT,
                ),
            ),
            tag="operations",
        ),
        Route(
            "GET",
            "/ready",
            ready,
            "readiness: joined the group, holds an assignment, every assigned table partition restored",
            None,
            answers=(
                Answer(200, "ready", READY_SCHEMA),
                Answer(503, "not ready: joining, rebalancing or restoring tables", READY_SCHEMA),
            ),
            tag="operations",
        ),
        Route(
            "GET",
            "/metrics",
            metrics,
            "Prometheus metrics",
            None,
            answers=(
                Answer(200, "the metrics, in Prometheus' text format", {"type": "string"}, "text/plain"),
            ),
            tag="operations",
        ),
    ]


def register_http_api(
    app: faust.App,
    queries: TableQueries,
    *,
    tokens: TokenSet = OPEN,
    extra_routes: Iterable[Route] = (),
    protect_metrics: bool = False,
    peers: Peers | None = None,
) -> list[Route]:
    """Add the API's routes to ``app``'s web server, with the token check in front of them and
    every error as JSON; returns every route served (the OpenAPI document's). An extra route
    with the method and path of a core route replaces it."""
    peers = peers or Peers(queries.own_url())
    routes = [*core_routes(queries), *extra_routes]
    if protect_metrics:  # the document says so too
        routes = [replace(r, scope="admin") if r.path == "/metrics" else r for r in routes]
    document_cache: dict[str, bytes] = {}

    async def openapi(request: web.Request) -> web.StreamResponse:
        if "doc" not in document_cache:
            import orjson

            document_cache["doc"] = orjson.dumps(openapi_document(routes, VERSION))
        return web.Response(body=document_cache["doc"], content_type="application/json")

    routes.append(
        Route(
            "GET",
            "/api/openapi.json",
            openapi,
            "this API's OpenAPI 3.1 document",
            None,
            answers=(Answer(200, "the document", ANY_OBJECT),),
            tag="operations",
        )
    )
    web_app: web.Application = app.web.web_app  # type: ignore[attr-defined]
    web_app.middlewares.insert(0, request_timing)
    web_app.middlewares.append(json_errors)
    web_app.middlewares.append(auth_middleware(tokens, routes))
    web_app.middlewares.append(single_values_middleware(routes))
    for route in routes:
        web_app.router.add_route(route.method, route.path, route.handler)

    async def close_peers(_: web.Application) -> None:
        await peers.close()

    web_app.on_cleanup.append(close_peers)
    if tokens.open:
        log.warning(
            logfmt(
                "http.open", detail="no API token file: every route is open to anyone who reaches the port"
            )
        )
    else:
        log.info(
            logfmt("http.tokens", tokens=len(tokens.tokens), metrics="admin" if protect_metrics else "open")
        )
    return routes


__all__ = ["HTTP_ERRORS", "PARSER_LIMITS", "TableQueries", "register_http_api", "web_application_options"]
