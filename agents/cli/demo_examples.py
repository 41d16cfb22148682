"""The demo's live examples: a top-N query and the first records of a subscription, printed with
the curl commands that ask for them, so the console shows what the API answers."""

from __future__ import annotations

import logging
from urllib.parse import quote

import aiohttp
import orjson

from streams.plan.pipeline import TableSpec
from streams.telemetry.logfmt import logfmt

log = logging.getLogger("continust.demo")
#: how long the demo publishes before it shows the examples (seconds)
EXAMPLES_AFTER_S = 15.0
SUBSCRIPTION_EVENTS = 4


def _ranked_by(table: TableSpec) -> str:
    """The aggregation a top-N example ranks keys by: the first sum, else the first."""
    for name, aggregation in zip(table.aggregate_names, table.aggregations, strict=True):
        if aggregation.name == "sum":
            return name
    return table.aggregate_names[0]


async def show_examples(port: int, table: TableSpec, user: str) -> None:
    base = f"http://127.0.0.1:{port}/api/tables/{quote(table.name)}"
    by = _ranked_by(table)
    top = f"{base}/top?by={by}&n=3"
    subscribe = f"{base}/subscribe?key={quote(user)}"
    timeout = aiohttp.ClientTimeout(total=30)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.get(top) as reply:
                body = orjson.loads(await reply.read())
            print(f"\n$ curl -s '{top}'   # the keys that spent most in one window")
            for entry in body.get("top", []):
                print(f"  {orjson.dumps(entry).decode()}")
            print('  (and "position": per partition, its stream time and the input offsets processed)')
            print(f"\n$ curl -sN '{subscribe}'   # a snapshot, then every committed change")
            async with session.get(subscribe) as reply:
                shown = 0
                async for line in reply.content:
                    text = line.decode().rstrip("\n")
                    if text.startswith(":"):
                        continue
                    print(f"  {text}" if text else "")
                    if text.startswith("data:"):
                        shown += 1
                        if shown >= SUBSCRIPTION_EVENTS:
                            break
            print("  ...\n")
    except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError) as exc:
        log.warning(logfmt("demo.examples_failed", error=repr(exc)))
