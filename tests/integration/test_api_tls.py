"""The API over TLS: two workers serve one self-signed certificate (made here with openssl); a
client that trusts it gets answers over https and plain http gets none; a point query of a key
the asked worker does not own is forwarded to its owner over TLS, the owner's certificate
verified against the worker's own one (the default trust anchor); with a CA that did not sign
it (``CONTINUST_API_TLS_CA``), the forwarded query fails verification (503, JSON)."""

from __future__ import annotations

import http.client
import ssl
import subprocess
import uuid
from pathlib import Path

import orjson
import pytest

from tests.integration.api_worker import TLS_PORTS, USERS, call, publish_clicks, write_pipeline
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


@pytest.mark.parametrize("trust", ["own-certificate", "another-ca"])
def test_two_tls_workers_answer_https_only_and_forward_over_verified_tls(
    kafka: str, tmp_path: Path, trust: str
) -> None:
    cert, key = self_signed(tmp_path)
    run_id = uuid.uuid4().hex[:8]
    pipeline = write_pipeline(kafka, tmp_path, run_id, partitions=2)
    env = {"CONTINUST_API_TLS_CERT": str(cert), "CONTINUST_API_TLS_KEY": str(key)}
    if trust == "another-ca":
        env["CONTINUST_API_TLS_CA"] = str(self_signed(tmp_path, "other")[0])
    workers = [spawn_worker(kafka, pipeline, port, tmp_path, env=env) for port in TLS_PORTS]
    try:
        publish_clicks(kafka, pipeline, run_id)
        trusting = ssl.create_default_context(cafile=str(cert))

        def https(worker: Worker, path: str) -> tuple[int, dict[str, str], bytes]:
            return call(f"https://127.0.0.1:{worker.port}{path}", context=trusting)

        def answers(user: str) -> list[tuple[int, dict[str, str], bytes]]:
            return [https(w, f"/api/tables/clicks_per_user/keys/{user}") for w in workers]

        def owner_answered(answer: tuple[int, dict[str, str], bytes]) -> bool:
            return answer[0] == 200 and bool(orjson.loads(answer[2])["windows"])

        def every_user_answered_by_both() -> bool:
            for worker in workers:
                if worker.proc.poll() is not None:
                    raise AssertionError(f"worker exited:\n{worker.log_tail()}")
            try:
                got = [answers(user) for user in USERS]
            except OSError:
                return False
            if trust == "own-certificate":
                return all(owner_answered(a) for both in got for a in both)
            # the owner answers; the other worker cannot verify the owner's certificate
            return all(sorted(map(owner_answered, both)) == [False, True] for both in got) and all(
                owner_unreachable(a) for both in got for a in both if not owner_answered(a)
            )

        wait_until(
            every_user_answered_by_both,
            120,
            f"both TLS workers to answer every user's window ({trust})",
            lambda: "\n".join(w.log_tail(15) for w in workers),
        )
        # each worker owns one of the two partitions, so one of the two answers for a key was
        # forwarded to the other worker over TLS
        owned = [set(orjson.loads(https(w, "/health")[2])["active_partitions"]) for w in workers]
        assert all(owned), owned
        if trust == "own-certificate":
            for user in USERS:
                first, second = answers(user)
                assert orjson.loads(first[2]) == orjson.loads(second[2])

        # plain http on a TLS port gets no HTTP answer; a client that does not trust the
        # certificate refuses it
        with pytest.raises((OSError, http.client.HTTPException)):
            call(f"http://127.0.0.1:{workers[0].port}/health")
        with pytest.raises(OSError, match="CERTIFICATE_VERIFY_FAILED"):
            call(f"https://127.0.0.1:{workers[0].port}/health", context=ssl.create_default_context())
        # without a token file the API is open, and the worker says so
        assert all(w.log_count("event=http.open") == 1 for w in workers)
    finally:
        stop_workers(workers)
