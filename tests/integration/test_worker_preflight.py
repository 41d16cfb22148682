"""A worker refuses to start, with one clear line and exit status 2, when its topics are wrong."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from streams.kafka.topic_admin import ensure_topics
from tests.integration.conftest import run

PIPELINE = """
[app]
id = "pf-{run_id}"

[[source]]
name = "clicks"
topics = ["in-{run_id}"]
key = "user"

[[table]]
name = "per_user"
source = "clicks"
window = {{ type = "tumbling", size = "1m" }}
aggregate = {{ n = "count()" }}
output = "out-{run_id}"
"""


def worker(kafka: str, pipeline: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "agents.cli",
            "worker",
            "-c",
            str(pipeline),
            "--data-dir",
            str(pipeline.parent / "data"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka},
    )


def test_missing_input_topics_and_a_mispartitioned_output_topic(
    kafka: str, run_id: str, tmp_path: Path
) -> None:
    pipeline = tmp_path / "pipelines.toml"
    pipeline.write_text(PIPELINE.format(run_id=run_id))

    missing = worker(kafka, pipeline)
    assert missing.returncode == 2
    assert f"in-{run_id} do not exist" in missing.stderr and str(pipeline) in missing.stderr

    run(ensure_topics(kafka, {f"in-{run_id}": 3, f"out-{run_id}": 2}))
    mispartitioned = worker(kafka, pipeline)
    assert mispartitioned.returncode == 2
    assert f"output topic 'out-{run_id}' has 2 partitions but source 'clicks' has 3" in mispartitioned.stderr
