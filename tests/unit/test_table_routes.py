"""The query routes in process, on Faust's aiohttp server, over a table of four partitions held
in memory by this worker (active, standby, or by another worker that cannot be reached): bad
parameters are 400 JSON, partitions merge in key order, read-your-writes waits for processing,
a standby answers from its committed state. No broker is involved."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import faust
import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from agents.progress_signal import ProgressSignal
from streams.api.api_forward import Peers
from streams.api.http_api import register_http_api
from streams.api.position_waits import WaitSlots
from streams.api.positions import PositionToken, WrittenAt
from streams.api.table_reads import Role, build_in_slices
from streams.api.table_routes import table_routes
from streams.kafka.partitioning import key_partition
from tests.integration.broker_io import free_port
from windows.aggregation_calls import parse_aggregation
from windows.keyed_state import WindowState
from windows.ordered_store import MemoryOrderedStore
from windows.rank_index import RankedStore, TableRanks
from windows.spec import TumblingWindows
from windows.table import WindowedAggregate
from windows.table_read import PartitionView
from windows.write_back import WriteBackStore

OWN = "http://127.0.0.1:39418"
ELSEWHERE = "http://127.0.0.1:1"  # nothing listens there
PARTITIONS = 4
AGGREGATE = WindowedAggregate(
    TumblingWindows(10, grace_ms=0, retention_ms=1_000),
    (parse_aggregation("count()"), parse_aggregation("last(x)")),
    ("n", "last"),
    "final",
)
KEYS = [f"k{i}" for i in range(12)]


class MemoryTable:
    """A table's partitions in a write-back store over memory, this worker holding each in the
    given role; implements the core routes' ``TableQueries`` and ``TableReads``."""

    def __init__(self, roles: dict[int, Role]) -> None:
        self.roles = roles
        self.ranks = TableRanks(AGGREGATE, by_end=False, size_ms=10)
        self.committed = RankedStore(MemoryOrderedStore(), self.ranks)
        self.store = WriteBackStore(self.committed)
        self.signal = ProgressSignal()
        self.waiting = asyncio.Event()  # set once a query waits for processing
        self.restores = False
        self.kept_partitions: set[int] = set()  # held whole through the rebalance in progress
        self.ends: dict[str, int] = {}  # input partitions' end offsets, by "topic:partition"

    # TableQueries
    def table_names(self) -> list[str]:
        return ["t"]

    def own_url(self) -> str:
        return OWN

    def restoring(self) -> bool:
        return self.restores

    def kept(self, table: str, partition: int) -> bool:
        return partition in self.kept_partitions

    def health(self) -> dict[str, Any]:
        return {"status": "ok"}

    def ready(self) -> dict[str, Any]:
        return {"status": "ready"}

    # TableReads
    def description(self, table: str) -> dict[str, Any]:
        return {"name": table}

    def aggregation_names(self, table: str) -> tuple[str, ...]:
        return AGGREGATE.names

    def partition_count(self, table: str) -> int:
        return PARTITIONS

    def partition_of(self, table: str, key: str) -> int:
        return key_partition(key.encode(), PARTITIONS)

    def source_inputs(self, table: str) -> tuple[str, dict[str, int]]:
        return "src", {"in": 2}

    def owner(self, table: str, partition: int) -> str | None:
        return OWN if self.roles.get(partition) == "active" else ELSEWHERE

    def workers(self) -> list[str]:
        return [OWN]

    def role(self, table: str, partition: int) -> Role:
        return self.roles.get(partition)

    def view(self, table: str, partition: int, committed: bool) -> PartitionView:
        store = WriteBackStore(self.committed) if committed else self.store
        active = self.roles.get(partition) == "active"
        return PartitionView(
            store, AGGREGATE, partition, lambda: self.ranks.held(partition) if active else None
        )

    async def rank(self, table: str, partition: int) -> None:
        held = lambda: not self.restores and self.roles.get(partition) == "active"  # noqa: E731
        await build_in_slices(self.ranks, partition, self.committed, held, 5)  # as the worker does

    async def wait_processed(
        self, table: str, partition: int, condition: Callable[[], bool], timeout_s: float
    ) -> bool:
        self.waiting.set()
        return await self.signal.wait_until(condition, timeout_s)

    async def lag(self, table: str, partition: int) -> int | None:
        return 0

    async def standby_behind(self, table: str, partition: int) -> int | None:
        return 3

    async def input_ends(self, entries: list[WrittenAt]) -> dict[str, int]:
        return {
            key: end for key, end in self.ends.items() if key in {f"{e.topic}:{e.partition}" for e in entries}
        }

    # filling it
    def put(self, key: str, start: int, n: int, last: Any = 1) -> None:
        state = WindowState(start=start, end=start + 10, states=[n, [start, 0, last]], version=0)
        self.store.put_window(self.partition_of("t", key), key, state)

    def process(self, partition: int, offsets: dict[str, int]) -> None:
        self.store.set_offsets(partition, offsets)
        self.signal.notify()


def serve(
    table: MemoryTable, scenario: Callable[[TestClient], Awaitable[None]], slots: WaitSlots | None = None
) -> None:
    async def run() -> None:
        app = faust.App(
            "table-routes-test",
            web_router_enabled=False,
            web_tables_enabled=False,
            web_graph_enabled=False,
            web_stats_enabled=False,
        )
        register_http_api(app, table, extra_routes=table_routes(table, Peers(OWN), slots=slots))
        app.web.init_server()
        async with TestClient(TestServer(app.web.web_app)) as client:
            await scenario(client)

    asyncio.run(run())


async def get(client: TestClient, path: str, **query: Any) -> tuple[int, Any, Any]:
    """A query's status, body and headers; a list value gives its parameter once per item."""
    params = [(k, str(item)) for k, v in query.items() for item in (v if isinstance(v, list) else [v])]
    reply = await client.get(path, params=params)
    assert reply.content_type == "application/json"
    return reply.status, orjson.loads(await reply.read()), reply.headers


def all_active(committed_up_to: int = 0) -> MemoryTable:
    """Every key's windows [0, 10), [10, 20), [20, 30); those starting before
    ``committed_up_to`` committed, the others changes in progress."""
    table = MemoryTable(dict.fromkeys(range(PARTITIONS), "active"))
    for start in (0, 10, 20):
        if start == committed_up_to:
            table.store.flush()
        for i, key in enumerate(KEYS):
            table.put(key, start, n=i + start, last="text" if key == "k3" else i)
    table.store.set_stream_time(0, 25)  # in partition 0, [0, 10) and [10, 20) are closed
    return table


def test_bad_parameters_are_400_json_and_an_unknown_table_404() -> None:
    other_source = PositionToken.of("other", [WrittenAt("in", 0, 1, 0)]).encode()
    no_such_input = PositionToken.of("src", [WrittenAt("in", 5, 1, 0)]).encode()

    async def scenario(client: TestClient) -> None:
        cases = [
            ("/api/tables/t/windows", {"limit": 0}, "bad_query"),
            ("/api/tables/t/windows", {"limit": 1001}, "bad_query"),
            ("/api/tables/t/windows", {"wait": 31}, "bad_query"),
            ("/api/tables/t/windows", {"wait": "soon"}, "bad_query"),
            ("/api/tables/t/windows", {"closed": "maybe"}, "bad_query"),
            ("/api/tables/t/windows", {"to": [1, 2]}, "bad_query"),  # given twice
            ("/api/tables/t/windows", {"cursor": "bm9wZQ"}, "bad_cursor"),
            ("/api/tables/t/windows", {"after": "%%%"}, "bad_token"),
            ("/api/tables/t/keys/k1", {"after": other_source}, "bad_token"),
            ("/api/tables/t/top", {"by": "n", "after": no_such_input}, "bad_token"),
            ("/api/tables/t/top", {"by": "nope"}, "bad_query"),
            ("/api/tables/t/top", {"by": "n", "order": "up"}, "bad_query"),
            ("/api/tables/t/top", {"by": "n", "n": 0}, "bad_query"),
            ("/api/tables/t/partitions/x/top", {"by": "n"}, "bad_query"),
        ]
        for path, query, error in cases:
            status, body, _ = await get(client, path, **query)
            assert (status, body["error"]) == (400, error), (path, query, body)
        for path in ("/api/tables/nope", "/api/tables/nope/windows", "/api/tables/nope/keys/k"):
            status, body, _ = await get(client, path)
            assert (status, body["error"]) == (404, "unknown_table")
        status, body, _ = await get(client, "/api/tables/t/partitions/9/windows")
        assert (status, body["error"]) == (404, "unknown_partition")
        # any from and to: windows ending after from and starting before to
        status, body, _ = await get(client, "/api/tables/t/keys/k1", **{"from": 15, "to": 15})
        assert status == 200 and [w["start"] for w in body["windows"]] == [10]
        status, body, _ = await get(client, "/api/tables/t/keys/k1", **{"from": 30, "to": 0})
        assert status == 200 and body["windows"] == []

    serve(all_active(), scenario)


def test_a_restoring_owner_answers_503_but_for_partitions_it_keeps_and_a_restored_one_its_windows() -> None:
    table = all_active()
    kept = next(k for k in KEYS if key_partition(k.encode(), PARTITIONS) != key_partition(b"k1", PARTITIONS))
    table.store.flush()  # committed
    table.put(kept, 40, n=99)  # not committed: a kept partition answers its committed state

    async def scenario(client: TestClient) -> None:
        table.restores = True
        table.kept_partitions = {key_partition(kept.encode(), PARTITIONS)}
        status, body, _ = await get(client, f"/api/tables/t/keys/{kept}")
        assert status == 200 and body["standby"] is False
        assert [w["start"] for w in body["windows"]] == [0, 10, 20]
        for path, query in (
            ("/api/tables/t/keys/k1", {}),
            ("/api/tables/t/windows", {}),
            ("/api/tables/t/top", {"by": "n"}),
        ):
            status, body, headers = await get(client, path, **query)
            assert (status, body["error"], headers["Retry-After"]) == (503, "restoring", "1"), path
        table.restores = False
        status, body, _ = await get(client, "/api/tables/t/keys/k1")
        assert status == 200 and [w["start"] for w in body["windows"]] == [0, 10, 20]

    serve(table, scenario)


@pytest.mark.parametrize("committed_up_to", [0, 20])
def test_a_scan_merges_the_partitions_in_key_order_page_by_page(committed_up_to: int) -> None:
    table = all_active(committed_up_to)
    expected = sorted((k, s) for k in KEYS for s in (0, 10, 20))

    async def scenario(client: TestClient) -> None:
        seen: list[tuple[str, int]] = []
        cursor = None
        while True:
            query: dict[str, Any] = {"limit": 5, **({"cursor": cursor} if cursor else {})}
            status, page, _ = await get(client, "/api/tables/t/windows", **query)
            assert status == 200 and len(page["windows"]) <= 5
            assert sorted(page["position"]) == ["0", "1", "2", "3"] and page["standby"] is False
            seen += [(w["key"], w["start"]) for w in page["windows"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == expected
        _, closed, _ = await get(client, "/api/tables/t/windows", closed="true", limit=1000)
        want_closed = [(k, s) for k, s in expected if s < 20 and key_partition(k.encode(), PARTITIONS) == 0]
        assert [(w["key"], w["start"]) for w in closed["windows"]] == want_closed
        _, prefixed, _ = await get(client, "/api/tables/t/windows", key_prefix="k1", limit=1000)
        assert {w["key"] for w in prefixed["windows"]} == {"k1", "k10", "k11"}

    serve(table, scenario)


@pytest.mark.parametrize("committed_up_to", [0, 20, 30])
def test_top_n_ranks_the_partitions_best_and_skips_values_that_are_not_numbers(committed_up_to: int) -> None:
    async def scenario(client: TestClient) -> None:
        status, body, _ = await get(client, "/api/tables/t/top", by="n", n=3)
        assert status == 200
        assert [(t["key"], t["start"], t["value"], t["rank"]) for t in body["top"]] == [
            ("k11", 20, 31, 1),
            ("k10", 20, 30, 2),
            ("k9", 20, 29, 3),
        ]
        _, body, _ = await get(client, "/api/tables/t/top", by="n", n=2, order="asc")
        assert [(t["key"], t["start"], t["value"]) for t in body["top"]] == [("k0", 0, 0), ("k1", 0, 1)]
        _, body, _ = await get(client, "/api/tables/t/top", by="last", n=20)
        keys = [t["key"] for t in body["top"]]
        assert "k3" not in keys and len(keys) == len(KEYS) - 1, "a string is skipped"
        assert keys[:2] == ["k11", "k10"]
        ties = [t for t in body["top"] if t["value"] == 0]
        assert [t["start"] for t in ties] == [0], "one window per key, the earliest of equals"
        _, body, _ = await get(client, "/api/tables/t/top", by="n", n=2, **{"from": 10, "to": 20})
        assert [(t["key"], t["start"], t["value"]) for t in body["top"]] == [("k11", 10, 21), ("k10", 10, 20)]

    serve(all_active(committed_up_to), scenario)


def test_a_query_waits_for_its_token_and_answers_503_when_it_is_not_reached() -> None:
    table = all_active()
    key = "k1"
    partition = key_partition(key.encode(), PARTITIONS)
    token = PositionToken.of("src", [WrittenAt("in", 1, 40, partition)]).encode()

    async def scenario(client: TestClient) -> None:
        table.process(partition, {"in:1": 39})
        table.waiting = asyncio.Event()
        began = time.monotonic()
        status, body, headers = await get(client, f"/api/tables/t/keys/{key}", after=token, wait=0.3)
        assert (status, body["error"]) == (503, "position_not_reached")
        assert 0.3 <= time.monotonic() - began < 3 and headers["Retry-After"] == "1"
        assert body["position"][str(partition)]["inputs"] == {"in:1": 39}
        table.waiting = asyncio.Event()

        waiting = asyncio.create_task(get(client, f"/api/tables/t/keys/{key}", after=token, wait=20))
        await table.waiting.wait()
        table.put(key, 30, n=7)
        table.process(partition, {"in:1": 40})
        status, body, _ = await waiting
        assert status == 200 and body["windows"][-1]["value"]["n"] == 7
        assert body["position"] == {str(partition): {"stream_time": None, "inputs": {"in:1": 40}}}

        other = next(p for p in range(PARTITIONS) if p != partition)
        status, body, _ = await get(client, "/api/tables/t/windows", after=token, wait=0, limit=1000)
        assert status == 200 and str(other) in body["position"], "other partitions do not wait"

    serve(table, scenario)


def test_a_forged_token_is_refused_at_once_and_a_client_holds_a_bounded_number_of_waits() -> None:
    """A token naming an offset past its input partition's end is 400 ``bad_token`` without
    waiting; a client with its every wait slot taken gets 429 ``too_many_waits``, and its
    waits go on."""
    table = all_active()
    key = "k1"
    partition = key_partition(key.encode(), PARTITIONS)
    table.ends = {"in:1": 41}
    forged = PositionToken.of("src", [WrittenAt("in", 1, 10**12, partition)]).encode()
    fair = PositionToken.of("src", [WrittenAt("in", 1, 40, partition)]).encode()

    async def scenario(client: TestClient) -> None:
        status, body, _ = await get(client, f"/api/tables/t/keys/{key}", after=forged, wait=30)
        assert (status, body["error"]) == (400, "bad_token") and "past its end" in body["detail"]
        assert not table.waiting.is_set(), "refused before waiting"
        waits = []
        for _ in range(2):  # two waits in progress: the client's every slot
            table.waiting = asyncio.Event()
            waits.append(asyncio.create_task(get(client, f"/api/tables/t/keys/{key}", after=fair, wait=30)))
            await table.waiting.wait()
        status, body, headers = await get(client, f"/api/tables/t/keys/{key}", after=fair, wait=30)
        assert (status, body["error"], headers["Retry-After"]) == (429, "too_many_waits", "1")
        status, _, _ = await get(client, f"/api/tables/t/keys/{key}")
        assert status == 200, "queries without a token are not bounded by the slots"
        table.process(partition, {"in:1": 40})
        assert [reply[0] for reply in await asyncio.gather(*waits)] == [200, 200]
        status, _, _ = await get(client, f"/api/tables/t/keys/{key}", after=fair, wait=30)
        assert status == 200, "the slots are free again"

    serve(table, scenario, slots=WaitSlots(per_client=2))


def test_a_standby_answers_from_committed_state_and_a_partition_held_elsewhere_is_421() -> None:
    table = MemoryTable({0: "active", 1: "standby", 2: "standby", 3: "standby"})
    key = next(k for k in KEYS if key_partition(k.encode(), PARTITIONS) == 1)
    table.put(key, 0, n=1)
    table.store.flush()
    table.put(key, 10, n=2)  # not committed: a standby does not have it
    table.roles[3] = None

    async def scenario(client: TestClient) -> None:
        status, body, _ = await get(client, f"/api/tables/t/keys/{key}", stale_ok="true")
        assert status == 200 and body["standby"] is True and body["behind"] == {"1": 3}
        assert [w["start"] for w in body["windows"]] == [0]
        status, body, headers = await get(client, f"/api/tables/t/keys/{key}")
        assert (status, body["error"]) == (503, "owner_unreachable"), "the owner answers, if it can"
        assert headers["Retry-After"] == "1" and "Error" not in body["detail"], "words, never a repr"
        status, body, _ = await get(client, "/api/tables/t/partitions/3/windows")
        assert (status, body["error"]) == (421, "not_owner")
        status, body, _ = await get(client, "/api/tables/t/partitions/1/windows")
        assert (status, body["error"]) == (421, "not_owner"), "a standby answers only with stale_ok"
        status, body, _ = await get(client, "/api/tables/t/partitions/1/windows", stale_ok="true")
        assert status == 200 and [w["start"] for w in body["windows"]] == [0]
        token = PositionToken.of("src", [WrittenAt("in", 1, 0, 1)]).encode()
        for path in (
            f"/api/tables/t/keys/{key}",
            "/api/tables/t/windows",
            "/api/tables/t/partitions/1/windows",
        ):
            status, body, _ = await get(client, path, stale_ok="true", after=token)
            assert (status, body["error"]) == (400, "bad_query"), "a standby cannot promise a position"

    serve(table, scenario)


class Worker(MemoryTable):
    """A :class:`MemoryTable` at ``url``, in a group of ``workers``."""

    def __init__(self, roles: dict[int, Role], url: str, workers: list[str]) -> None:
        super().__init__(roles)
        self.url, self.group = url, workers

    def own_url(self) -> str:
        return self.url

    def workers(self) -> list[str]:
        return self.group

    def owner(self, table: str, partition: int) -> str | None:
        return self.url if self.roles.get(partition) == "active" else ELSEWHERE


def test_with_stale_ok_a_query_whose_owner_cannot_answer_is_answered_by_a_standby_elsewhere() -> None:
    """The worker asked holds nothing of the key's partition and its owner does not answer:
    without ``stale_ok`` that is 503 ``owner_unreachable``; with it, the worker asks the other
    workers and the one holding a standby answers from its committed state."""
    key = next(k for k in KEYS if key_partition(k.encode(), PARTITIONS) == 1)
    ports = [free_port(), free_port()]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    group = [urls[0], ELSEWHERE, urls[1]]
    entry = Worker({}, urls[0], group)
    standby = Worker({1: "standby"}, urls[1], group)
    standby.put(key, 0, n=5)
    standby.store.flush()

    async def run() -> None:
        clients = []
        for worker, port in zip((entry, standby), ports, strict=True):
            app = faust.App("standby-test", web_router_enabled=False, web_tables_enabled=False)
            register_http_api(app, worker, extra_routes=table_routes(worker, Peers(worker.url)))
            app.web.init_server()
            client = TestClient(TestServer(app.web.web_app, port=port))
            await client.start_server()
            clients.append(client)
        try:
            status, body, headers = await get(clients[0], f"/api/tables/t/keys/{key}")
            assert (status, body["error"], headers["Retry-After"]) == (503, "owner_unreachable", "1")
            status, body, _ = await get(clients[0], f"/api/tables/t/keys/{key}", stale_ok="true")
            assert status == 200 and body["standby"] is True and body["behind"] == {"1": 3}
            assert [(w["start"], w["value"]["n"]) for w in body["windows"]] == [(0, 5)]
        finally:
            for client in clients:
                await client.close()

    asyncio.run(run())


def test_isolation_committed_answers_and_waits_for_committed_state_only() -> None:
    """``isolation=committed`` reads what a commit made durable, with its position, and a token
    waits until a commit covers it; the default reads the commit in progress too."""
    table = all_active()
    key = "k1"
    partition = key_partition(key.encode(), PARTITIONS)
    table.store.flush()  # k1's windows committed with n=1
    table.put(key, 0, n=2)  # changed, not committed yet
    table.process(partition, {"in:1": 40})
    table.ends = {"in:1": 41}
    token = PositionToken.of("src", [WrittenAt("in", 1, 40, partition)]).encode()

    async def scenario(client: TestClient) -> None:
        status, body, _ = await get(client, f"/api/tables/t/keys/{key}")
        assert status == 200 and body["windows"][0]["value"]["n"] == 2 and body["committed"] is False
        status, body, _ = await get(client, f"/api/tables/t/keys/{key}", isolation="committed")
        assert status == 200 and body["windows"][0]["value"]["n"] == 1 and body["committed"] is True
        assert body["position"][str(partition)]["inputs"] == {}, "the committed state's own position"
        status, body, _ = await get(client, f"/api/tables/t/keys/{key}", after=token, wait=30)
        assert status == 200 and body["windows"][0]["value"]["n"] == 2, "processed: enough by default"
        status, body, _ = await get(
            client, f"/api/tables/t/keys/{key}", after=token, wait=0, isolation="committed"
        )
        assert (status, body["error"]) == (503, "position_not_reached"), "processed is not committed"
        table.waiting = asyncio.Event()
        waiting = asyncio.create_task(
            get(client, f"/api/tables/t/keys/{key}", after=token, wait=30, isolation="committed")
        )
        await table.waiting.wait()  # it waits: its position is processed, not committed
        await asyncio.wait({waiting}, timeout=0)
        assert not waiting.done()
        table.store.flush()  # the commit
        table.signal.notify()
        status, body, _ = await waiting
        assert status == 200 and body["windows"][0]["value"]["n"] == 2 and body["committed"] is True
        assert body["position"][str(partition)]["inputs"] == {"in:1": 40}
        status, body, _ = await get(client, "/api/tables/t/windows", isolation="sometimes")
        assert (status, body["error"]) == (400, "bad_query")

    serve(table, scenario)
