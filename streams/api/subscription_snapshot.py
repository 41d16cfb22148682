"""The snapshot a live subscription starts with: the table's current windows, asked of this
worker's own query routes as a client would ask them (with the subscriber's ``Authorization``
header and no forwarding mark), so the routes send the request on to the worker that owns the
partition, or gather the table from every worker, as they do for clients.

- One key: ``GET /api/tables/{table}/keys/{key}`` (its ``windows``, each given the ``key``).
- The whole table: ``GET /api/tables/{table}/windows?limit=&cursor=``, page after page until
  ``next_cursor`` is null (each window carries its ``key``).

Both need a token that allows ``read`` besides ``subscribe``. An answer other than 200, or a
body without a ``windows`` list, raises :class:`SnapshotUnavailable` with the status and JSON
body to give the subscriber.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
from aiohttp import web
from yarl import URL

from streams.api.api_forward import Peers

#: windows asked per page of a whole-table snapshot
SCAN_PAGE_LIMIT = 500


class SnapshotUnavailable(Exception):
    """The query behind a snapshot did not answer it: ``status`` and ``body`` are what the
    subscriber gets instead (a JSON error)."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status} {body}")
        self.status = status
        self.body = body


async def _ask(peers: Peers, request: web.Request, path: str, query: dict[str, str]) -> Any:
    """This worker's JSON answer to ``GET path?query`` (``path`` percent-encoded)."""
    target = URL(peers.own_url).with_path(path, encoded=True).with_query(query)
    headers = {}
    if (auth := request.headers.get("Authorization")) is not None:
        headers["Authorization"] = auth
    try:
        async with peers.session().get(target, headers=headers, ssl=peers.ssl) as reply:
            status, body = reply.status, orjson.loads(await reply.read())
    except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError) as exc:
        raise SnapshotUnavailable(503, {"error": "snapshot_unavailable", "detail": repr(exc)}) from None
    if status != 200:
        if not (isinstance(body, dict) and isinstance(body.get("error"), str)):
            body = {"error": "snapshot_unavailable", "detail": f"the query answered {status}"}
        raise SnapshotUnavailable(status if status in (401, 403, 404, 503) else 503, body)
    if not isinstance(body, dict) or not isinstance(body.get("windows"), list):
        raise SnapshotUnavailable(
            503, {"error": "snapshot_unavailable", "detail": f"{path} answered without a windows list"}
        )
    return body


def _segment(text: str) -> str:
    return quote(text, safe="")


async def key_windows(peers: Peers, request: web.Request, table: str, key: str) -> list[dict[str, Any]]:
    """``key``'s current windows, each as ``{"key", "start", "end", "closed", "value", "version"}``."""
    body = await _ask(peers, request, f"/api/tables/{_segment(table)}/keys/{_segment(key)}", {})
    return [{"key": key, **window} for window in body["windows"]]


async def table_windows(
    peers: Peers, request: web.Request, table: str
) -> AsyncIterator[list[dict[str, Any]]]:
    """The table's current windows, one page at a time."""
    cursor: str | None = None
    while True:
        query = {"limit": str(SCAN_PAGE_LIMIT)}
        if cursor is not None:
            query["cursor"] = cursor
        body = await _ask(peers, request, f"/api/tables/{_segment(table)}/windows", query)
        yield list(body["windows"])
        cursor = body.get("next_cursor")
        if not isinstance(cursor, str) or not cursor:
            return
