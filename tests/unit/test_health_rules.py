"""Liveness (the wedge rule on a fake clock), readiness (the rule, and a Faust app that has not
joined), and the answers of ``/health`` and ``/ready`` on Faust's aiohttp server in process."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import faust
import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from faust.types import TP

from agents.liveness import Liveness
from agents.readiness import decide, readiness
from streams.api.api_auth import ApiToken, TokenSet
from streams.api.http_api import register_http_api
from streams.telemetry.metrics import REGISTRY

MINUTE = 60_000


@dataclass
class FakeClock:
    now: int = 1_000_000

    def now_ms(self) -> int:
        return self.now


def test_a_worker_with_records_to_read_and_no_progress_is_wedged_after_the_bound() -> None:
    clock = FakeClock()
    liveness = Liveness(5 * MINUTE, clock)
    clock.now += 5 * MINUTE - 1
    assert liveness.check(lag_records=10) is None
    clock.now += 1
    reason = liveness.check(lag_records=10)
    assert reason is not None
    assert "300s" in reason and "10 records" in reason


def test_a_worker_with_nothing_to_read_is_never_wedged() -> None:
    clock = FakeClock()
    liveness = Liveness(MINUTE, clock)
    clock.now += 60 * MINUTE
    assert liveness.check(lag_records=0) is None


def test_a_batch_or_a_commit_restarts_the_bound() -> None:
    clock = FakeClock()
    liveness = Liveness(MINUTE, clock)
    clock.now += MINUTE - 1
    liveness.progressed()
    clock.now += MINUTE - 1
    assert liveness.check(lag_records=5) is None
    clock.now += 1
    assert liveness.check(lag_records=5) is not None


def test_restoring_counts_as_progress_while_the_records_left_go_down() -> None:
    clock = FakeClock()
    liveness = Liveness(MINUTE, clock)
    assert liveness.check(lag_records=7, restore_remaining=1_000) is None
    clock.now += 2 * MINUTE
    assert liveness.check(lag_records=7, restore_remaining=400) is None  # moved: progress
    clock.now += 2 * MINUTE
    reason = liveness.check(lag_records=7, restore_remaining=400)  # stuck
    assert reason is not None and "400 changelog records to restore" in reason


def test_the_bound_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Liveness(0, FakeClock())


CHANGELOG = TP("app-t-changelog", 0)


@pytest.mark.parametrize(
    ("joined", "assigned", "rebalancing", "recovering", "status"),
    [
        (False, 0, False, False, "not_joined"),
        (True, 0, False, False, "no_assignment"),
        (True, 2, True, True, "recovering"),
        (True, 2, True, False, "rebalancing"),
        (True, 2, False, False, "ready"),
    ],
)
def test_readiness_rule(
    joined: bool, assigned: int, rebalancing: bool, recovering: bool, status: str
) -> None:
    answer = decide(joined, assigned, rebalancing, recovering, {CHANGELOG: 12 if recovering else 0})
    assert answer.status == status
    assert answer.ready is (status == "ready")
    body = answer.body()
    assert body["recovery"] == {"app-t-changelog:0": 12 if recovering else 0}
    assert body["remaining_records"] == (12 if recovering else 0)


def test_an_app_that_has_not_joined_is_not_ready(tmp_path: Any) -> None:
    app = faust.App("ready-probe", store="rocksdb://", datadir=str(tmp_path), autodiscover=False)
    app.Table("t", partitions=1, key_type=bytes, value_type=bytes)
    assert readiness(app).status == "not_joined"


class Worker:
    """A worker's liveness and readiness answers, switchable by the test."""

    def __init__(self) -> None:
        self.health_body: dict[str, Any] = {"status": "ok"}
        self.ready_body: dict[str, Any] = decide(True, 1, True, True, {CHANGELOG: 40}).body()

    def table_names(self) -> list[str]:
        return ["t"]

    def own_url(self) -> str:
        return "http://127.0.0.1:6066"

    def health(self) -> dict[str, Any]:
        return self.health_body

    def ready(self) -> dict[str, Any]:
        return self.ready_body


def serve(worker: Worker, tokens: TokenSet | None, steps: list[Any]) -> list[tuple[int, Any]]:
    """Answer ``(method, path)`` steps in order; a callable step changes the worker."""

    async def run() -> list[tuple[int, Any]]:
        app = faust.App(
            "health-test",
            web_router_enabled=False,
            web_tables_enabled=False,
            web_graph_enabled=False,
            web_stats_enabled=False,
        )
        register_http_api(app, worker, **({"tokens": tokens} if tokens else {}))
        app.web.init_server()
        got: list[tuple[int, Any]] = []
        async with TestClient(TestServer(app.web.web_app)) as client:
            for step in steps:
                if callable(step):
                    step()
                    continue
                reply = await client.request(*step)
                body = await reply.read()
                got.append(
                    (reply.status, orjson.loads(body) if reply.content_type.endswith("json") else body)
                )
        return got

    return asyncio.run(run())


def sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_ready_answers_503_with_the_records_left_then_200() -> None:
    worker = Worker()
    timed = {"route": "/ready", "method": "GET", "status": "503"}
    before = sample("continust_http_request_seconds_count", timed)

    def restored() -> None:
        worker.ready_body = decide(True, 1, False, False, {CHANGELOG: 0}).body()

    (first, second) = serve(worker, None, [("GET", "/ready"), restored, ("GET", "/ready")])
    assert first == (
        503,
        {
            "status": "recovering",
            "ready": False,
            "remaining_records": 40,
            "recovery": {"app-t-changelog:0": 40},
        },
    )
    assert second[0] == 200 and second[1]["status"] == "ready"
    assert sample("continust_http_request_seconds_count", timed) == before + 1


def test_health_answers_503_with_the_reason_when_wedged() -> None:
    worker = Worker()

    def wedge() -> None:
        worker.health_body = {"status": "wedged", "reason": "no batch processed and no commit for 300s"}

    (alive, wedged) = serve(worker, None, [("GET", "/health"), wedge, ("GET", "/health")])
    assert alive == (200, {"status": "ok"})
    assert wedged[0] == 503 and wedged[1]["reason"].startswith("no batch processed")


def test_ready_is_open_and_documented_beside_health() -> None:
    tokens = TokenSet((ApiToken("reader", "s3cret", frozenset({"read"})),))
    worker = Worker()
    (ready, unknown, document) = serve(
        worker, tokens, [("GET", "/ready"), ("GET", "/nowhere"), ("GET", "/api/openapi.json")]
    )
    assert ready[0] == 503  # answered without a token
    assert unknown[0] in (401, 404)
    operation = document[1]["paths"]["/ready"]["get"]
    assert {"200", "503"} <= set(operation["responses"])
    assert "security" not in operation or operation["security"] == []
    assert (
        sample("continust_http_request_seconds_count", {"route": "other", "method": "GET", "status": "404"})
        >= 1
    )
