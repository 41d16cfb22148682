"""``continust produce``'s handling of the worker's answers: batches numbered by file line, 429
waited out and resent, invalid events reported by line, one position token for every batch, and
a stop at the first error answer. The worker's answers are scripted; the real route is in
tests/integration/test_http_ingest.py."""

from __future__ import annotations

import io
from typing import Any

import orjson

from streams.api.positions import PositionToken, WrittenAt
from streams.cli.produce_command import Answer, ProduceOptions, Producer, produce


class Worker:
    """Answers the command's requests from a script, keeping what was sent."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.sent: list[tuple[str, bytes, dict[str, str]]] = []

    def __call__(self, url: str, body: bytes, headers: dict[str, str]) -> Answer:
        self.sent.append((url, body, headers))
        return self.answers.pop(0)


def token(*places: tuple[str, int, int, int]) -> str:
    return PositionToken.of("clicks", [WrittenAt(*p) for p in places]).encode()


def accepted(indexes: list[int], position: str) -> Answer:
    written = [{"index": i, "partition": 0, "offset": i} for i in indexes]
    return Answer(202, {}, {"source": "clicks", "topic": "t", "written": written, "position": position})


def run(worker: Worker, text: bytes, batch: int, clock: Any = None) -> tuple[int, str, str, list[float]]:
    slept: list[float] = []
    err, out = io.StringIO(), io.StringIO()
    producer = Producer(
        ProduceOptions("clicks", "http://w:1/", "secret-token", batch),
        post=worker,
        clock=clock or (lambda: 0.0),
        sleep=slept.append,
        err=err,
    )
    status = produce(io.BytesIO(text).readlines(), producer, out)
    return status, out.getvalue(), err.getvalue(), slept


def test_batches_429_invalid_events_and_one_position_token_for_all() -> None:
    worker = Worker(
        accepted([0, 1], token(("t", 0, 5, 1))),
        Answer(429, {"Retry-After": "3"}, {"error": "rate_limited", "detail": "wait"}),
        Answer(
            400,
            {},
            {
                "error": "invalid_records",
                "detail": "1 of 2",
                "written": [{"index": 0, "partition": 1, "offset": 9}],
                "invalid": [{"index": 1, "reason": "not_json", "detail": "bad"}],
                "position": token(("t", 1, 9, 2), ("t", 0, 3, 1)),
            },
        ),
    )
    status, out, err, slept = run(worker, b'{"a": 1}\n\n{"a": 2}\n{"a": 3}\nbroken\n', batch=2)
    assert status == 0 and slept == [3]
    assert [body for _, body, _ in worker.sent] == [
        b'{"a": 1}\n{"a": 2}\n',
        b'{"a": 3}\nbroken\n',
        b'{"a": 3}\nbroken\n',
    ]
    url, _, headers = worker.sent[0]
    assert url == "http://w:1/api/sources/clicks/events"
    assert headers == {"Content-Type": "application/x-ndjson", "Authorization": "Bearer secret-token"}
    assert "written 3 of 4 events; 1 invalid" in err and "line 5: not_json: bad" in err
    assert PositionToken.decode(out.strip()) == PositionToken.of(
        "clicks", [WrittenAt("t", 0, 5, 1), WrittenAt("t", 1, 9, 2)]
    )


def test_an_error_answer_stops_the_command_with_status_1_and_its_json() -> None:
    error = {"error": "forbidden", "detail": "token 'r' lacks scope 'ingest'"}
    worker = Worker(accepted([0], token(("t", 0, 1, 0))), Answer(403, {}, error))
    status, out, err, _ = run(worker, b'{"a": 1}\n{"a": 2}\n{"a": 3}\n', batch=1)
    assert status == 1 and len(worker.sent) == 2
    assert f"HTTP 403: {orjson.dumps(error).decode()}" in err
    assert "written 1 of 1 events" in err
    # what was written before the error still has its token
    assert PositionToken.decode(out.strip()).entries == (WrittenAt("t", 0, 1, 0),)


def test_no_answer_is_an_error() -> None:
    def unreachable(url: str, body: bytes, headers: dict[str, str]) -> Answer:
        raise ConnectionRefusedError(111, "Connection refused")

    err, out = io.StringIO(), io.StringIO()
    producer = Producer(ProduceOptions("clicks"), post=unreachable, err=err)
    assert produce([b'{"a": 1}\n'], producer, out) == 1
    assert "no answer from http://127.0.0.1:6066/api/sources/clicks/events" in err.getvalue()
    assert out.getvalue() == ""


def test_progress_is_printed_at_most_once_a_second() -> None:
    times = iter([0.0, 0.4, 0.9, 1.2, 1.5, 2.6])
    answers = [accepted([0], token(("t", 0, i, 0))) for i in range(5)]
    status, _, err, _ = run(Worker(*answers), b"{}\n" * 5, batch=1, clock=lambda: next(times))
    assert status == 0
    progress = [line for line in err.splitlines() if line.startswith("sent ")]
    # batches answered at 0.4, 0.9, 1.2, 1.5 and 2.6 s: progress at 1.2 and 2.6 only
    assert progress == ["sent 3 events (2/s), 3 written", "sent 5 events (2/s), 5 written"]
