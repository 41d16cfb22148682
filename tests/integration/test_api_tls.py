"""The API over TLS: two workers serve one self-signed certificate (made here with openssl); a
client that trusts it gets answers over https and plain http gets none; a point query of a key
the asked worker does not own is forwarded to its owner over TLS, the owner's certificate
verified against the worker's own one (the default trust anchor); with a CA that did not sign
it (``CONTINUST_API_TLS_CA``), the forwarded query fails verification (503, JSON). One pair of
workers shows both: one trusts the default anchor, the other is given another CA."""

from __future__ import annotations

import http.client
import ssl
import subprocess
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.integration.api_worker import USERS, call, publish_clicks, write_pipeline
from tests.integration.broker_io import free_port
from tests.integration.conftest import Worker, spawn_worker, stop_workers, wait_until


def self_signed(where: Path, name: str = "api") -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (in its subject alternative names) and its key, valid a day."""
    cert, key = where / f"{name}-cert.pem", where / f"{name}-key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-nodes", "-days", "1",
            "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-keyout", str(key), "-out", str(cert),
            "-subj", "/CN=continust test", "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def owner_unreachable(answer: tuple[int, dict[str, str], bytes]) -> bool:
    status, _, body = answer
    return (
        status == 503
        and b"CERTIFICATE_VERIFY_FAILED" in body
        and orjson.loads(body)["error"] == "owner_unreachable"
    )


def test_tls_workers_answer_https_only_and_forward_over_verified_tls(kafka: str, tmp_path: Path) -> None:
    """Worker ``trusting`` verifies its peer with the certificate both serve (the default);
    worker ``doubting`` with another CA (``CONTINUST_API_TLS_CA``). Each owns one of the two
    partitions: ``trusting`` answers every key, forwarding those of ``doubting``; ``doubting``
    answers its own keys and 503 for the others, whose owner's certificate it cannot verify."""
    cert, key = self_signed(tmp_path)
    run_id = uuid.uuid4().hex[:8]
    pipeline = write_pipeline(kafka, tmp_path, run_id, partitions=2)
    env = {"CONTINUST_API_TLS_CERT": str(cert), "CONTINUST_API_TLS_KEY": str(key)}
    other_ca = {"CONTINUST_API_TLS_CA": str(self_signed(tmp_path, "other")[0])}
    trusting = spawn_worker(kafka, pipeline, free_port(), tmp_path, env=env)
    doubting = spawn_worker(kafka, pipeline, free_port(), tmp_path, env={**env, **other_ca})
    workers = [trusting, doubting]
    try:
        client = ssl.create_default_context(cafile=str(cert))

        def https(worker: Worker, path: str) -> tuple[int, dict[str, str], bytes]:
            return call(f"https://127.0.0.1:{worker.port}{path}", context=client)

        def each_owns_a_partition() -> bool:
            try:
                owned = [orjson.loads(https(w, "/health")[2])["active_partitions"] for w in workers]
            except OSError:
                return False
            return all(any("-changelog:" in p for p in parts) for parts in owned)

        # the clicks come once the group has settled, so no partition moves with state to restore
        wait_until(each_owns_a_partition, 120, "each TLS worker to own a table partition")
        publish_clicks(kafka, pipeline, run_id)

        def windows(answer: tuple[int, dict[str, str], bytes]) -> Any:
            return orjson.loads(answer[2])["windows"] if answer[0] == 200 else None

        def settled() -> dict[str, Any] | None:
            for worker in workers:
                if worker.proc.poll() is not None:
                    raise AssertionError(f"worker exited:\n{worker.log_tail()}")
            try:
                got = {
                    user: [https(w, f"/api/tables/clicks_per_user/keys/{user}") for w in workers]
                    for user in USERS
                }
            except OSError:
                return None
            if not all(windows(first) for first, _ in got.values()):
                return None
            refused = [user for user, (_, second) in got.items() if owner_unreachable(second)]
            answered = [user for user, (first, second) in got.items() if windows(second) == windows(first)]
            both_owners = refused and answered and len(refused) + len(answered) == len(USERS)
            return got if both_owners else None

        wait_until(
            settled,
            120,
            "the trusting worker to answer every key and the doubting one its own keys only",
            lambda: "\n".join(w.log_tail(15) for w in workers),
        )

        # plain http on a TLS port gets no HTTP answer; a client that does not trust the
        # certificate refuses it
        with pytest.raises((OSError, http.client.HTTPException)):
            call(f"http://127.0.0.1:{trusting.port}/health")
        with pytest.raises(OSError, match="CERTIFICATE_VERIFY_FAILED"):
            call(f"https://127.0.0.1:{trusting.port}/health", context=ssl.create_default_context())
        # without a token file the API is open, and the worker says so
        assert all(w.log_count("event=http.open") == 1 for w in workers)
    finally:
        stop_workers(workers)
