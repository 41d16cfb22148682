"""A worker whose HTTP API the contract tests call: a small pipeline (one source, one windowed
table with an output topic), some events so the table holds windows, and a token file with one
token per scope. The worker is shared by the API's contract and auth tests (the session fixture
``api_worker`` in ``conftest.py``)."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from streams.api.api_routes import SCOPES
from streams.kafka.topic_admin import ensure_topics
from tests.integration.broker_io import free_port, publish
from tests.integration.conftest import Worker, run, spawn_worker, stop_workers, wait_until

USERS = ("alice", "bob", "carol")
PIPELINE = """
[app]
id = "{app_id}"
commit_interval = "200ms"

[[source]]
name = "clicks"
topics = ["{topic}"]
key = "user"
timestamp = "ts"

[[table]]
name = "clicks_per_user"
source = "clicks"
window = {{ type = "tumbling", size = "1m", grace = "5m", retention = "1h" }}
aggregate = {{ clicks = "count()", spent = "sum(amount)" }}
emit = "update"
output = "{output}"
"""


def token_of(scope: str) -> str:
    """The secret of the test token that has ``scope`` (one token per scope)."""
    return f"{scope}-token-for-the-contract-tests"


def token_file(where: Path) -> Path:
    path = where / "tokens.toml"
    path.write_text(
        "".join(
            f'[[tokens]]\nname = "{scope}"\ntoken = "{token_of(scope)}"\nscopes = ["{scope}"]\n\n'
            for scope in SCOPES
        )
    )
    return path


def write_pipeline(kafka: str, where: Path, run_id: str, partitions: int = 2) -> Path:
    """The pipeline file, its input topic created with ``partitions`` partitions."""
    topic, output = f"api-in-{run_id}", f"api-out-{run_id}"
    run(ensure_topics(kafka, {topic: partitions}))
    path = where / "pipelines.toml"
    path.write_text(PIPELINE.format(app_id=f"api-{run_id}", topic=topic, output=output))
    return path


def publish_clicks(kafka: str, pipeline: Path, run_id: str) -> int:
    """Publish a few clicks of every user an hour ago; the start (epoch ms) of their window."""
    start = (int(time.time() * 1000) - 3_600_000) // 60_000 * 60_000
    records = [
        (f"api-in-{run_id}", user.encode(), orjson.dumps({"user": user, "ts": start + i, "amount": 1.5}))
        for i in range(3)
        for user in USERS
    ]
    run(publish(kafka, records))
    return start


@dataclass
class ApiWorker:
    worker: Worker
    #: the start (epoch ms) of the window every user's clicks are in
    window_start: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.worker.port}"


def call(
    url: str,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    stream: bool = False,
    context: Any = None,
) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of one request (an error status is an answer, not a raise);
    ``stream``: the body of a successful ``text/event-stream`` answer is not read (it never
    ends), ``b""`` instead."""
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as reply:
            streaming = reply.headers.get("Content-Type", "").startswith("text/event-stream")
            return reply.status, dict(reply.headers), b"" if stream and streaming else reply.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def start_api_worker(kafka: str, where: Path, run_id: str) -> ApiWorker:
    """The worker with a token file, once its table answers every user's window."""
    port = free_port()
    pipeline = write_pipeline(kafka, where, run_id)
    worker = spawn_worker(
        kafka, pipeline, port, where, env={"CONTINUST_API_TOKENS_FILE": str(token_file(where))}
    )
    start = publish_clicks(kafka, pipeline, run_id)
    admin = {"Authorization": f"Bearer {token_of('admin')}"}

    def answered() -> bool:
        if worker.proc.poll() is not None:
            raise AssertionError(f"worker exited:\n{worker.log_tail()}")
        try:
            for user in USERS:
                status, _, body = call(
                    f"http://127.0.0.1:{port}/api/tables/clicks_per_user/keys/{user}", headers=admin
                )
                if status != 200 or not orjson.loads(body)["windows"]:
                    return False
        except OSError:
            return False
        return True

    try:
        wait_until(answered, 120, "the API worker to answer every user's window", worker.log_tail)
    except BaseException:
        stop_workers([worker])
        raise
    return ApiWorker(worker=worker, window_start=start)
