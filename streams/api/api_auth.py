"""Bearer tokens for the HTTP API.

The token file is TOML, one ``[[tokens]]`` table per token::

    [[tokens]]
    name = "dashboard"            # shown in logs, never the token itself
    token = "a long random secret"
    scopes = ["read", "subscribe"]  # of read, subscribe, ingest, admin

``admin`` allows every route; ``subscribe`` includes ``read`` (a subscription's snapshot is
what the read routes answer). With no token file the API is open (the worker says so in its
log when it starts). A request presents ``Authorization: Bearer <token>``; the token is compared
with every configured one in constant time (:func:`hmac.compare_digest`), so the time an answer
takes does not tell how much of a guess was right. ``/health`` and ``/ready`` are always open;
``/metrics`` is open unless the settings protect it (then it needs ``admin``).
"""

from __future__ import annotations

import hmac
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from streams.api.api_routes import SCOPES

#: where the auth middleware keeps the token a request presented (``None``: the API is open)
TOKEN: web.RequestKey[Any] = web.RequestKey("continust.token", object)

MIN_TOKEN_LENGTH = 16
#: what each scope allows: ``subscribe`` includes ``read``, since a subscription starts with a
#: snapshot of the same windows the read routes answer; ``admin`` allows every route
IMPLIES: dict[str, frozenset[str]] = {
    "read": frozenset({"read"}),
    "subscribe": frozenset({"subscribe", "read"}),
    "ingest": frozenset({"ingest"}),
    "admin": frozenset(SCOPES),
}


class TokenFileError(ValueError):
    """The token file is missing or does not hold what :func:`load_tokens` takes."""


@dataclass(frozen=True)
class ApiToken:
    name: str
    secret: bytes
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return "admin" in self.scopes or any(scope in IMPLIES[s] for s in self.scopes)

    def __repr__(self) -> str:  # never the secret
        return f"ApiToken(name={self.name!r}, scopes={sorted(self.scopes)})"


@dataclass(frozen=True)
class TokenSet:
    tokens: tuple[ApiToken, ...]

    @property
    def open(self) -> bool:
        """No token configured: every route is open."""
        return not self.tokens

    def find(self, presented: str) -> ApiToken | None:
        """The token matching ``presented``; every configured token is compared, each in
        constant time, whichever matches. A header that is not UTF-8 reaches here with its
        bytes surrogate-escaped (as aiohttp decodes header fields); they are compared as sent,
        and match no token (every token is UTF-8)."""
        given = presented.encode("utf-8", "surrogateescape")
        found = None
        for token in self.tokens:
            if hmac.compare_digest(token.secret, given):
                found = token
        return found


OPEN = TokenSet(())


def load_tokens(path: Path) -> TokenSet:
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise TokenFileError(f"token file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise TokenFileError(f"token file {path}: not TOML: {exc}") from None
    entries = data.get("tokens")
    if not isinstance(entries, list) or not entries:
        raise TokenFileError(f"token file {path}: needs at least one [[tokens]] table")
    tokens, names = [], set()
    for index, entry in enumerate(entries):
        where = f"token file {path}: tokens[{index}]"
        if not isinstance(entry, dict):
            raise TokenFileError(f"{where} must be a table")
        name, secret, scopes = entry.get("name"), entry.get("token"), entry.get("scopes")
        if not isinstance(name, str) or not name:
            raise TokenFileError(f"{where}: `name` must be a non-empty string")
        if name in names:
            raise TokenFileError(f"{where}: name {name!r} is used twice")
        if not isinstance(secret, str) or len(secret) < MIN_TOKEN_LENGTH:
            raise TokenFileError(
                f"{where} ({name}): `token` must be a string of {MIN_TOKEN_LENGTH}+ characters"
            )
        if (
            not isinstance(scopes, list)
            or not scopes
            or any(not isinstance(s, str) or s not in SCOPES for s in scopes)
        ):
            raise TokenFileError(
                f"{where} ({name}): `scopes` must be a non-empty list of {', '.join(SCOPES)}"
            )
        names.add(name)
        tokens.append(ApiToken(name, secret.encode(), frozenset(scopes)))
    return TokenSet(tuple(tokens))


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, ``None`` without one."""
    if not header:
        return None
    kind, _, value = header.partition(" ")
    if kind.lower() != "bearer" or not value.strip():
        return None
    return value.strip()
