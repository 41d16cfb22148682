"""HTTP ingest on the real broker, one worker with a token file: what the route answers is what a
read_committed consumer reads back (same keys, values, partitions and offsets), the position
tokens name those places, bad requests get their 4xx with a JSON body, and ``continust produce``
writes a whole file."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson

from streams.api.positions import PositionToken, WrittenAt
from streams.kafka.partitioning import key_partition
from streams.kafka.topic_admin import ensure_topics
from tests.integration.broker_io import free_port, read_to_end
from tests.integration.conftest import run, wait_until

#: this module's worker HTTP ports
KEYED = 3  # the source's keyed partitions: its largest topic's
RATE = 50
MAX_BYTES = 64 * 1024
SECRETS = {
    "writer": "writer-secret-0123456789",
    "reader": "reader-secret-0123456789",
    "burst": "burst-secret-01234567890",
    "loader": "loader-secret-0123456789",
}
PIPELINE = """
[app]
id = "ingest-{run_id}"

[api]
tokens_file = "{tokens}"
ingest_rate = {rate}
ingest_max_bytes = {max_bytes}

[[source]]
name = "clicks"
topics = ["{a}", "{b}"]
key = "user"
timestamp = "ts"

[[table]]
name = "per_user"
source = "clicks"
window = {{ type = "tumbling", size = "1m" }}
aggregate = {{ n = "count()" }}
"""
TOKENS = """
[[tokens]]
name = "writer"
token = "{writer}"
scopes = ["ingest"]

[[tokens]]
name = "reader"
token = "{reader}"
scopes = ["read"]

[[tokens]]
name = "burst"
token = "{burst}"
scopes = ["ingest"]

[[tokens]]
name = "loader"
token = "{loader}"
scopes = ["ingest"]
"""


def post(
    port: int, path: str, body: bytes, token: str | None = "writer", content_type: str = "application/json"
) -> tuple[int, Any, dict[str, str]]:
    headers = {"Content-Type": content_type}
    if token is not None:
        headers["Authorization"] = f"Bearer {SECRETS[token]}"
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=body, headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, orjson.loads(reply.read()), dict(reply.headers.items())
    except urllib.error.HTTPError as err:
        return err.code, orjson.loads(err.read()), dict(err.headers.items())


def get(port: int, path: str, token: str) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {SECRETS[token]}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, orjson.loads(reply.read())
    except urllib.error.HTTPError as err:
        return err.code, orjson.loads(err.read())


def healthy(worker: Any) -> bool:
    try:
        return bool(worker.get("/health")[0] == 200)
    except OSError:
        return False


def metric(port: int, line_start: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(line_start)]
    return sum(values)


def test_http_ingest_and_continust_produce(
    kafka: str, run_id: str, tmp_path: Path, start_worker: Any
) -> None:
    a, b = f"ingest-a-{run_id}", f"ingest-b-{run_id}"
    run(ensure_topics(kafka, {a: KEYED, b: 2}))
    tokens = tmp_path / "tokens.toml"
    tokens.write_text(TOKENS.format(**SECRETS))
    pipeline = tmp_path / "pipelines.toml"
    pipeline.write_text(
        PIPELINE.format(run_id=run_id, tokens=tokens, rate=RATE, max_bytes=MAX_BYTES, a=a, b=b)
    )
    worker = start_worker(pipeline, free_port())
    port = worker.port
    wait_until(lambda: healthy(worker), 60, "the worker's health", worker.log_tail)
    events = "/api/sources/clicks/events"
    now = int(time.time() * 1000)

    def event(user: str, n: int) -> dict[str, Any]:
        return {"user": user, "ts": now + n, "n": n}

    # what each answer says was written: (topic, partition, offset) -> (key, value), both bytes
    expected: dict[tuple[str, int, int], tuple[bytes, bytes]] = {}

    def accepted(answer: dict[str, Any], values: list[bytes]) -> PositionToken:
        """Record what the answer says it wrote, check its partitions are the keys' and return
        the position token the written places call for."""
        topic = answer["topic"]
        places = []
        for item in answer["written"]:
            value = values[item["index"]]
            key = str(orjson.loads(value)["user"])
            partitions = KEYED if topic == a else 2
            assert item["partition"] == key_partition(key.encode(), partitions), item
            expected[(topic, item["partition"], item["offset"])] = (key.encode(), value)
            places.append(
                WrittenAt(topic, item["partition"], item["offset"], key_partition(key.encode(), KEYED))
            )
        return PositionToken.of("clicks", places)

    # no token: 401; a token without `ingest`: 403; both JSON
    status, body, headers = post(port, events, orjson.dumps(event("x", 0)), token=None)
    assert (status, body["error"]) == (401, "unauthorized") and "Bearer" in headers["WWW-Authenticate"]
    status, body, _ = post(port, events, orjson.dumps(event("x", 0)), token="reader")
    assert (status, body["error"]) == (403, "forbidden") and "ingest" in body["detail"]
    status, body, _ = post(port, "/api/sources/nope/events", orjson.dumps(event("x", 0)))
    assert (status, body["error"]) == (404, "unknown_source")
    status, body, _ = post(port, f"{events}?topic=elsewhere", orjson.dumps(event("x", 0)))
    assert (status, body["error"]) == (400, "bad_query")

    # one object
    one = orjson.dumps(event("alice", 1))
    status, body, _ = post(port, events, one)
    assert status == 202, body
    assert body["source"] == "clicks" and body["topic"] == a and len(body["written"]) == 1
    assert PositionToken.decode(body["position"]) == accepted(body, [one])

    # an array
    array = [event(f"user-{i}", i) for i in range(20)]
    status, body, _ = post(port, events, orjson.dumps(array))
    assert status == 202, body
    assert [w["index"] for w in body["written"]] == list(range(20))
    assert PositionToken.decode(body["position"]) == accepted(body, [orjson.dumps(e) for e in array])

    # NDJSON to the source's second topic: partitioned among its 2, keyed among the source's 3
    lines = [orjson.dumps(event(f"user-{i}", i)) for i in range(10)]
    status, body, _ = post(
        port, f"{events}?topic={b}", b"\n".join(lines), content_type="application/x-ndjson"
    )
    assert status == 202 and body["topic"] == b, body
    assert PositionToken.decode(body["position"]) == accepted(body, lines)

    # a mixed batch: the valid ones are written, every invalid one is named
    mixed = [
        orjson.dumps(event("bob", 1)),
        b"{not json",
        orjson.dumps({"ts": now}),
        orjson.dumps(event("carol", 2)),
        orjson.dumps({"user": "dave", "ts": now + 7_200_000}),
        b"[1, 2]",
        orjson.dumps({"user": "erin", "ts": "noon"}),
        orjson.dumps(event("frank", 3)),
    ]
    status, body, _ = post(port, events, b"\n".join(mixed), content_type="application/x-ndjson")
    assert (status, body["error"]) == (400, "invalid_records"), body
    assert [(i["index"], i["reason"]) for i in body["invalid"]] == [
        (1, "not_json"),
        (2, "missing_key"),
        (4, "future_timestamp"),
        (5, "not_object"),
        (6, "bad_timestamp"),
    ]
    assert [w["index"] for w in body["written"]] == [0, 3, 7]
    assert PositionToken.decode(body["position"]) == accepted(body, mixed)

    # a body over the limit
    status, body, _ = post(port, events, b"[" + b" " * MAX_BYTES + b"]")
    assert (status, body["error"]) == (413, "too_large")

    # beyond the rate: a full bucket lets a larger batch through, the next one waits
    status, body, _ = post(port, events, orjson.dumps([{"n": i} for i in range(RATE + 10)]), token="burst")
    assert status == 400 and len(body["invalid"]) == RATE + 10 and body["position"] is None
    status, body, headers = post(port, events, orjson.dumps(event("late", 0)), token="burst")
    assert (status, body["error"]) == (429, "rate_limited"), body
    assert int(headers["Retry-After"]) >= 1

    # continust produce: a file of 100 events with blank lines and two invalid ones, in batches
    # of 60 (the second is over the loader's bucket: the command waits its Retry-After)
    file_lines = [orjson.dumps(event(f"cli-{i % 7}", i)) for i in range(100)]
    file_lines[10] = b'{"ts": 1}'
    file_lines[70] = b"oops"
    text = b"\n".join(file_lines[:50]) + b"\n\n\n" + b"\n".join(file_lines[50:]) + b"\n"
    ndjson = tmp_path / "events.ndjson"
    ndjson.write_bytes(text)
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "agents.cli",
            "produce",
            "--source",
            "clicks",
            "--batch",
            "60",
            "--url",
            f"http://127.0.0.1:{port}",
            str(ndjson),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "CONTINUST_API_TOKEN": SECRETS["loader"]},
    )
    assert cli.returncode == 0, cli.stderr
    assert "written 98 of 100 events; 2 invalid" in cli.stderr
    assert "line 11: missing_key" in cli.stderr and "line 73: not_json" in cli.stderr
    cli_position = PositionToken.decode(cli.stdout.strip())

    # read back with read_committed: exactly what the answers said, where they said
    records = {
        (topic, partition, record.offset): (record.key, record.value)
        for topic in (a, b)
        for partition, messages in run(read_to_end(kafka, topic)).items()
        for record in messages
    }
    from_cli = {place: kv for place, kv in records.items() if kv[0].startswith(b"cli-")}
    assert {place: kv for place, kv in records.items() if place not in from_cli} == expected
    assert sorted(orjson.loads(kv[1])["n"] for kv in from_cli.values()) == [
        i for i in range(100) if i not in (10, 70)
    ]
    assert cli_position == PositionToken.of(
        "clicks",
        [WrittenAt(t, p, o, key_partition(key, KEYED)) for (t, p, o), (key, _) in from_cli.items()],
    )
    assert all(p == key_partition(key, KEYED) for (_, p, _), (key, _) in from_cli.items())

    assert metric(port, 'continust_ingest_records_total{source="clicks"}') == len(records)
    assert metric(port, 'continust_ingest_rejected_total{reason="missing_key",source="clicks"}') == (
        1 + RATE + 10 + 1
    )

    # and the table reads them: alice's one event, and cli-3's (i = 3, 17, 24, ..., 94: 10 is invalid)
    cli_3 = sum(1 for i in range(100) if i % 7 == 3 and i not in (10, 70))

    def counts() -> Any:
        found = {}
        for user in ("alice", "cli-3"):
            status, body = get(port, f"/api/tables/per_user/keys/{user}", "reader")
            if status != 200:
                return None
            found[user] = sum(w["value"]["n"] for w in body["windows"])
        return found if found == {"alice": 1, "cli-3": cli_3} else None

    wait_until(counts, 30, "the table to count the ingested events", worker.log_tail)

    # read your writes: a query given the ingest's position answers with the new event at once,
    # whichever partition of the table it lands on (no waiting for the table to catch up first)
    for user in ("alice", "cli-3", "zoe"):
        status, body, _ = post(port, events, orjson.dumps(event(user, 1)))
        assert status == 202, body
        status, answer = get(
            port, f"/api/tables/per_user/keys/{user}?after={body['position']}&wait=8", "reader"
        )
        assert status == 200, answer
        assert (
            sum(w["value"]["n"] for w in answer["windows"])
            == {"alice": 2, "cli-3": cli_3 + 1, "zoe": 1}[user]
        )
        [written] = body["written"]
        partition = str(key_partition(user.encode(), KEYED))
        assert answer["position"][partition]["inputs"][f"{a}:{written['partition']}"] >= written["offset"]

    # isolation=committed: only what a commit made durable, with its position; the token waits
    # for the commit that covers it, not only for the processing
    status, body, _ = post(port, events, orjson.dumps(event("yan", 1)))
    assert status == 202, body
    [written] = body["written"]
    query = f"after={body['position']}&wait=8&isolation=committed"
    status, answer = get(port, f"/api/tables/per_user/keys/yan?{query}", "reader")
    assert status == 200 and answer["committed"] is True, answer
    assert sum(w["value"]["n"] for w in answer["windows"]) == 1
    partition = str(key_partition(b"yan", KEYED))
    assert answer["position"][partition]["inputs"][f"{a}:{written['partition']}"] >= written["offset"]
