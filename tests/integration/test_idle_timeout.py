"""``idle_timeout`` on the real broker: once a partition has received nothing for that long, its
stream time follows the wall clock, so the last window of a quiet stream closes and its final
record is committed although no input arrives. A table without it keeps that window open."""

from __future__ import annotations

import time
from pathlib import Path

import orjson

from streams.kafka.topic_admin import ensure_topics
from tests.integration.broker_io import free_port, publish, read_all
from tests.integration.conftest import run, wait_until

PIPELINE = """
[app]
id = "{app_id}"
commit_interval = "200ms"

[[source]]
name = "pings"
topics = ["{src}"]
key = "host"
timestamp = "ts"

[[table]]
name = "idle"
source = "pings"
window = {{ type = "tumbling", size = "2s", retention = "1h" }}
aggregate = {{ n = "count()" }}
emit = "final"
idle_timeout = "3s"
output = "{src}-idle"

[[table]]
name = "strict"
source = "pings"
window = {{ type = "tumbling", size = "2s" }}
aggregate = {{ n = "count()" }}
emit = "final"
output = "{src}-strict"
"""


def test_a_quiet_partition_closes_its_last_window(kafka, run_id, start_worker, tmp_path: Path):
    app_id, src = f"idle-{run_id}", f"pings-{run_id}"
    run(ensure_topics(kafka, {src: 1}))
    pipeline = tmp_path / "pipelines.toml"
    pipeline.write_text(PIPELINE.format(app_id=app_id, src=src))
    worker = start_worker(pipeline, free_port())

    def ready() -> bool:
        if worker.proc.poll() is not None:
            raise AssertionError(f"worker exited:\n{worker.log_tail()}")
        try:
            return bool(worker.get("/health")[1]["active_partitions"])
        except OSError:
            return False

    wait_until(ready, 120, "the worker", worker.log_tail)
    now = int(time.time() * 1000)
    start = now - now % 2_000 - 4_000  # three windows: [start, +2s), [+2s, +4s), [+4s, +6s)
    stamps = [start + 100, start + 1_900, start + 2_500, start + 4_000, start + 4_100]
    run(publish(kafka, [(src, b"h1", orjson.dumps({"host": "h1", "ts": ts})) for ts in stamps]))

    # Events close the first two windows; only the idle timeout can close the third.
    strict = run(read_all(kafka, f"{src}-strict", 2, timeout=30))
    assert [(orjson.loads(r.value)["start"], orjson.loads(r.value)["value"]) for r in strict] == [
        (start, {"n": 2}),
        (start + 2_000, {"n": 1}),
    ]
    idle = run(read_all(kafka, f"{src}-idle", 3, timeout=30))
    assert [(orjson.loads(r.value)["start"], orjson.loads(r.value)["value"]) for r in idle] == [
        (start, {"n": 2}),
        (start + 2_000, {"n": 1}),
        (start + 4_000, {"n": 2}),
    ]
    assert "event=table.idle_advance" in worker.log.read_text()
    # The quiet stream's last window stays open in the strict table.
    body = worker.get("/api/tables/strict/keys/h1")[1]
    assert [(w["start"], w["closed"]) for w in body["windows"]] == [(start + 4_000, False)]
    body = worker.get("/api/tables/idle/keys/h1")[1]
    assert [(w["start"], w["closed"], w["version"]) for w in body["windows"]] == [
        (start + i * 2_000, True, 1) for i in range(3)
    ]
