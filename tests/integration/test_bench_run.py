"""``python -m bench`` end to end on the real broker: a small run of the raw consumer and of
continust (partitioned by key, and repartitioned), with a latency measurement, must finish,
check every result correct and write its report and chart."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def test_a_small_bench_run_checks_every_contender_and_writes_its_report(kafka, tmp_path: Path):
    out = tmp_path / "benchmarks.md"
    argv = [
        sys.executable,
        "-m",
        "bench",
        "--events",
        "3000",
        "--keys",
        "50",
        "--partitions",
        "2",
        "--repetitions",
        "1",
        "--contenders",
        "limit,continust-tumbling,continust-tumbling-repartition",
        "--latency-contenders",
        "continust-tumbling",
        "--latency-rate",
        "500",
        "--latency-seconds",
        "2",
        "--latency-drain",
        "30",
        "--port",
        kafka.rsplit(":", 1)[1],
        "--out",
        str(out),
        "--workdir",
        str(tmp_path / "work"),
    ]
    done = subprocess.run(argv, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = out.read_text()
    for name in ("limit", "continust-tumbling", "continust-tumbling-repartition"):
        row = next(line for line in report.splitlines() if line.startswith(f"| {name} |"))
        assert "FAILED" not in row and "timeout" not in row, row
    latency = next(line for line in report.splitlines() if line.startswith("| continust-tumbling | 500/s"))
    reflected, produced = latency.strip(" |").rsplit("|", 1)[1].strip().split(" of ")
    assert reflected == produced and int(produced.replace(",", "")) > 0, latency
    assert out.with_suffix(".png").stat().st_size > 0
