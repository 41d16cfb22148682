"""The Python example pipelines (examples/*.py), each through the broker-free harness against
what its docstring promises."""

from __future__ import annotations

import math
import random
from pathlib import Path

from agents.harness import Input, run_pipeline
from streams.plan.python_front import load_any_pipeline

EXAMPLES = Path(__file__).parents[2] / "examples"
MINUTE = 60_000


def test_big_purchases_counts_only_purchases_over_ten_euros_per_user_and_minute() -> None:
    purchases = [
        ("ann", 1_000, 12.0, "EUR"),
        ("ann", 2_000, 9.5, "EUR"),  # not over 10
        ("ann", 3_000, 50.0, "USD"),  # not in euros
        ("ben", 4_000, 10.01, "EUR"),
        ("ann", 65_000, 11.0, "EUR"),
        ("ann", 140_000, 1.0, "EUR"),  # closes the first two minutes (grace 10 s)
    ]
    result = run_pipeline(
        load_any_pipeline(EXAMPLES / "big_purchases.py"),
        [
            Input("purchases", {"user": u, "ts": ts, "amount": a, "currency": c}, key=u)
            for u, ts, a, c in purchases
        ],
        partitions=2,
    )
    finals = sorted(
        (r["key"], r["start"], r["value"]["purchases"], r["value"]["spent"])
        for r in result.output_values("big-purchases-per-minute")
    )
    assert finals == [("ann", 0, 1, 12.0), ("ann", MINUTE, 1, 11.0), ("ben", 0, 1, 10.01)]


def test_account_sessions_are_keyed_by_the_nested_account_and_sum_cents() -> None:
    def purchase(account: str, ts: int, amount: float) -> Input:
        return Input("purchases", {"account": {"id": account}, "ts": ts, "amount": amount}, key=account)

    thirty_minutes = 30 * MINUTE
    result = run_pipeline(
        load_any_pipeline(EXAMPLES / "account_sessions.py"),
        [
            purchase("a-1", 0, 1.25),
            purchase("a-1", 10 * MINUTE, 2.5),
            purchase("a-2", 5 * MINUTE, 0.1),
            purchase("a-1", 100 * MINUTE, 4.0),  # a new session: the first has closed
            purchase("a-2", 100 * MINUTE, 4.0),
        ],
        partitions=2,
    )
    finals = sorted(
        (r["key"], r["start"], r["end"], r["value"]) for r in result.output_values("account-sessions")
    )
    assert finals == [
        ("a-1", 0, 10 * MINUTE + thirty_minutes, {"purchases": 2, "cents": 375, "first_cents": 125}),
        ("a-2", 5 * MINUTE, 5 * MINUTE + thirty_minutes, {"purchases": 1, "cents": 10, "first_cents": 10}),
    ]


def test_endpoint_latency_gives_exact_percentiles_and_users_for_small_minutes() -> None:
    rng = random.Random(11)
    requests = sorted(
        (
            (
                rng.choice(["/cart", "/pay"]),
                rng.randrange(3 * MINUTE),
                rng.randrange(5, 900),
                f"u{rng.randrange(30)}",
            )
            for _ in range(400)
        ),
        key=lambda r: r[1],
    )
    result = run_pipeline(
        load_any_pipeline(EXAMPLES / "endpoint_latency.py"),
        [
            Input("requests", {"endpoint": e, "ts": ts, "latency_ms": ms, "user": u}, key=e)
            for e, ts, ms, u in requests
        ],
        partitions=2,
    )

    def quantile(values: list[int], q: float) -> float:
        ordered = sorted(values)
        return float(ordered[max(0, math.ceil(q * len(ordered)) - 1)])

    windows = result.windows["latency_per_minute"]
    assert len(windows) == 6
    for (endpoint, start, _end), value in windows.items():
        mine = [(ms, u) for e, ts, ms, u in requests if e == endpoint and start <= ts < start + MINUTE]
        latencies = [ms for ms, _ in mine]
        assert value == {
            "requests": len(mine),
            "p95_ms": quantile(latencies, 0.95),
            "p50_ms": quantile(latencies, 0.5),
            "users": len({u for _, u in mine}),
        }
