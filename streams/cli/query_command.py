"""``continust query``: ask a worker's HTTP API about a table and print the JSON answer.

    continust query                          the catalog (every table)
    continust query TABLE KEY [--from --to]  one key's windows
    continust query TABLE --top BY [--n N]   the top keys by aggregation BY
    continust query TABLE [--prefix P --limit N --all]
                                             a scan, one page (``--all``: every page, following
                                             the cursors, printed as one answer)

Every form takes ``--after TOKEN`` (read-your-writes, waiting at most ``--wait`` seconds),
``--from``/``--to`` (epoch ms) where they apply, ``--url`` (default ``$CONTINUST_API_URL`` or
``http://127.0.0.1:6066``) and ``--token`` (default ``$CONTINUST_API_TOKEN``; sent as a bearer
token). The answer goes to stdout; an error answer's JSON body goes to stderr with exit code 1,
and a worker that cannot be reached exits 2. It loads nothing of the runtime (no Faust).
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any, TextIO

import orjson

DEFAULT_URL = "http://127.0.0.1:6066"
TIMEOUT_S = 60.0


class QueryFailed(Exception):
    """The worker answered an error (``status``, its JSON ``body``)."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("table", nargs="?", help="the table (none: the catalog of every table)")
    p.add_argument("key", nargs="?", help="one key: its windows")
    p.add_argument("--from", dest="from_ms", type=int, help="epoch ms: windows ending after it")
    p.add_argument("--to", dest="to_ms", type=int, help="epoch ms: windows starting before it")
    p.add_argument("--prefix", help="scan: only keys starting with it")
    p.add_argument("--limit", type=int, help="scan: windows per page (default 100, at most 1000)")
    p.add_argument("--all", action="store_true", help="scan: every page, following the cursors")
    p.add_argument("--top", metavar="BY", help="the top keys by this aggregation")
    p.add_argument("--n", type=int, help="--top: how many keys (default 10)")
    p.add_argument("--order", choices=["desc", "asc"], help="--top: largest first (desc) or smallest")
    p.add_argument("--after", metavar="TOKEN", help="a position token: answer once the table has read it")
    p.add_argument("--wait", type=float, help="seconds to wait for --after (default 5, at most 30)")
    p.add_argument("--stale-ok", action="store_true", help="a standby may answer")
    p.add_argument(
        "--url", default=None, help=f"a worker's base URL (default $CONTINUST_API_URL or {DEFAULT_URL})"
    )
    p.add_argument("--token", default=None, help="bearer token (default $CONTINUST_API_TOKEN)")


Fetch = Callable[[str, dict[str, str]], Any]


def http_fetch(base_url: str, token: str | None) -> Fetch:
    """``GET base_url + path?query`` → the JSON answer; raises :class:`QueryFailed` for an
    error answer and ``urllib.error.URLError`` when the worker cannot be reached."""

    def fetch(path: str, query: dict[str, str]) -> Any:
        url = base_url.rstrip("/") + path + ("?" + urllib.parse.urlencode(query) if query else "")
        request = urllib.request.Request(url, headers={"Accept": "application/json"})
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                return orjson.loads(response.read())
        except urllib.error.HTTPError as err:
            raw = err.read()
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                body = {"error": f"http_{err.code}", "detail": raw.decode(errors="replace")}
            raise QueryFailed(err.code, body) from None

    return fetch


def _segment(text: str) -> str:
    """``text`` as one path segment (a key may hold ``/``, ``?`` or spaces)."""
    return urllib.parse.quote(text, safe="")


def _common(args: argparse.Namespace) -> dict[str, str]:
    query = {}
    for name, value in (
        ("from", args.from_ms),
        ("to", args.to_ms),
        ("after", args.after),
        ("wait", args.wait),
    ):
        if value is not None:
            query[name] = str(value)
    if args.stale_ok:
        query["stale_ok"] = "true"
    return query


def run_query(args: argparse.Namespace, fetch: Fetch) -> Any:
    """The answer ``args`` ask for (with ``--all``, every page's windows in one answer, with
    the positions of the last page read)."""
    if args.table is None:
        return fetch("/api/tables", {})
    table, query = _segment(args.table), _common(args)
    if args.key is not None:
        return fetch(f"/api/tables/{table}/keys/{_segment(args.key)}", query)
    if args.top is not None:
        query["by"] = args.top
        if args.n is not None:
            query["n"] = str(args.n)
        if args.order is not None:
            query["order"] = args.order
        return fetch(f"/api/tables/{table}/top", query)
    if args.prefix:
        query["key_prefix"] = args.prefix
    if args.limit is not None:
        query["limit"] = str(args.limit)
    page = fetch(f"/api/tables/{table}/windows", query)
    if not args.all:
        return page
    windows = list(page["windows"])
    while page["next_cursor"] is not None:
        page = fetch(f"/api/tables/{table}/windows", {**query, "cursor": page["next_cursor"]})
        windows += page["windows"]
    return {**page, "windows": windows}


def main(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the query; the answer to ``out`` (stdout), errors to ``err`` (stderr); the exit
    code."""
    out, err = out or sys.stdout, err or sys.stderr
    base = args.url or os.environ.get("CONTINUST_API_URL") or DEFAULT_URL
    token = args.token if args.token is not None else os.environ.get("CONTINUST_API_TOKEN")
    try:
        answer = run_query(args, http_fetch(base, token))
    except QueryFailed as exc:
        err.write(orjson.dumps(exc.body, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 1
    except (urllib.error.URLError, OSError) as exc:
        err.write(f"continust query: cannot reach {base}: {exc}\n")
        return 2
    out.write(orjson.dumps(answer, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0
