"""Point queries stay answered through group changes, on the real broker: a client polls one
worker for a key of every partition while a second worker joins and then leaves, and records of
other keys keep flowing.

A partition the polled worker keeps through both changes answers 200, with the model's windows,
on every poll, also while the worker rebalances and restores the partitions that move to it.
Every other answer is a 503 with ``Retry-After`` and a stable error code, never a library's
exception text."""

from __future__ import annotations

import signal
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson

from streams.api.positions import PositionToken
from streams.kafka.partitioning import key_partition
from streams.kafka.topic_admin import ensure_topics
from tests.integration.broker_io import free_port
from tests.integration.conftest import run, wait_exit, wait_until, workers_state
from tests.integration.test_group_churn import RATE, steady_input
from tests.integration.test_queries import KEYS, PARTITIONS, PIPELINE, answer, backlog, model, owners, produce

RETRYABLE = {"restoring", "not_ready", "owner_unreachable"}


def ask(port: int, path: str) -> tuple[int, Any, dict[str, str]]:
    """Status, JSON body and headers of ``GET path``."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=40) as response:
            return response.status, orjson.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as err:
        return err.code, orjson.loads(err.read()), dict(err.headers)


class Poller:
    """Polls ``port`` for each key in turn, and its readiness between, until stopped; keeps
    every answer: (key, status, body, Retry-After, whether the worker said it was ready just
    before and just after)."""

    def __init__(self, port: int, keys: list[str]) -> None:
        self.port, self.keys = port, keys
        self.answers: list[tuple[str, int, Any, str | None, bool]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _ready(self) -> bool:
        status, _, _ = ask(self.port, "/ready")
        return status == 200

    def _run(self) -> None:
        while not self._stop.is_set():
            for key in self.keys:
                before = self._ready()
                status, body, headers = ask(self.port, f"/api/tables/counts/keys/{key}")
                settled = before and self._ready()
                self.answers.append((key, status, body, headers.get("Retry-After"), settled))

    def count(self) -> int:
        return len(self.answers)


def test_partitions_a_worker_keeps_answer_through_a_join_and_a_leave(
    kafka, run_id, start_worker, tmp_path: Path
):
    app_id, topic = f"avail-{run_id}", f"events-{run_id}"
    changelog = f"{app_id}-counts-changelog"
    run(ensure_topics(kafka, {topic: PARTITIONS}))
    pipeline = tmp_path / "pipelines.toml"
    pipeline.write_text(PIPELINE.format(app_id=app_id, topic=topic).replace("table_standby_replicas = 1", ""))
    t0 = (int(time.time() * 1000) - 3_600_000) // 10_000 * 10_000
    events = backlog(t0, 800)
    written = run(produce(kafka, topic, events))
    want = model(events)
    probes = {key_partition(k.encode(), PARTITIONS): k for k in KEYS}  # a key of every partition
    assert sorted(probes) == list(range(PARTITIONS))
    expected = {key: sorted(i for i in want.items() if i[0][0] == key) for key in probes.values()}
    a_port, b_port = free_port(), free_port()
    a = start_worker(pipeline, a_port)
    me = f"http://127.0.0.1:{a_port}"
    wait_until(
        lambda: owners(a_port, changelog).get(me) == list(range(PARTITIONS)), 120, "the worker to own all"
    )
    token = PositionToken.of("events", written).encode()
    answer(a_port, "/api/tables/counts/windows", limit=1000, after=token, wait=30)  # all processed
    b: Any = None

    def state() -> str:
        return workers_state(*([a] if b is None else [a, b]))

    # records keep flowing through both group changes, for keys the poll does not ask about
    live = [(f"live-{i % 40}", t0 + 100 * i, 1) for i in range(100_000)]
    with steady_input(kafka, topic, live) as producer, Poller(a_port, list(probes.values())) as poller:
        wait_until(lambda: poller.count() > 20, 60, "the client to poll", state)
        b = start_worker(pipeline, b_port)  # joins
        wait_until(
            lambda: len(owners(a_port, changelog)) == 2, 120, "the second worker to own partitions", state
        )
        kept = set(owners(a_port, changelog)[f"http://127.0.0.1:{a_port}"])
        assert kept and kept != set(range(PARTITIONS)), kept
        seen = poller.count()
        wait_until(lambda: poller.count() > seen + 20, 60, "the client to poll on", state)
        b.proc.send_signal(signal.SIGTERM)  # leaves
        assert wait_exit(b, 60, "the second worker to stop") == 0
        wait_until(
            lambda: owners(a_port, changelog).get(me) == list(range(PARTITIONS)),
            120,
            "the first worker to own every partition again",
            state,
        )
        wait_until(lambda: ask(a_port, "/ready")[0] == 200, 120, "the first worker to be ready", state)
        seen = poller.count()
        wait_until(lambda: poller.count() > seen + 20, 60, "the client to poll after the changes", state)

        sent = producer.stop()
    assert sent > RATE, f"only {sent} events were published while the group changed"
    answers = poller.answers
    kept_keys = {probes[p] for p in kept}
    for key, status, body, retry_after, _ in answers:
        if key in kept_keys:
            assert status == 200, (key, status, body)
            assert [((key, w["start"], w["end"]), w["value"]) for w in body["windows"]] == expected[key]
        elif status != 200:
            assert status == 503 and body["error"] in RETRYABLE, (key, status, body)
            assert retry_after == "1" and "Error(" not in body["detail"], body
    during = [key for key, _, _, _, settled in answers if key in kept_keys and not settled]
    assert during, "no poll of a kept partition came while the worker was rebalancing or restoring"
    moved = [status for key, status, _, _, _ in answers if key not in kept_keys]
    print(
        f"availability: {len(answers)} polls, {len(during)} of kept partitions while not ready, "
        f"{sum(s != 200 for s in moved)} of {len(moved)} polls of moved partitions answered 503"
    )
