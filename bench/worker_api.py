"""What the harness reads from a running continust worker over its HTTP API (README, "HTTP"):
its Prometheus metrics (``GET /metrics``) and the windows of one of its tables, key by key
(``GET /api/tables/{table}/keys/{key}``)."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

from bench.windowing import Results

CONCURRENCY = 16
"""Table requests in flight at once."""


def metric_total(port: int, name: str, where: str = "") -> float | None:
    """The sum of metric ``name`` over its labels (those of the series whose line holds
    ``where``, e.g. ``generation="2"``; 0 when it has no such series yet); None while the
    worker does not answer."""
    totals = metric_totals(port, [(name, where)])
    return None if totals is None else totals[0]


def metric_totals(port: int, wanted: list[tuple[str, str]]) -> list[float] | None:
    """:func:`metric_total` of each ``(name, where)`` of ``wanted``, all from one scrape of
    ``/metrics``, so that they are consistent with each other (a histogram's count and its
    buckets); None while the worker does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            lines = r.read().decode().splitlines()
    except OSError:
        return None
    return [_total(lines, name, where) for name, where in wanted]


def _total(lines: list[str], name: str, where: str) -> float:
    prefix = name + "{"
    return sum(
        float(x.rsplit(" ", 1)[1])
        for x in lines
        if (x.startswith(prefix) or x.startswith(name + " ")) and where in x
    )


def key_windows(body: dict[str, Any], count: str = "n", total: str = "total") -> Results:
    """The windows of one answer of ``GET /api/tables/{table}/keys/{key}``, open and closed alike."""
    key = body["key"]
    return {
        (key, int(w["start"]), int(w["end"])): (int(w["value"][count]), float(w["value"][total]))
        for w in body["windows"]
    }


async def read_table(port: int, table: str, keys: Iterable[str], patience_s: float = 60.0) -> Results:
    """Every window of every key in ``keys``; a 503 (partitions being assigned) is asked again
    until ``patience_s`` has passed, any other error raises ``RuntimeError``."""
    deadline = time.monotonic() + patience_s
    results: Results = {}
    gate = asyncio.Semaphore(CONCURRENCY)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:

        async def one(key: str) -> None:
            url = f"http://127.0.0.1:{port}/api/tables/{quote(table, safe='')}/keys/{quote(key, safe='')}"
            async with gate:
                while True:
                    async with session.get(url) as reply:
                        body = await reply.read()
                        if reply.status == 200:
                            results.update(key_windows(_json(body)))
                            return
                        if reply.status != 503 or time.monotonic() > deadline:
                            raise RuntimeError(f"GET {url}: {reply.status} {body[:200]!r}")
                    await asyncio.sleep(0.2)

        await asyncio.gather(*(one(key) for key in keys))
    return results


def _json(body: bytes) -> dict[str, Any]:
    value = orjson.loads(body)
    if not isinstance(value, dict):
        raise RuntimeError(f"not a JSON object: {body[:200]!r}")
    return value
