"""A real Prometheus server for tests (Debian's ``prometheus`` binary, installed by `make
test`): it scrapes one worker every second and evaluates the project's alert rules every second,
on a free port with its own storage under a temporary folder; read through its HTTP API."""

from __future__ import annotations

import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml

from tests.integration.broker_io import free_port
from tests.monitoring_files import ALERTS


@dataclass
class PrometheusServer:
    """A running Prometheus process; :meth:`stop` ends it."""

    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(cls, worker_port: int, where: Path) -> PrometheusServer:
        """Scrape ``127.0.0.1:<worker_port>/metrics`` as job ``continust`` with the alert rules
        loaded; config, storage and log in ``where``."""
        binary = shutil.which("prometheus")
        if binary is None:
            raise AssertionError("prometheus is missing: `make prometheus` installs it")
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(ALERTS)],
            "scrape_configs": [
                {"job_name": "continust", "static_configs": [{"targets": [f"127.0.0.1:{worker_port}"]}]}
            ],
        }
        where.mkdir(parents=True, exist_ok=True)
        (where / "prometheus.yml").write_text(yaml.safe_dump(config))
        port, log = free_port(), where / "prometheus.log"
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={where / 'prometheus.yml'}",
                f"--storage.tsdb.path={where / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        return cls(port=port, proc=proc, log=log)

    def api(self, path: str, **params: str) -> Any:
        """The ``data`` of a successful answer of ``/api/v1/<path>``; raises otherwise (an
        ``OSError`` while the server is not up yet, an ``AssertionError`` for an error)."""
        if self.proc.poll() is not None:
            raise AssertionError(f"prometheus exited:\n{self.log_tail()}")
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}{query}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                body = orjson.loads(response.read())
        except urllib.error.HTTPError as exc:
            body = orjson.loads(exc.read())
        assert body["status"] == "success", f"{path} {params}: {body}"
        return body["data"]

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
