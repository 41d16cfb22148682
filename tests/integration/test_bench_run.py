"""``python -m bench`` end to end on the real broker: a small run of the raw consumer and of
continust (coalesced updates, state only read back over HTTP, final emission, and repartitioned
from a random-keyed backlog), with a latency measurement, must finish, check every result
correct and write its report and chart. Events 10 ms apart, so the 30 s of event time close
windows for the final-emission check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONTENDERS = (
    "limit",
    "continust-tumbling",
    "continust-tumbling-state",
    "continust-tumbling-final",
    "continust-tumbling-repartition",
)


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
        "--event-spacing-ms",
        "10",
        "--contenders",
        ",".join(CONTENDERS),
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
    for name in CONTENDERS:
        row = next(line for line in report.splitlines() if line.startswith(f"| {name} |"))
        assert "FAILED" not in row and "TIMEOUT" not in row and "CRASHED" not in row, row
    assert "random keys" in next(
        line for line in report.splitlines() if line.startswith("| continust-tumbling-repartition |")
    )
    latency = next(line for line in report.splitlines() if line.startswith("| continust-tumbling | 500/s"))
    reflected, produced = latency.strip(" |").rsplit("|", 1)[1].strip().split(" of ")
    assert reflected == produced and int(produced.replace(",", "")) > 0, latency
    assert out.with_suffix(".png").stat().st_size > 0


def test_a_small_query_scale_run_checks_its_top_n_and_writes_its_section(kafka, tmp_path: Path):
    """``python -m bench.query_scale`` checks its first top-N answers against the backlog's and
    fails otherwise; every kind of query must have been answered without error."""
    out = tmp_path / "benchmarks.md"
    argv = [
        sys.executable,
        "-m",
        "bench.query_scale",
        "--keys",
        "600",
        "--partitions",
        "3",
        "--clients",
        "4",
        "--seconds",
        "1",
        "--rate",
        "200",
        "--port",
        kafka.rsplit(":", 1)[1],
        "--out",
        str(out),
    ]
    done = subprocess.run(argv, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = out.read_text()
    assert "## Top-N and scans at scale" in report
    for kind in ("top", "top, one window", "scan page"):
        row = next(line for line in report.splitlines() if line.startswith(f"| {kind} |"))
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert int(cells[1].replace(",", "")) > 0 and cells[6] == "0", row
