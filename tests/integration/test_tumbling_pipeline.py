"""End to end on the real broker: events published to two topics are merged, repartitioned and
aggregated by two workers; HTTP answers from either worker and the output topic read with
read_committed equal a reference computed here; invalid events reach the dead-letter topic."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.kafka.partitioning import key_partition
from streams.kafka.topic_admin import ensure_topics
from tests.integration.broker_io import (
    free_port,
    group_offsets,
    open_transactions,
    publish,
    read_all,
    read_to_end,
    settled,
)
from tests.integration.conftest import run, wait_until

SIZE, GRACE = 60_000, 300_000
USERS = ["alice", "bob", "carol", "dave", "erin", "frank"]
PIPELINE = """
[app]
id = "{app_id}"
commit_interval = "200ms"
processing_guarantee = "{guarantee}"

[[source]]
name = "clicks"
topics = ["{web}", "{app}"]
key = "user"
timestamp = "ts"
late_topic = "{late}"
idle_after = "1s"

[[table]]
name = "clicks_per_user"
source = "clicks"
window = {{ type = "tumbling", size = "1m", grace = "5m", retention = "1h" }}
aggregate = {{ clicks = "count()", spent = "sum(amount)", biggest = "max(amount)" }}
emit = "update"
output = "{out}"
"""


def diagnose(workers: list[Any], bootstrap: str = "", topics: list[str] | None = None) -> str:
    """Each worker's counters and the partitions with open transactions, for a failure message."""
    lines = []
    if topics:
        lines.append(
            f"open transactions (high watermark, last stable offset): "
            f"{run(open_transactions(bootstrap, topics))}"
        )
    for w in workers:
        try:
            with urllib.request.urlopen(w.url("/metrics"), timeout=10) as r:
                counters = [
                    x
                    for x in r.read().decode().splitlines()
                    if x.startswith("continust_") and "_created" not in x
                ]
        except OSError as exc:
            counters = [repr(exc)]
        lines.append(f"worker {w.port}: " + "; ".join(counters))
    return "\n".join(lines)


def reference(events: list[tuple[str, int, float]]) -> dict[str, list[dict[str, Any]]]:
    """Windows per user from accepted events (the test publishes no late event except the one
    it checks separately), with closed flags from the stream time every table partition has
    once all source partitions are idle: the largest event time of all (every source partition
    feeds every table partition). ``version`` is the number of changes: ``emit = "update"``
    emits at most that many records."""
    by_window: dict[tuple[str, int], list[float]] = defaultdict(list)
    for user, ts, amount in events:
        by_window[(user, ts - ts % SIZE)].append(amount)
    stream_time = max(ts for _user, ts, _amount in events)
    answer: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for (user, start), amounts in sorted(by_window.items()):
        answer[user].append(
            {
                "start": start,
                "end": start + SIZE,
                "closed": stream_time >= start + SIZE + GRACE,
                "value": {"clicks": len(amounts), "spent": sum(amounts), "biggest": max(amounts)},
                "version": len(amounts),
            }
        )
    return answer


Outputs = tuple[dict[tuple[str, int], list[int]], dict[tuple[str, int], dict[str, Any]]]


def read_outputs(bootstrap: str, topic: str, partitions: int = 3) -> Outputs:
    """The committed output records: per (key, window start) the versions in offset order, and
    the last record."""
    versions: dict[tuple[str, int], list[int]] = defaultdict(list)
    last: dict[tuple[str, int], dict[str, Any]] = {}
    for partition, records in run(read_to_end(bootstrap, topic)).items():
        for record in records:
            value = orjson.loads(record.value)
            assert record.key == value["key"].encode()
            assert partition == key_partition(record.key, partitions), "output not co-partitioned"
            versions[(value["key"], value["start"])].append(value["version"])
            last[(value["key"], value["start"])] = value
    return versions, last


def outputs_agree(outputs: Outputs, expected: dict[str, list[dict[str, Any]]]) -> bool:
    """Whether every window's last record carries the reference value."""
    _versions, last = outputs
    return all(
        (user, w["start"]) in last and last[(user, w["start"])]["value"] == w["value"]
        for user, windows in expected.items()
        for w in windows
    )


def check_outputs(
    outputs: Outputs, expected: dict[str, list[dict[str, Any]]]
) -> dict[str, list[dict[str, Any]]]:
    """Per window: versions 1..n in order, no gap and no repeat, at most one per change, and the
    last record equal to the reference. Returns the reference with the emitted versions, as the
    HTTP API answers it."""
    versions, last = outputs
    assert set(last) == {(user, w["start"]) for user, windows in expected.items() for w in windows}
    answer: dict[str, list[dict[str, Any]]] = {}
    for user, windows in expected.items():
        answer[user] = []
        for w in windows:
            seen = versions[(user, w["start"])]
            assert seen == list(range(1, len(seen) + 1)), f"{user} {w['start']}: versions {seen}"
            assert len(seen) <= w["version"], "more records than changes"
            got = last[(user, w["start"])]
            assert (got["end"], got["value"]) == (w["end"], w["value"])
            answer[user].append({**w, "version": seen[-1]})
    return answer


@pytest.mark.parametrize("guarantee", ["exactly_once", "at_least_once"])
def test_merged_topics_two_workers_http_and_read_committed_output(
    kafka, run_id, start_worker, tmp_path: Path, guarantee: str
):
    app_id, web, app, out = f"it-{run_id}", f"web-{run_id}", f"app-{run_id}", f"out-{run_id}"
    run(ensure_topics(kafka, {web: 3, app: 2}))
    pipeline = tmp_path / "pipelines.toml"
    pipeline.write_text(
        PIPELINE.format(app_id=app_id, web=web, app=app, out=out, late=f"late-{run_id}", guarantee=guarantee)
    )

    workers = [start_worker(pipeline, free_port()), start_worker(pipeline, free_port())]
    repartition = f"{app_id}-clicks-repartition"

    def owned() -> list[set[str]] | None:
        sets = []
        for w in workers:
            if w.proc.poll() is not None:
                raise AssertionError(f"worker exited:\n{w.log_tail()}")
            try:
                _status, body = w.get("/health")
            except OSError:
                return None
            sets.append({p for p in body["active_partitions"] if p.startswith(repartition)})
        both = all(sets) and set.union(*sets) == {f"{repartition}:{i}" for i in range(3)}
        return sets if both else None

    wait_until(
        owned,
        120,
        "both workers to own repartition partitions",
        lambda: "\n".join(w.log_tail() for w in workers),
    )

    t0 = (int(time.time() * 1000) - 3_600_000) // SIZE * SIZE
    events = []
    records: list[tuple[str, bytes | None, bytes]] = []
    for i in range(120):
        user, ts, amount = USERS[i % 6], t0 + (i * 1_700) % 180_000, ((i * 37) % 50) / 2 + 0.5
        events.append((user, ts, amount))
        payload = {"user": user, "ts": ts, "amount": amount, "page": "/product"}
        records.append((web if i % 2 == 0 else app, user.encode(), orjson.dumps(payload)))
    records += [
        (web, None, b"{oops"),
        (app, None, orjson.dumps({"ts": t0, "amount": 1.0})),
        (web, b"bob", orjson.dumps({"user": "bob", "ts": t0, "amount": "lots"})),
    ]
    run(publish(kafka, records))
    expected = reference(events)
    wait_until(
        lambda: outputs_agree(read_outputs(kafka, out), expected),
        60,
        "the output records to reach the reference",
        lambda: diagnose(workers, kafka, [web, app, repartition, out, f"{app_id}-clicks_per_user-changelog"]),
    )
    check_outputs(read_outputs(kafka, out), expected)

    # Phase 2: alice's stream time moves 10 minutes on; then an event for her first window is late.
    advance = ("alice", t0 + 600_000, 1.0)
    events.append(advance)
    run(
        publish(
            kafka,
            [
                (web, b"alice", orjson.dumps({"user": "alice", "ts": advance[1], "amount": 1.0})),
                (web, b"alice", orjson.dumps({"user": "alice", "ts": t0 + 30_000, "amount": 100.0})),
            ],
        )
    )
    expected = reference(events)
    wait_until(lambda: outputs_agree(read_outputs(kafka, out), expected), 60, "the advancing event's record")
    # Output topic, read_committed: per window versions 1..n, no gap, no repeat; last = reference.
    expected = check_outputs(read_outputs(kafka, out), expected)

    # HTTP: both workers answer every key the same, whichever owns it, once every input is idle.
    wait_until(
        lambda: settled(kafka, app_id, [web, app, repartition], 5),
        60,
        "every source partition to be reported idle",
        lambda: diagnose(workers),
    )

    def late_events() -> float:
        total = 0.0
        for w in workers:
            with urllib.request.urlopen(w.url("/metrics"), timeout=10) as r:
                for line in r.read().decode().splitlines():
                    if line.startswith("continust_late_events_total{"):
                        total += float(line.rsplit(" ", 1)[1])
        return total

    wait_until(lambda: late_events() == 1.0, 30, "the late event to be counted")
    for user in USERS:
        for w in workers:
            status, body = w.get(f"/api/tables/clicks_per_user/keys/{user}")
            assert status == 200
            shown = {k: body[k] for k in ("table", "key", "windows")}
            assert shown == {"table": "clicks_per_user", "key": user, "windows": expected[user]}, (
                f"worker {w.port} answered {body} for {user} (partition {key_partition(user.encode(), 3)}); "
                f"health: {[x.get('/health') for x in workers]}"
            )

    status, body = workers[0].get(
        f"/api/tables/clicks_per_user/keys/alice?from={t0 + 60_000}&to={t0 + 120_000}"
    )
    assert [w["start"] for w in body["windows"]] == [t0 + 60_000]
    status, body = workers[1].get(
        f"/api/tables/clicks_per_user/keys/alice?from={t0 + 59_999}&to={t0 + 60_001}"
    )
    assert [w["start"] for w in body["windows"]] == [t0, t0 + 60_000]
    assert workers[0].get("/api/tables/nope/keys/alice")[0] == 404
    assert workers[0].get("/api/tables/nope/keys/alice")[1]["error"] == "unknown_table"
    status, body = workers[1].get("/api/tables/clicks_per_user/keys/nobody")
    assert (status, body["table"], body["key"], body["windows"]) == (200, "clicks_per_user", "nobody", [])
    status, body = workers[0].get("/api/tables/clicks_per_user/keys/alice?from=yesterday")
    assert status == 400 and body["error"] == "bad_query"
    # Faust's own views are not served, and every error is JSON, on any path and method
    for path in ("/router/", "/router/anything/", "/table/", "/table/clicks_per_user/alice/", "/graph/"):
        assert workers[0].get(path) == (404, {"error": "not_found", "detail": "Not Found"}), path
    request = urllib.request.Request(
        workers[0].url("/api/tables/clicks_per_user/keys/alice"), method="DELETE"
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 405
    assert orjson.loads(refused.value.read())["error"] == "method_not_allowed"

    # The late event, unchanged, in the late topic, with the table and the times that made it late.
    late = run(read_all(kafka, f"late-{run_id}", 1))
    assert len(late) == 1
    assert orjson.loads(late[0].value) == {"user": "alice", "ts": t0 + 30_000, "amount": 100.0}
    assert dict(late[0].headers) == {
        "continust-reason": b"late",
        "continust-table": b"clicks_per_user",
        "continust-event-time": str(t0 + 30_000).encode(),
        "continust-stream-time": str(t0 + 600_000).encode(),
    }

    # Dead letters: each invalid record once, with its reason.
    letters = run(read_all(kafka, f"{app_id}-dead-letters", 3))
    reasons = sorted(dict(r.headers)["continust-reason"].decode() for r in letters)
    assert reasons == ["invalid_field", "missing_key", "not_json"]
    assert {r.value for r in letters} >= {b"{oops"}

    # Every line of the workers' logs names the app and the worker, and no produce was retried
    # for lack of in-sync replicas: the internal topics take the broker's replication defaults.
    for w in workers:
        text = w.log.read_text(errors="replace")
        assert "NotEnoughReplicas" not in text, w.log_tail()
        lines = [line for line in text.splitlines() if line.startswith("ts=")]
        named = f" app={app_id} worker=127.0.0.1:{w.port} "
        assert lines and all(named in line for line in lines), [line for line in lines if named not in line][
            :3
        ]


def test_a_restarted_worker_recovers_its_state_and_continues(kafka, run_id, start_worker, tmp_path: Path):
    """Stop the worker (SIGTERM) mid-stream and start it on the same data directory: recovery
    passes its consistency check, and windows and versions continue where they stopped."""
    app_id, web, app, out = f"rs-{run_id}", f"web-{run_id}", f"app-{run_id}", f"out-{run_id}"
    run(ensure_topics(kafka, {web: 2, app: 2}))
    pipeline = tmp_path / "pipelines.toml"
    pipeline.write_text(
        PIPELINE.format(
            app_id=app_id, web=web, app=app, out=out, late=f"late-{run_id}", guarantee="exactly_once"
        )
    )
    port = free_port()
    t0 = (int(time.time() * 1000) - 3_600_000) // SIZE * SIZE
    events = [(USERS[i % 3], t0 + (i * 7_000) % 120_000, float(i % 7)) for i in range(60)]

    def records(part: list[tuple[str, int, float]]) -> list[tuple[str, bytes | None, bytes]]:
        return [
            (web if i % 2 else app, u.encode(), orjson.dumps({"user": u, "ts": ts, "amount": a}))
            for i, (u, ts, a) in enumerate(part)
        ]

    def ready(worker: Any) -> bool:
        if worker.proc.poll() is not None:
            raise AssertionError(f"worker exited:\n{worker.log_tail()}")
        try:
            return worker.get(f"/api/tables/clicks_per_user/keys/{USERS[0]}")[0] == 200 and bool(
                worker.get("/health")[1]["active_partitions"]
            )
        except OSError:
            return False

    first = start_worker(pipeline, port)
    wait_until(lambda: ready(first), 120, "the worker", first.log_tail)
    run(publish(kafka, records(events[:30])))
    wait_until(
        lambda: outputs_agree(read_outputs(kafka, out, 2), reference(events[:30])), 60, "the first outputs"
    )
    first.proc.terminate()
    assert first.proc.wait(timeout=60) == 0
    # A clean stop commits everything it read: the group's offsets are at the end of its inputs.
    committed, ends = run(group_offsets(kafka, app_id, [web, app]))
    assert committed == ends, f"committed {committed} != end offsets {ends}"

    second = start_worker(pipeline, port)
    wait_until(lambda: ready(second), 120, "the restarted worker", second.log_tail)
    run(publish(kafka, records(events[30:])))
    expected = reference(events)
    wait_until(
        lambda: outputs_agree(read_outputs(kafka, out, 2), expected),
        60,
        "the outputs",
        lambda: diagnose([second]),
    )
    answer = check_outputs(read_outputs(kafka, out, 2), expected)
    for user in USERS[:3]:
        assert second.get(f"/api/tables/clicks_per_user/keys/{user}")[1]["windows"] == [
            {**w, "closed": False} for w in answer[user]
        ]
