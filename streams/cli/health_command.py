"""``continust health [--url URL] [--ready]``: ask a worker whether it is alive (``/health``) or
ready (``/ready``), for container health checks.

Exit code 0 when the worker answers 200, 1 for any other answer or when it cannot be reached
(refused, timed out); one line on stdout says which (the status and the body's ``status``
field, or why the worker could not be reached). It loads nothing of the runtime (no Faust), so
it starts fast.

The default URL is the worker's own address in the same container, from the environment the
worker reads: ``CONTINUST_WEB_PORT`` (default 6066) and the address it listens on,
``CONTINUST_WEB_BIND`` or else ``CONTINUST_WEB_HOST`` (a wildcard address such as ``0.0.0.0``
or unset: ``127.0.0.1``); ``https`` when ``CONTINUST_API_TLS_CERT``
is set. Like the kubelet's HTTPS probes, the check does not verify the certificate: it asks
whether the process answers, not who it is. Both routes are open (no token).
"""

from __future__ import annotations

import argparse
import os
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TextIO

import orjson

DEFAULT_PORT = 6066
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]"})


@dataclass(frozen=True)
class HealthAnswer:
    """What one check found: ``healthy`` is true only for a 200 answer."""

    healthy: bool
    line: str


def default_url(env: Mapping[str, str]) -> str:
    """The worker's base URL as seen from inside its own container (see the module doc)."""
    host = env.get("CONTINUST_WEB_BIND") or env.get("CONTINUST_WEB_HOST", "")
    host = "127.0.0.1" if host in WILDCARD_HOSTS else host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    scheme = "https" if env.get("CONTINUST_API_TLS_CERT") else "http"
    return f"{scheme}://{host}:{env.get('CONTINUST_WEB_PORT') or DEFAULT_PORT}"


def _body_status(raw: bytes) -> str:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return "-"
    return str(body.get("status", "-")) if isinstance(body, dict) else "-"


def check(base_url: str, ready: bool, timeout_s: float) -> HealthAnswer:
    """``GET /ready`` (``ready``) or ``/health`` on ``base_url``; never raises for an answer or
    a worker that cannot be reached."""
    url = base_url.rstrip("/") + ("/ready" if ready else "/health")
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=timeout_s, context=unverified) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    except (urllib.error.URLError, OSError) as err:
        reason = err.reason if isinstance(err, urllib.error.URLError) else err
        return HealthAnswer(False, f"unhealthy url={url} error={reason!s:.200}")
    verdict = "healthy" if status == 200 else "unhealthy"
    return HealthAnswer(status == 200, f"{verdict} url={url} http={status} status={_body_status(raw)}")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", default=None, help="the worker's base URL (default: its own, from the env)")
    p.add_argument("--ready", action="store_true", help="ask /ready instead of /health")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the answer")


def main(args: argparse.Namespace, out: TextIO, env: Mapping[str, str] | None = None) -> int:
    answer = check(args.url or default_url(os.environ if env is None else env), args.ready, args.timeout)
    print(answer.line, file=out)
    return 0 if answer.healthy else 1
