"""Asking another worker: a request that lands on a worker which does not own the partition it
needs is sent on to the owner once, with the caller's ``Authorization`` header (so the owner
checks the same token) and marked with :data:`FORWARDED` (so a stale assignment cannot bounce
it back and forth)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from yarl import URL

from streams.api.api_routes import error_response
from streams.telemetry.metrics import HTTP_ERRORS

FORWARDED = "X-Continust-Forwarded-By"
#: what ``Retry-After`` says when another worker did not answer (seconds)
RETRY_AFTER_S = 1
#: how long a worker waits for another one's answer (seconds)
PEER_TIMEOUT_S = 10.0


def unreachable(worker: str, exc: BaseException) -> str:
    """What an answer says of a worker that did not answer: which, and how it failed in words
    that stay the same across library versions (never an exception's repr)."""
    if isinstance(exc, TimeoutError):
        how = "did not answer in time"
    elif isinstance(exc, aiohttp.ClientConnectorCertificateError):
        how = "presented a TLS certificate this worker cannot verify (CERTIFICATE_VERIFY_FAILED)"
    elif isinstance(exc, aiohttp.ClientSSLError):
        how = "failed the TLS handshake"
    elif isinstance(exc, aiohttp.ClientConnectorError):
        how = "refused or dropped the connection (it may be stopping or restarting)"
    elif isinstance(exc, orjson.JSONDecodeError):
        how = "answered something that is not JSON"
    else:
        how = "failed to answer"
    return f"{worker} {how}"


def same_worker(url: str, own_url: str) -> bool:
    return URL(url).origin() == URL(own_url).origin()


def forwarded(request: web.Request) -> bool:
    return request.headers.get(FORWARDED) is not None


def _headers(request: web.Request, own_url: str) -> dict[str, str]:
    headers = {FORWARDED: own_url}
    auth = request.headers.get("Authorization")
    if auth is not None:
        headers["Authorization"] = auth
    return headers


def _timeout(seconds: float | None) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=PEER_TIMEOUT_S if seconds is None else seconds)


class Peers:
    """The HTTP client one worker uses to ask the others (one connection pool, created on first
    use inside the running event loop)."""

    def __init__(self, own_url: str, ssl: Any = None) -> None:
        self.own_url = own_url
        self._ssl = ssl
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=PEER_TIMEOUT_S))
        return self._session

    @property
    def ssl(self) -> Any:
        """The ``ssl`` argument of requests to other workers (aiohttp's: a context, ``False``
        to skip verification, ``None`` for the default)."""
        return self._ssl

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def forward(self, request: web.Request, owner: str, timeout_s: float | None = None) -> web.Response:
        """The owner's answer to ``request`` (same path and query), as it gave it (waiting at
        most ``timeout_s`` seconds, :data:`PEER_TIMEOUT_S` by default)."""
        target = URL(owner).with_path(request.url.path).with_query(request.query)
        try:
            async with self.session().request(
                request.method,
                target,
                headers=_headers(request, self.own_url),
                ssl=self._ssl,
                timeout=_timeout(timeout_s),
            ) as reply:
                body = await reply.read()
                if reply.status >= 400:
                    HTTP_ERRORS.labels(status=str(reply.status)).inc()
                headers = (
                    {"Retry-After": reply.headers["Retry-After"]} if "Retry-After" in reply.headers else None
                )
                return web.Response(
                    body=body, status=reply.status, content_type="application/json", headers=headers
                )
        except (aiohttp.ClientError, TimeoutError) as exc:
            return error_response(
                503, "owner_unreachable", unreachable(owner, exc), {"Retry-After": str(RETRY_AFTER_S)}
            )

    async def get_json(
        self,
        request: web.Request,
        worker: str,
        path: str,
        query: Mapping[str, str],
        timeout_s: float | None = None,
    ) -> tuple[int, Any]:
        """Another worker's JSON answer to ``GET path?query``, asked on behalf of ``request``
        (waiting at most ``timeout_s`` seconds, :data:`PEER_TIMEOUT_S` by default);
        ``(503, {"error": "owner_unreachable", ...})`` when it does not answer."""
        target = URL(worker).with_path(path).with_query(dict(query))
        try:
            async with self.session().get(
                target, headers=_headers(request, self.own_url), ssl=self._ssl, timeout=_timeout(timeout_s)
            ) as reply:
                return reply.status, orjson.loads(await reply.read())
        except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError) as exc:
            return 503, {"error": "owner_unreachable", "detail": unreachable(worker, exc)}
