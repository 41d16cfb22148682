"""``continust tail`` against a local HTTP server that plays a worker: it prints each event as
one NDJSON line, reconnects with the last id it received when a stream ends or a worker drops
it, waits what Retry-After says, and gives up on answers that retrying cannot change."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest

from streams.api.sse import comment_bytes, event_bytes
from streams.cli.tail_command import Tail, TailOptions


class Worker:
    """Answers the n-th request with the n-th scripted answer: (status, headers, body)."""

    def __init__(self, answers: list[tuple[int, dict[str, str], bytes]]) -> None:
        self.answers = answers
        self.requests: list[dict[str, str | None]] = []
        worker = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                worker.requests.append(
                    {
                        "path": self.path,
                        "Last-Event-ID": self.headers.get("Last-Event-ID"),
                        "Authorization": self.headers.get("Authorization"),
                    }
                )
                status, headers, body = worker.answers[min(len(worker.requests), len(worker.answers)) - 1]
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def worker_with() -> Iterator[object]:
    started: list[Worker] = []

    def start(answers: list[tuple[int, dict[str, str], bytes]]) -> Worker:
        started.append(Worker(answers))
        return started[-1]

    yield start
    for worker in started:
        worker.close()


SSE = {"Content-Type": "text/event-stream"}


def record(offset: int) -> bytes:
    return event_bytes("record", orjson.dumps({"key": "alice", "offset": offset}).decode(), str(offset))


def test_it_prints_events_and_resumes_after_the_last_id_when_a_stream_ends_or_is_dropped(worker_with) -> None:
    dropped = event_bytes("dropped", '{"reason":"worker_stopping","last_event_id":"4"}')
    worker = worker_with(
        [
            (200, SSE, event_bytes("snapshot", '{"key":"alice"}') + event_bytes("snapshot_end", "{}", "2")),
            (200, SSE, comment_bytes("heartbeat 1") + record(3) + record(4) + dropped),
            (503, {"Retry-After": "7", "Content-Type": "application/json"}, b'{"error":"busy"}'),
            (200, SSE, record(9) + record(10)),
        ]
    )
    out, waits = io.BytesIO(), []
    options = TailOptions(table="counts", urls=(worker.url,), key="alice", token="s3cret", count=5)
    assert Tail(options, out, sleep=waits.append).run() == 0
    lines = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert lines == [
        {"event": "snapshot", "id": None, "data": {"key": "alice"}},
        {"event": "snapshot_end", "id": "2", "data": {}},
        {"event": "record", "id": "3", "data": {"key": "alice", "offset": 3}},
        {"event": "record", "id": "4", "data": {"key": "alice", "offset": 4}},
        {"event": "record", "id": "9", "data": {"key": "alice", "offset": 9}},
    ]
    assert [r.get("Last-Event-ID") for r in worker.requests] == [None, "2", "4", "4"]
    assert all(r["Authorization"] == "Bearer s3cret" for r in worker.requests)
    assert worker.requests[0]["path"] == "/api/tables/counts/subscribe?heartbeat=15&key=alice"
    assert waits[2] == 7.0  # what Retry-After said


def test_it_starts_after_from_id_and_gives_up_on_a_final_answer(worker_with) -> None:
    worker = worker_with([(409, {"Content-Type": "application/json"}, b'{"error":"no_output","detail":""}')])
    options = TailOptions(table="quiet", urls=(worker.url,), from_id="t0.0.5")
    assert Tail(options, io.BytesIO(), sleep=lambda s: None).run() == 1
    assert [r.get("Last-Event-ID") for r in worker.requests] == ["t0.0.5"]


def test_it_tries_the_next_url_when_a_worker_is_unreachable(worker_with) -> None:
    unreachable = worker_with([(200, SSE, b"")])
    unreachable.close()
    worker = worker_with([(200, SSE, record(1))])
    out = io.BytesIO()
    options = TailOptions(table="counts", urls=(unreachable.url, worker.url), key="alice", count=1)
    assert Tail(options, out, sleep=lambda s: None).run() == 0
    assert orjson.loads(out.getvalue())["id"] == "1"
