"""Every route of a live worker's API checks its token as its OpenAPI document says: the
operations come from the served ``/api/openapi.json``, so routes added later are checked with no
change here. For an operation that declares a scope: no token or a wrong one answers 401 (JSON,
with ``WWW-Authenticate``), a token with another scope 403 (JSON), a token with the scope or
``admin`` gets past the check. An operation without security is open to anyone. A worker whose
token file is wrong refuses to start (exit status 2) and says what is wrong."""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from pathlib import Path
from typing import Any

import orjson

from agents.cli.worker_command import worker_argv
from streams.api.api_auth import IMPLIES
from streams.api.api_routes import SCOPES
from tests.integration.api_worker import USERS, ApiWorker, call, token_of, write_pipeline
from tests.integration.broker_io import free_port


def operations(document: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    """(method, path, scope) of every operation; scope ``None``: open to anyone."""
    found = []
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            security = operation["security"]
            scope = security[0]["bearer"][0] if security else None
            found.append((method.upper(), path, scope))
    return found


def concrete(path: str) -> str:
    """``path`` with its parameters filled in: a table and a key the worker holds, ``x`` for any
    other parameter."""
    known = path.replace("{table}", "clicks_per_user").replace("{key}", USERS[0])
    return re.sub(r"\{[^}]+\}", "x", known)


def ask(api_worker: ApiWorker, method: str, path: str, token: str | None) -> tuple[int, dict[str, str], Any]:
    """The status, headers and JSON body (``None`` when not JSON) of a request with ``token``;
    a streaming answer is not read past its head."""
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    if method in ("POST", "PUT", "PATCH"):
        headers["Content-Type"] = "application/json"
    status, got, body = call(api_worker.base_url + concrete(path), method, headers, stream=True)
    is_json = got.get("Content-Type", "").startswith("application/json")
    return status, got, orjson.loads(body) if is_json else None


def test_every_route_checks_its_scope_as_the_document_says(api_worker: ApiWorker) -> None:
    _, _, body = call(f"{api_worker.base_url}/api/openapi.json")
    listed = operations(orjson.loads(body))
    assert ("GET", "/api/tables/{table}/keys/{key}", "read") in listed
    assert {("GET", "/health", None), ("GET", "/api/openapi.json", None), ("GET", "/metrics", None)} <= set(
        listed
    )
    for method, path, scope in listed:
        where = f"{method} {path}"
        if scope is None:
            status, _, _ = ask(api_worker, method, path, None)
            assert status not in (401, 403), where
            continue
        for token in (None, "not-a-token-of-this-worker"):
            status, headers, answer = ask(api_worker, method, path, token)
            assert status == 401, (where, token, status)
            assert answer is not None and answer["error"] == "unauthorized", where
            assert headers.get("WWW-Authenticate", "").startswith("Bearer"), where
        other = next(s for s in SCOPES if scope not in IMPLIES[s])
        status, _, answer = ask(api_worker, method, path, token_of(other))
        assert status == 403 and answer is not None and answer["error"] == "forbidden", (where, other)
        assert set(answer) == {"error", "detail"}, where
        for allowed in (scope, "admin"):
            status, _, answer = ask(api_worker, method, path, token_of(allowed))
            assert status not in (401, 403), (where, allowed, answer)
    assert api_worker.worker.proc.poll() is None, api_worker.worker.log_tail()
    # a worker with a token file does not say the API is open (one without does: test_api_tls)
    assert api_worker.worker.log_count("event=http.open") == 0
    assert api_worker.worker.log_count(f"event=http.tokens tokens={len(SCOPES)} metrics=open") == 1


def test_a_long_key_and_a_long_header_get_json_answers_from_the_live_worker(api_worker: ApiWorker) -> None:
    read = {"Authorization": f"Bearer {token_of('read')}"}
    long_key = "k" * 20_000
    status, headers, body = call(
        f"{api_worker.base_url}/api/tables/clicks_per_user/keys/{long_key}", "GET", read
    )
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    answer = orjson.loads(body)
    assert (answer["table"], answer["key"], answer["windows"]) == ("clicks_per_user", long_key, [])
    status, headers, body = call(
        f"{api_worker.base_url}/api/tables/nope/keys/alice", "GET", {**read, "X-Long": "x" * 20_000}
    )
    assert status == 404 and orjson.loads(body)["error"] == "unknown_table"


def test_a_wrong_token_file_stops_the_worker_with_exit_status_2(kafka: str, tmp_path: Path) -> None:
    pipeline = write_pipeline(kafka, tmp_path, uuid.uuid4().hex[:8], partitions=1)
    tokens = tmp_path / "tokens.toml"
    tokens.write_text('[[tokens]]\nname = "ops"\ntoken = "short"\nscopes = ["admin"]\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTINUST_API_")}
    stopped = subprocess.run(
        worker_argv(pipeline, free_port(), tmp_path / "data"),
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, "KAFKA_BOOTSTRAP_SERVERS": kafka, "CONTINUST_API_TOKENS_FILE": str(tokens)},
    )
    assert stopped.returncode == 2, stopped.stderr[-2000:]
    assert f"token file {tokens}" in stopped.stderr and "16+ characters" in stopped.stderr
