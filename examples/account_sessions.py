"""Sessions per account: keyed by the nested ``account.id``, amounts turned into cents.

continust worker -c examples/account_sessions.py
"""

from __future__ import annotations

from typing import Any

from streams.plan.python_front import App, session


def in_cents(purchase: dict[str, Any]) -> dict[str, Any]:
    return {**purchase, "cents": round(purchase["amount"] * 100)}


app = App("account-sessions")
purchases = app.source("purchases", topics=["purchases"], key="account.id", timestamp="ts")
purchases.map(in_cents).table(
    "sessions_per_account",
    window=session("30m", grace="1m", retention="7d"),
    aggregate={"purchases": "count()", "cents": "sum(cents)", "first_cents": "first(cents)"},
    emit="final",
    output="account-sessions",
)
