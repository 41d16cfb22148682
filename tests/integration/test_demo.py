"""``make demo``'s command on a broker of its own: the main job (examples/pipelines.toml) and
the Python example examples/big_purchases.py, each in its own worker fed by the demo's
generator. Both fill their windows, the Python pipeline's filter lets through only purchases over
10 EUR, and Ctrl-C stops everything the demo started, cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest

from bench.worker_api import metric_total
from streams.kafka.local_kafka import LocalKafka
from tests.integration.broker_io import free_port
from tests.integration.conftest import wait_until

ROOT = Path(__file__).parents[2]


def get(port: int, path: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, orjson.loads(r.read())
    except OSError:
        return 0, None


def windows(port: int, table: str) -> list[dict[str, Any]]:
    """Every window of ``table`` (every page of the scan); [] while the worker does not answer."""
    found: list[dict[str, Any]] = []
    cursor = ""
    while True:
        status, body = get(port, f"/api/tables/{table}/windows?limit=500{cursor}")
        if status != 200:
            return []
        found += body["windows"]
        if body["next_cursor"] is None:
            return found
        cursor = f"&cursor={body['next_cursor']}"


@pytest.mark.beside
def test_the_demo_runs_the_main_job_and_a_python_pipeline(own_broker: LocalKafka, tmp_path: Path) -> None:
    port = free_port()
    while free_port() == port + 1:  # the second worker listens on the port after the first
        pass
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agents.cli",
            "demo",
            "-c",
            str(ROOT / "examples/pipelines.toml"),
            "-c",
            str(ROOT / "examples/big_purchases.py"),
            "--port",
            str(port),
            "--rate",
            "150",
        ],
        cwd=tmp_path,  # the demo's data folder, .data/demo, is made here
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": own_broker.bootstrap},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    lines: list[str] = []
    reader = threading.Thread(
        target=lambda: lines.extend(raw.decode(errors="replace") for raw in iter(demo.stdout.readline, b"")),
        daemon=True,
    )
    reader.start()
    console = lambda: "".join(lines[-80:])  # noqa: E731
    try:
        wait_until(
            lambda: "the keys that spent most in one window" in "".join(lines),
            180,
            "the demo to show its top-N example",
            console,
        )
        main = wait_until(lambda: windows(port, "clicks_per_user"), 60, "the main job's windows", console)
        assert all(w["value"]["clicks"] >= 1 for w in main)
        big = wait_until(
            lambda: windows(port + 1, "big_purchases_per_minute"),
            60,
            "the Python pipeline's windows",
            console,
        )
        # the filter: every purchase a window counts is over 10 EUR
        assert all(w["value"]["spent"] > 10 * w["value"]["purchases"] > 0 for w in big), big
        status, catalog = get(port + 1, "/api/tables")
        assert status == 200
        (table,) = catalog["tables"]
        assert [op["kind"] for op in table["operators"]] == ["filter"]
        passed = metric_total(port + 1, "continust_operator_events_total", 'direction="out"')
        seen = metric_total(port + 1, "continust_operator_events_total", 'direction="in"')
        assert seen is not None and passed is not None and seen > passed > 0, (seen, passed)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGINT)
        code = demo.wait(timeout=90)
        reader.join(timeout=10)
    assert code == 0, console()
    stopped = next(line for line in lines if "event=demo.stopped" in line)
    assert "shop-analytics=0" in stopped and "big-purchases=0" in stopped, stopped
