"""``continust health`` against the worker's own ``/health`` and ``/ready`` routes served by
Faust's aiohttp server in process: exit 0 on 200, 1 on any other answer or no answer, one line
of output, the default URL taken from the worker's environment, and no Faust loaded."""

from __future__ import annotations

import asyncio
import io
import socket
import subprocess
import sys
from typing import Any

import faust
import pytest
from aiohttp.test_utils import TestServer

from agents.cli.commands import parser
from agents.readiness import decide
from streams.api.http_api import register_http_api
from streams.cli.health_command import default_url
from streams.cli.health_command import main as health_main
from tests.unit.test_health_rules import CHANGELOG, Worker


def closed_port() -> int:
    """A local port nothing listens on (bound once, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_health(argv: list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    args = parser().parse_args(["health", *argv])
    out = io.StringIO()
    code = health_main(args, out, env if env is not None else {})
    return code, out.getvalue()


def against_worker(worker: Worker, steps: list[Any]) -> list[tuple[int, str]]:
    """Run ``continust health`` argv steps against a served worker; a callable step changes it."""

    async def run() -> list[tuple[int, str]]:
        app = faust.App("health-command-test", web_router_enabled=False, web_tables_enabled=False)
        register_http_api(app, worker)
        app.web.init_server()
        got: list[tuple[int, str]] = []
        async with TestServer(app.web.web_app, host="127.0.0.1") as server:
            url = f"http://127.0.0.1:{server.port}"
            for step in steps:
                if callable(step):
                    step()
                else:
                    got.append(await asyncio.to_thread(run_health, ["--url", url, *step]))
        return got

    return asyncio.run(run())


def test_it_exits_0_on_200_and_1_on_503_with_one_line() -> None:
    worker = Worker()

    def wedged() -> None:
        worker.health_body = {"status": "wedged", "reason": "no progress"}

    def restored() -> None:
        worker.ready_body = decide(True, 1, False, False, {CHANGELOG: 0}).body()

    alive, recovering, ready, dead = against_worker(
        worker, [[], ["--ready"], restored, ["--ready"], wedged, []]
    )
    assert alive[0] == 0 and alive[1].startswith("healthy ") and "/health http=200 status=ok" in alive[1]
    assert recovering[0] == 1 and "/ready http=503 status=recovering" in recovering[1]
    assert ready[0] == 0 and "/ready http=200 status=ready" in ready[1]
    assert dead[0] == 1 and "/health http=503 status=wedged" in dead[1]
    assert all(line.count("\n") == 1 for _, line in (alive, recovering, ready, dead))


def test_a_worker_that_cannot_be_reached_is_unhealthy() -> None:
    port = closed_port()
    code, line = run_health(["--url", f"http://127.0.0.1:{port}", "--ready"])
    assert code == 1 and line.startswith("unhealthy ") and "/ready" in line and "refused" in line


@pytest.mark.parametrize(
    ("env", "url"),
    [
        ({}, "http://127.0.0.1:6066"),
        ({"CONTINUST_WEB_HOST": "0.0.0.0", "CONTINUST_WEB_PORT": "7001"}, "http://127.0.0.1:7001"),
        ({"CONTINUST_WEB_HOST": "10.1.2.3"}, "http://10.1.2.3:6066"),
        (
            {"CONTINUST_WEB_HOST": "continust-0.continust-peers", "CONTINUST_WEB_BIND": "0.0.0.0"},
            "http://127.0.0.1:6066",
        ),
        ({"CONTINUST_WEB_HOST": "fd00::7"}, "http://[fd00::7]:6066"),
        ({"CONTINUST_API_TLS_CERT": "/tls/cert.pem"}, "https://127.0.0.1:6066"),
    ],
)
def test_the_default_url_is_the_workers_own_address_from_its_environment(
    env: dict[str, str], url: str
) -> None:
    assert default_url(env) == url


def test_the_command_line_runs_it_without_loading_faust() -> None:
    port = closed_port()
    program = (
        "import sys\n"
        "from agents.cli import main\n"
        f"code = main(['health', '--url', 'http://127.0.0.1:{port}'])\n"
        "print('faust' in sys.modules, code)\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    lines = done.stdout.splitlines()
    assert lines[-1] == "False 1", done.stdout + done.stderr
    assert len(lines) == 2 and lines[0].startswith("unhealthy ")
