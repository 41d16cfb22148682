"""`continust kafka start|stop|status` on a broker of its own (another port than the suite's)."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
import uuid

import streams.kafka.local_kafka as local_kafka
from streams.kafka.local_kafka import LocalKafka, answers_requests


def cli(*args: str, port: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agents.cli", "kafka", *args, "--port", str(port)],
        capture_output=True,
        text=True,
        timeout=180,
        env=dict(os.environ),
    )


def test_start_is_idempotent_and_stop_stops_only_its_own_broker(kafka: str) -> None:
    port = int(kafka.rsplit(":", 1)[1]) + 100
    broker = LocalKafka.from_env(port=port)
    shutil.rmtree(broker.data_dir, ignore_errors=True)  # first start formats the storage
    try:
        assert cli("status", port=port).returncode == 3
        first = cli("start", port=port)
        assert first.returncode == 0
        assert "event=kafka.storage.format" in first.stderr and "event=kafka.ready" in first.stderr
        pid = broker.pid()
        assert pid is not None and answers_requests(broker.bootstrap)
        status = cli("status", port=port)
        assert status.returncode == 0 and "state=ready" in status.stdout
        again = cli("start", port=port)
        assert again.returncode == 0 and "event=kafka.running" in again.stderr
        assert "event=kafka.storage.format" not in again.stderr
        assert broker.pid() == pid
        assert (broker.data_dir / "meta.properties").exists()
        assert "Kafka Server started" in broker.log_file.read_text(errors="replace")
        assert cli("stop", port=port).returncode == 0
        assert broker.pid() is None and not broker.port_open()
        # the suite's broker on the other port is untouched
        assert answers_requests(kafka)
        assert "state=stopped" in cli("status", port=port).stdout
    finally:
        broker.stop()
        shutil.rmtree(broker.data_dir, ignore_errors=True)
        for path in (broker.config_file, broker.log_file, broker.pid_file):
            path.unlink(missing_ok=True)


def test_storage_formats_with_a_cluster_id_that_starts_with_a_dash(kafka, monkeypatch) -> None:
    """Cluster ids are URL-safe base64, so one in 64 starts with '-'; the storage tool must not
    read it as an option."""
    raw = bytes([0xFB]) + uuid.uuid4().bytes[1:]
    monkeypatch.setattr(local_kafka.uuid, "uuid4", lambda: uuid.UUID(bytes=raw))
    assert base64.urlsafe_b64encode(raw).decode().startswith("-")
    broker = LocalKafka.from_env(port=int(kafka.rsplit(":", 1)[1]) + 200)
    try:
        broker.write_config()
        broker.format_storage()
        meta = (broker.data_dir / "meta.properties").read_text()
        assert f"cluster.id={base64.urlsafe_b64encode(raw).decode().rstrip('=')}" in meta
    finally:
        shutil.rmtree(broker.data_dir, ignore_errors=True)
        broker.config_file.unlink(missing_ok=True)
