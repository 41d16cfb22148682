"""The query API on the real broker: a repartitioned source of four partitions, a backlog for 50
keys, two workers (each owning partitions, each a standby of the other's), then a third.

Every query (point, scan through every page, top-N, catalog) is answered identically by either
worker and equals a model computed here from the events; a scan cursor taken before a
rebalance yields exactly the rest after it; read-your-writes waits for a token built from a
real producer's metadata, and answers 503 ``position_not_reached`` within the wait bound for a
token that cannot be reached; processed positions survive the move of a partition.
"""

from __future__ import annotations

import asyncio
import random
import re
import signal
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import jsonschema
import orjson

from agents.cli import main as continust
from streams.api.positions import PositionToken, WrittenAt
from streams.kafka.partitioning import key_partition
from streams.kafka.topic_admin import ensure_topics
from tests.integration.broker_io import free_port
from tests.integration.conftest import run, wait_exit, wait_until

PARTITIONS = 4
SIZE = 10_000
KEYS = [f"k{i:02d}" for i in range(50)]
PIPELINE = """
[app]
id = "{app_id}"
commit_interval = "200ms"
session_timeout = "6s"
table_standby_replicas = 1

[[source]]
name = "events"
topics = ["{topic}"]
key = "user"
timestamp = "ts"

[[table]]
name = "counts"
source = "events"
window = {{ type = "tumbling", size = "10s", grace = "1h", retention = "24h" }}
aggregate = {{ n = "count()", s = "sum(x)", hi = "max(x)" }}
emit = "final"
"""

Event = tuple[int, str, int, int]  # (source partition, key, ts, x)


def backlog(t0: int, count: int) -> list[Event]:
    """Event times rise by 100 ms per event, so each source partition is in time order and no
    event is late; grace of an hour keeps every window open."""
    rng = random.Random(7)
    return [(i % PARTITIONS, rng.choice(KEYS), t0 + 100 * i, rng.randint(1, 100)) for i in range(count)]


def model(events: list[Event]) -> dict[tuple[str, int, int], dict[str, int]]:
    windows: dict[tuple[str, int, int], dict[str, int]] = {}
    for _p, key, ts, x in events:
        start = ts - ts % SIZE
        w = windows.setdefault((key, start, start + SIZE), {"n": 0, "s": 0, "hi": x})
        w["n"], w["s"], w["hi"] = w["n"] + 1, w["s"] + x, max(w["hi"], x)
    return windows


async def produce(bootstrap: str, topic: str, events: list[Event]) -> list[WrittenAt]:
    """Publish the events on their partitions; where each landed (from the producer's
    metadata), with the table partition of its key."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [
            await producer.send(
                topic, orjson.dumps({"user": key, "ts": ts, "x": x}), key=key.encode(), partition=p
            )
            for p, key, ts, x in events
        ]
        sent = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return [
        WrittenAt(topic, meta.partition, meta.offset, key_partition(key.encode(), PARTITIONS))
        for meta, (_p, key, _ts, _x) in zip(sent, events, strict=True)
    ]


#: every answer of the API routes the test saw: (path, status, body)
SEEN: list[tuple[str, int, Any]] = []


def get(port: int, path: str, **query: Any) -> tuple[int, Any, dict[str, str]]:
    url = f"http://127.0.0.1:{port}{path}"
    if query:
        url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
    try:
        with urllib.request.urlopen(url, timeout=40) as response:
            status, body, headers = response.status, orjson.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as err:
        status, body, headers = err.code, orjson.loads(err.read()), dict(err.headers)
    if path.startswith("/api/"):
        SEEN.append((path, status, body))
    return status, body, headers


def check_documented(port: int) -> None:
    """Every answer seen conforms to the schema the OpenAPI document gives for its route and
    status."""
    _, document, _ = get(port, "/api/openapi.json")
    templates = [
        (re.compile("^" + re.sub(r"\\{[a-z_]+\\}", "[^/]+", re.escape(path)) + "$"), path)
        for path in document["paths"]
    ]
    checked = 0
    for path, status, body in SEEN:
        matching = [t for rx, t in templates if rx.match(urllib.parse.unquote(path))]
        if not matching:
            continue
        template = min(matching, key=lambda t: t.count("{"))  # /api/tables/{table} over deeper
        responses = document["paths"][template]["get"]["responses"]
        answer_doc = responses.get(str(status), responses["default"])
        schema = answer_doc["content"]["application/json"]["schema"]
        jsonschema.validate(body, schema)
        checked += 1
    assert checked > 20


def answer(port: int, path: str, **query: Any) -> Any:
    """The worker's 200 answer, once it gives one (503 while the group rebalances)."""

    def ok() -> Any:
        status, body, _ = get(port, path, **query)
        return body if status == 200 else None

    return wait_until(ok, 60, f"a 200 answer from {port} to {path} {query}")


def scan_all(port: int, limit: int, cursor: str | None = None, **query: Any) -> list[dict[str, Any]]:
    """Every page of a scan from ``cursor`` on."""
    pages: list[dict[str, Any]] = []
    while True:
        page = answer(port, "/api/tables/counts/windows", limit=limit, cursor=cursor, **query)
        assert len(page["windows"]) <= limit
        pages.append(page)
        cursor = page["next_cursor"]
        if cursor is None:
            return pages


def as_model(windows: list[dict[str, Any]]) -> list[tuple[tuple[str, int, int], dict[str, int]]]:
    return [((w["key"], w["start"], w["end"]), w["value"]) for w in windows]


def without_position(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "position"}


def owners(port: int, changelog: str) -> dict[str, list[int]]:
    """The changelog partitions each worker owns, as ``port``'s ``/health`` tells (``{}``
    while it does not answer yet)."""
    try:
        _, body, _ = get(port, "/health")
    except urllib.error.URLError:
        return {}
    return {url: tps.get(changelog, []) for url, tps in body.get("owners", {}).items()}


def cli(capsys: Any, *argv: str) -> tuple[int, Any, Any]:
    """``continust query ...`` in process: its exit code, and its stdout and stderr as JSON."""
    capsys.readouterr()
    code = continust(["query", *argv])
    out, err = capsys.readouterr()
    return code, orjson.loads(out) if out else None, orjson.loads(err) if err else None


#: the top-N queries asked: aggregation and order
TOP_QUERIES = (("s", "desc"), ("n", "asc"), ("hi", "desc"))


def model_top(want: dict[Any, dict[str, Any]], by: str, order: str, n: int) -> list[dict[str, Any]]:
    """The model's top ``n``: each key's best window (the earliest of equals), ranked, ties by key."""
    best: dict[str, tuple[Any, ...]] = {}
    for (key, start, end), value in sorted(want.items()):
        v = value[by]
        if key not in best or (v > best[key][0] if order == "desc" else v < best[key][0]):
            best[key] = (v, start, end)
    ranked = sorted(best.items(), key=lambda i: (-i[1][0] if order == "desc" else i[1][0], i[0]))[:n]
    return [
        {"key": k, "start": s, "end": e, "value": v, "rank": r} for r, (k, (v, s, e)) in enumerate(ranked, 1)
    ]


def test_every_query_is_answered_alike_by_any_worker_and_follows_writes(
    kafka, run_id, start_worker, tmp_path: Path, capsys
):
    app_id, topic = f"queries-{run_id}", f"events-{run_id}"
    changelog = f"{app_id}-counts-changelog"
    run(ensure_topics(kafka, {topic: PARTITIONS}))
    pipeline = tmp_path / "pipelines.toml"
    pipeline.write_text(PIPELINE.format(app_id=app_id, topic=topic))
    t0 = (int(time.time() * 1000) - 3_600_000) // SIZE * SIZE
    events = backlog(t0, 800)
    written = run(produce(kafka, topic, events))
    want = model(events)
    a, b, c = free_port(), free_port(), free_port()
    workers = [start_worker(pipeline, a), start_worker(pipeline, b)]

    def two_owners() -> bool:
        held = owners(a, changelog)
        return len(held) == 2 and sorted(p for ps in held.values() for p in ps) == list(range(PARTITIONS))

    wait_until(two_owners, 90, "both workers to own partitions", lambda: workers[0].log_tail())

    # read-your-writes over the whole backlog: the scan waits until every partition read it
    token = PositionToken.of("events", written).encode()
    first = answer(a, "/api/tables/counts/windows", limit=1000, after=token, wait=30)
    assert sorted(as_model(first["windows"])) == sorted(want.items())
    assert sorted(first["position"]) == [str(p) for p in range(PARTITIONS)]
    for partition, position in first["position"].items():
        mine = [w for w in written if w.keyed_partition == int(partition)]
        expected = {
            f"{topic}:{p}": max(w.offset for w in mine if w.partition == p) for p in range(PARTITIONS)
        }
        assert position["inputs"] == expected, partition  # the last of each input it processed
        assert position["stream_time"] is not None

    # scans: every page from either worker, identical, exactly the model, in order, no repeat
    pages_a, pages_b = scan_all(a, 37), scan_all(b, 37)
    assert [without_position(p) for p in pages_a] == [without_position(p) for p in pages_b]
    scanned = [w for page in pages_a for w in page["windows"]]
    assert as_model(scanned) == sorted(want.items()), "the union of the pages is the model, ordered"
    assert all(not w["closed"] for w in scanned)
    prefixed = scan_all(b, 1000, key_prefix="k1")[0]["windows"]
    assert as_model(prefixed) == sorted(i for i in want.items() if i[0][0].startswith("k1"))
    ranged = scan_all(a, 1000, **{"from": t0 + 20_000, "to": t0 + 30_000})[0]["windows"]
    assert as_model(ranged) == sorted(i for i in want.items() if i[0][1] == t0 + 20_000)

    # the command line: every page of a scan, a key, the top keys, an error answer
    url = f"http://127.0.0.1:{b}"
    code, out, _ = cli(capsys, "counts", "--all", "--limit", "45", "--url", url)
    assert code == 0 and out["windows"] == scanned and out["next_cursor"] is None
    code, out, _ = cli(capsys, "counts", KEYS[3], "--url", url, "--from", str(t0 + 20_000))
    assert code == 0 and as_model([{**w, "key": KEYS[3]} for w in out["windows"]]) == sorted(
        i for i in want.items() if i[0][0] == KEYS[3] and i[0][2] > t0 + 20_000
    )
    code, out, _ = cli(capsys, "counts", "--top", "s", "--n", "3", "--url", url)
    assert code == 0 and [t["rank"] for t in out["top"]] == [1, 2, 3]
    code, out, err = cli(capsys, "nope", "--url", url)
    assert (code, out, err["error"]) == (1, None, "unknown_table")

    # point queries: either worker, the model's windows of the key
    for key in KEYS[:6]:
        got_a = answer(a, f"/api/tables/counts/keys/{key}")
        got_b = answer(b, f"/api/tables/counts/keys/{key}")
        assert without_position(got_a) == without_position(got_b)
        assert [((key, w["start"], w["end"]), w["value"]) for w in got_a["windows"]] == sorted(
            i for i in want.items() if i[0][0] == key
        )
        assert list(got_a["position"]) == [str(key_partition(key.encode(), PARTITIONS))]

    # top-N: the model's best window per key, ranked, ties by key
    for by, order in TOP_QUERIES:
        top_a = answer(a, "/api/tables/counts/top", by=by, n=7, order=order)
        top_b = answer(b, "/api/tables/counts/top", by=by, n=7, order=order)
        assert top_a["top"] == model_top(want, by, order, 7) == top_b["top"], (by, order)
    status, body, _ = get(a, "/api/tables/counts/top", by="nope")
    assert (status, body["error"]) == (400, "bad_query")

    # catalog: alike from both; each partition's owner, a standby on the other worker, positions
    catalog = answer(a, "/api/tables")
    assert catalog == answer(b, "/api/tables")
    assert catalog["tables"] == [
        {
            "name": "counts",
            "source": "events",
            "topics": [topic],
            "operators": [],
            "window": {
                "type": "tumbling",
                "size_ms": SIZE,
                "grace_ms": 3_600_000,
                "retention_ms": 86_400_000,
            },
            "aggregations": {"n": "count()", "s": "sum(x)", "hi": "max(x)"},
            "emit": "final",
            "output": None,
            "partitions": PARTITIONS,
        }
    ]
    urls = {f"http://127.0.0.1:{a}", f"http://127.0.0.1:{b}"}

    def detail_settled(port: int) -> Any:
        body = answer(port, "/api/tables/counts")
        # lag is known once the owner's consumer has a fetch answer for the partition
        done = all(p["standbys"] and p["inputs"] and p["lag"] is not None for p in body["partition_details"])
        return body if done else None

    detail_a = wait_until(lambda: detail_settled(a), 60, "every partition's standby to report")
    detail_b = wait_until(lambda: detail_settled(b), 60, "every partition's standby to report")
    placement = ("partition", "owner", "standbys", "inputs")  # stream time and lag may move on
    assert [{k: p[k] for k in placement} for p in detail_a["partition_details"]] == [
        {k: p[k] for k in placement} for p in detail_b["partition_details"]
    ]
    for p in detail_a["partition_details"]:
        assert p["owner"] in urls and p["standbys"] == sorted(urls - {p["owner"]})
        assert isinstance(p["lag"], int) and 0 <= p["lag"] <= 2 * PARTITIONS, p  # markers, reports
        assert p["inputs"] == first["position"][str(p["partition"])]["inputs"]

    # standby reads: the worker that is not the owner answers from its standby, as fresh
    key = KEYS[0]
    partition = key_partition(key.encode(), PARTITIONS)
    owner = detail_a["partition_details"][partition]["owner"]
    other = a if owner.endswith(str(b)) else b
    fresh = answer(int(owner.rsplit(":", 1)[1]), f"/api/tables/counts/keys/{key}")

    def stale_caught_up() -> Any:
        body = answer(other, f"/api/tables/counts/keys/{key}", stale_ok="true")
        return body if body["windows"] == fresh["windows"] else None

    stale = wait_until(
        stale_caught_up,
        30,
        "the standby to apply the changelog",
        lambda: f"{fresh}\n{get(other, f'/api/tables/counts/keys/{key}', stale_ok='true')}",
    )
    assert stale["standby"] is True and str(partition) in stale["behind"]
    assert answer(other, f"/api/tables/counts/keys/{key}")["standby"] is False

    # read-your-writes: a new event, its token from the producer's metadata, asked of both
    new_key = "zz-new"
    new_ts = t0 + 100 * 800
    [landed] = run(produce(kafka, topic, [(1, new_key, new_ts, 5)]))
    new_token = PositionToken.of("events", [landed]).encode()
    for port in (a, b):
        status, body, _ = get(port, f"/api/tables/counts/keys/{new_key}", after=new_token, wait=30)
        assert status == 200, body
        assert [(w["start"], w["value"]["n"]) for w in body["windows"]] == [(new_ts - new_ts % SIZE, 1)]
    want[(new_key, new_ts - new_ts % SIZE, new_ts - new_ts % SIZE + SIZE)] = {"n": 1, "s": 5, "hi": 5}

    # a late event and one with an invalid field change no window, but count as processed
    ignored = [(2, "zz-late", t0 - 7_200_000, 1), (3, "zz-bad", new_ts, "oops")]
    ignored_token = PositionToken.of("events", run(produce(kafka, topic, ignored))).encode()  # type: ignore[arg-type]
    status, body, _ = get(a, "/api/tables/counts/windows", after=ignored_token, wait=30, limit=1000)
    assert status == 200, body
    assert not {w["key"] for w in body["windows"]} & {"zz-late", "zz-bad"}

    # a token naming a record nobody wrote (past its input partition's end, as the cluster
    # says): refused at once, whatever the wait (a forged token holds no worker)
    ahead = PositionToken.of("events", [WrittenAt(topic, 0, landed.offset + 1_000_000, 2)]).encode()
    for port in (a, b):  # the owner judges it, asked directly or through the other worker
        status, body, _ = get(port, "/api/tables/counts/windows", after=ahead, wait=30)
        assert (status, body["error"]) == (400, "bad_token"), body
        assert "past its end" in body["detail"]
    for bad in ("not-a-token", PositionToken.of("other", [landed]).encode()):
        status, body, _ = get(b, "/api/tables/counts/windows", after=bad)
        assert (status, body["error"]) == (400, "bad_token")

    # a cursor taken before a rebalance yields the rest after it, with no gap and no repeat: a
    # third worker joins (Faust's sticky assignment gives it no partition yet), then the second
    # stops and its partitions move; the rest is asked of the third
    head = answer(a, "/api/tables/counts/windows", limit=40)
    positions_before = {
        p["partition"]: p["inputs"] for p in answer(a, "/api/tables/counts")["partition_details"]
    }
    owners_before = {p["partition"]: p["owner"] for p in answer(a, "/api/tables/counts")["partition_details"]}
    workers.append(start_worker(pipeline, c))
    wait_until(lambda: len(owners(a, changelog)) == 3, 90, "the third worker to join the group")
    workers[1].proc.send_signal(signal.SIGTERM)
    assert wait_exit(workers[1], 60, "the second worker to stop") == 0
    gone = f"http://127.0.0.1:{b}"

    def moved_away() -> bool:
        held = owners(a, changelog)
        return not held.get(gone) and sorted(p for ps in held.values() for p in ps) == list(range(PARTITIONS))

    wait_until(moved_away, 90, "the second worker's partitions to move")
    rest = scan_all(c, 53, head["next_cursor"])
    scanned = head["windows"] + [w for page in rest for w in page["windows"]]
    assert as_model(scanned) == sorted(want.items())
    moved = answer(c, "/api/tables/counts")
    assert gone not in {p["owner"] for p in moved["partition_details"]}
    assert gone in owners_before.values(), "some partitions moved"
    for p in moved["partition_details"]:
        assert p["inputs"] == positions_before[p["partition"]], "positions move with the partition"
    # the rebalance dropped the owners' ranked windows; top-N builds them again, from the state
    # that moved with the partitions and the late writes made since they were first built
    for by, order in TOP_QUERIES:
        for port in (a, c):
            got = answer(port, "/api/tables/counts/top", by=by, n=7, order=order)["top"]
            assert got == model_top(want, by, order, 7), (port, by, order)
    check_documented(c)
