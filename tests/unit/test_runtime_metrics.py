"""The metric families read when scraped (consumer lag, recovery left, state bytes, ready), the state
size's scrape interval on a fake clock, the open-window count of the engine, and the input
time the end-to-end latency starts from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from agents.merge import INPUT_TIME_HEADER, input_time_ms
from agents.runtime_state import WorkerState, table_bytes
from streams.telemetry.metrics import REGISTRY, RuntimeCollector
from windows.aggregation_calls import parse_aggregation
from windows.partition import PartitionWindows
from windows.spec import SessionWindows, TumblingWindows
from windows.store import InMemoryWindowStore
from windows.table import WindowedAggregate


@dataclass
class FakeClock:
    now: int = 0

    def now_ms(self) -> int:
        return self.now


class Runtime:
    def consumer_lag(self) -> dict[tuple[str, int], int]:
        return {("orders", 0): 5, ("orders", 1): 0}

    def recovery_remaining(self) -> dict[tuple[str, int], int]:
        return {("app-t-changelog", 1): 30}

    def state_bytes(self) -> dict[str, int]:
        return {"t": 4096}

    def ready(self) -> bool:
        return False


def test_the_runtime_collector_exports_its_four_families() -> None:
    registry = CollectorRegistry()
    registry.register(RuntimeCollector(Runtime()))
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for s in family.samples
    }
    assert samples == {
        ("continust_consumer_lag_records", (("partition", "0"), ("topic", "orders"))): 5,
        ("continust_consumer_lag_records", (("partition", "1"), ("topic", "orders"))): 0,
        ("continust_recovery_remaining_records", (("partition", "1"), ("topic", "app-t-changelog"))): 30,
        ("continust_state_bytes", (("table", "t"),)): 4096,
        ("continust_ready", ()): 0,
    }


def app_in(generation: int | None, actives: int, rebalancing: bool, recovering: bool) -> Any:
    """The attributes of a Faust app that the readiness rule reads."""
    return SimpleNamespace(
        consumer_generation_id=generation,
        assignor=SimpleNamespace(assigned_actives=lambda: {("orders", p) for p in range(actives)}),
        rebalancing=rebalancing,
        in_recovery=recovering,
        tables=SimpleNamespace(recovery=SimpleNamespace(active_remaining=dict)),
    )


def test_continust_ready_is_1_only_when_the_ready_rule_holds() -> None:
    def ready(app: Any) -> float:
        registry = CollectorRegistry()
        registry.register(RuntimeCollector(WorkerState(app=app, tables={})))
        value = registry.get_sample_value("continust_ready")
        assert value is not None
        return value

    assert ready(app_in(3, 2, rebalancing=False, recovering=False)) == 1
    assert ready(app_in(None, 0, rebalancing=False, recovering=False)) == 0  # not joined
    assert ready(app_in(3, 0, rebalancing=False, recovering=False)) == 0  # nothing assigned
    assert ready(app_in(3, 2, rebalancing=True, recovering=False)) == 0
    assert ready(app_in(3, 2, rebalancing=False, recovering=True)) == 0


def test_process_metrics_are_on_the_registry() -> None:
    names = {family.name for family in REGISTRY.collect()}
    assert {"process_cpu_seconds", "process_resident_memory_bytes", "python_info"} <= names


def store_at(path: Path, name: str) -> Any:
    return SimpleNamespace(path=path, basename=Path(name))


def test_state_bytes_sums_the_partition_databases_of_each_table_at_most_every_10s(tmp_path: Path) -> None:
    for partition, size in ((0, 100), (1, 250)):
        db = tmp_path / f"t-{partition}.db"
        db.mkdir()
        (db / "000001.sst").write_bytes(b"x" * size)
    (tmp_path / "other-0.db").mkdir()
    (tmp_path / "other-0.db" / "000001.sst").write_bytes(b"y" * 999)
    clock = FakeClock()
    state = WorkerState(app=Any, tables={"t": SimpleNamespace(data=store_at(tmp_path, "t"))}, clock=clock)  # type: ignore[arg-type]
    assert state.state_bytes() == {"t": 350}
    (tmp_path / "t-0.db" / "000002.sst").write_bytes(b"z" * 50)
    clock.now += 9_999
    assert state.state_bytes() == {"t": 350}  # served from the last scan
    clock.now += 1
    assert state.state_bytes() == {"t": 400}
    assert table_bytes(store_at(tmp_path / "missing", "t")) == 0


def tumbling(emit: str = "final") -> WindowedAggregate:
    return WindowedAggregate(
        window=TumblingWindows(size_ms=10, grace_ms=0, retention_ms=1_000),
        aggregations=(parse_aggregation("count()"),),
        names=("n",),
        emit=emit,
    )


def test_open_windows_follow_creations_and_closes_and_survive_a_reload() -> None:
    store = InMemoryWindowStore()
    windows = PartitionWindows(tumbling(), store, 0)
    for arrival, (key, ts) in enumerate((("a", 1), ("b", 2), ("a", 5))):
        windows.on_event(key, {}, ts, arrival)
    assert windows.open_windows == 2  # [0, 10) of a and of b
    windows.on_event("a", {}, 12, 3)  # stream time 12 closes both, opens [10, 20) of a
    assert windows.open_windows == 1
    windows.on_event("c", {}, 15, 4)
    assert windows.open_windows == 2
    assert PartitionWindows(tumbling(), store, 0).open_windows == 2  # counted from the index


def test_merged_sessions_count_once() -> None:
    table = WindowedAggregate(
        window=SessionWindows(gap_ms=10, grace_ms=100, retention_ms=1_000),
        aggregations=(parse_aggregation("count()"),),
        names=("n",),
        emit="final",
    )
    windows = PartitionWindows(table, InMemoryWindowStore(), 0)
    windows.on_event("a", {}, 0, 0)
    windows.on_event("a", {}, 16, 1)
    assert windows.open_windows == 2
    windows.on_event("a", {}, 8, 2)  # within the gap of both: one session
    assert windows.open_windows == 1


def test_the_input_time_of_a_repartitioned_event_is_the_input_records() -> None:
    repartitioned = SimpleNamespace(
        timestamp=9_000, headers=[("continust-ts", b"5"), (INPUT_TIME_HEADER, b"7000")]
    )
    assert input_time_ms(repartitioned) == 7_000
    assert input_time_ms(SimpleNamespace(timestamp=9_000, headers=[])) == 9_000
    assert input_time_ms(SimpleNamespace(timestamp=9_000, headers=None)) == 9_000
