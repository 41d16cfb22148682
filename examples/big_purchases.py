"""Purchases over 10 EUR per user per minute: a filter before a tumbling count.

continust worker -c examples/big_purchases.py
"""

from __future__ import annotations

from typing import Any

from streams.plan.python_front import App, tumbling


def over_ten_euros(purchase: dict[str, Any]) -> bool:
    return purchase["currency"] == "EUR" and purchase["amount"] > 10


app = App("big-purchases")
purchases = app.source("purchases", topics=["purchases"], key="user", timestamp="ts")
purchases.filter(over_ten_euros).table(
    "big_purchases_per_minute",
    window=tumbling("1m", grace="10s", retention="7d"),
    aggregate={"purchases": "count()", "spent": "sum(amount)"},
    emit="final",
    output="big-purchases-per-minute",
)
