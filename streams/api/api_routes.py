"""The HTTP API's routes as data: each :class:`Route` names its method, path, the scope a token
needs, its parameters and its answers, beside the handler that serves it. The web server is
built from the routes (:func:`streams.api.http_api.register_http_api`) and the OpenAPI document is
generated from the same routes (:func:`openapi_document`), so the two cannot drift.

Every answer is JSON (``application/json``) unless a route says otherwise; every error is
``{"error": <code>, "detail": <text>}`` (:func:`error_response`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from aiohttp import web

from streams.telemetry.metrics import HTTP_ERRORS

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: what a bearer token must allow to call a route; ``None``: open to anyone
Scope = Literal["read", "subscribe", "ingest", "admin", "metrics"]
SCOPES: tuple[str, ...] = ("read", "subscribe", "ingest", "admin")

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "detail"],
    "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
}
ANY_OBJECT: dict[str, Any] = {"type": "object"}


@dataclass(frozen=True)
class Param:
    """A path or query parameter (or a header), with its JSON schema."""

    name: str
    where: Literal["path", "query", "header"]
    schema: Mapping[str, Any]
    description: str
    required: bool = False


@dataclass(frozen=True)
class Answer:
    """One documented answer of a route: its status, what it means, and its body's schema
    (JSON unless ``media_type`` says otherwise)."""

    status: int
    description: str
    schema: Mapping[str, Any] = field(default_factory=lambda: ERROR_SCHEMA)
    media_type: str = "application/json"
    headers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    scope: Scope | None
    params: tuple[Param, ...] = ()
    answers: tuple[Answer, ...] = ()
    #: the request body's media types and schemas, for routes that take one
    body: Mapping[str, Mapping[str, Any]] | None = None
    tag: str = "tables"


def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    if status >= 400:
        HTTP_ERRORS.labels(status=str(status)).inc()
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/json", headers=headers
    )


def error_response(
    status: int, error: str, detail: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    """The JSON body every error of the API has."""
    return json_response({"error": error, "detail": detail}, status, headers)


class BadQuery(ValueError):
    """A request parameter that does not hold what its route takes (answered 400 ``bad_query``)."""


def int_param(request: web.Request, name: str, *, minimum: int | None = None) -> int | None:
    """An integer query parameter, ``None`` when absent (given empty, it is not an integer)."""
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise BadQuery(f"`{name}` must be an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise BadQuery(f"`{name}` must be {minimum} or more, got {value}")
    return value


def bool_param(request: web.Request, name: str) -> bool | None:
    """A boolean query parameter, ``None`` when absent (given empty, it is neither)."""
    raw = request.query.get(name)
    if raw is None:
        return None
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise BadQuery(f"`{name}` must be true or false, got {raw!r}")


def _operation_id(route: Route) -> str:
    words = route.path.strip("/").replace("{", "").replace("}", "").replace(".", "_").split("/")
    return "_".join([route.method.lower(), *words])


def _operation(route: Route) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for answer in route.answers:
        entry: dict[str, Any] = {
            "description": answer.description,
            "content": {answer.media_type: {"schema": dict(answer.schema)}},
        }
        if answer.headers:
            entry["headers"] = {name: {"schema": {"type": "string"}} for name in answer.headers}
        responses[str(answer.status)] = entry
    if route.scope is not None:
        for status, text in ((401, "no valid bearer token"), (403, f"the token lacks scope `{route.scope}`")):
            responses.setdefault(
                str(status), {"description": text, "content": {"application/json": {"schema": ERROR_SCHEMA}}}
            )
    responses.setdefault(
        "default",
        {"description": "an error", "content": {"application/json": {"schema": ERROR_SCHEMA}}},
    )
    operation: dict[str, Any] = {
        "operationId": _operation_id(route),
        "summary": route.summary,
        "tags": [route.tag],
        "parameters": [
            {
                "name": p.name,
                "in": p.where,
                "required": p.required or p.where == "path",
                "description": p.description,
                "schema": dict(p.schema),
            }
            for p in route.params
        ],
        "responses": responses,
        "security": [] if route.scope is None else [{"bearer": [route.scope]}],
    }
    if route.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {media: {"schema": dict(schema)} for media, schema in route.body.items()},
        }
    return operation


def openapi_document(routes: list[Route], version: str, servers: list[str] | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``routes``."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "continust",
            "version": version,
            "description": "Windowed tables of a continust pipeline: catalog, queries, live "
            "subscriptions and ingest. Every error is a JSON body {error, detail}.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token of the worker's token file; its scopes decide the routes "
                    "it may call (read, subscribe, ingest, admin; admin allows every route).",
                }
            }
        },
    }
    if servers:
        document["servers"] = [{"url": url} for url in servers]
    return document
