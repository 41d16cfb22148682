"""User functions the operator tests name as "module:function" (tests.unit.chain_functions.shop)."""

from __future__ import annotations

from typing import Any


def is_big(purchase: dict[str, Any]) -> bool:
    return purchase["amount"] > 10


def in_cents(purchase: dict[str, Any]) -> dict[str, Any]:
    return {**purchase, "cents": round(purchase["amount"] * 100)}


def items(order: dict[str, Any]) -> list[dict[str, Any]]:
    """One event per item; an item priced "free" is a bug this test keeps on purpose."""
    return [{"amount": 100 / item["price"]} for item in order["items"]]


NOT_A_FUNCTION = 3


def account_of(purchase: dict[str, Any]) -> str:
    return purchase["email"].split("@")[1].lower()
