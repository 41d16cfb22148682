"""Who a request of the HTTP API comes from, for the limits kept per client (the ingest rate,
the queries waiting for a position)."""

from __future__ import annotations

from aiohttp import web

from streams.api.api_auth import TOKEN


def client_of(request: web.Request) -> str:
    """The client a request counts against: its token's name, or its address when the API is
    open."""
    token = request.get(TOKEN)
    if token is not None:
        return f"token:{token.name}"
    return f"address:{request.remote or 'unknown'}"
