"""The user functions of the failure tests' ``chained`` table (tests/integration/test_window_types.py
PIPELINE), named there as ``"tests.integration.window_chain:..."``; the reference model applies
the same ones."""

from __future__ import annotations

from typing import Any


def keep(event: dict[str, Any]) -> bool:
    """Drops a third of the events: those whose ``x`` is a multiple of 3."""
    return event["x"] % 3 != 0


def scaled(event: dict[str, Any]) -> dict[str, Any]:
    """A new payload: ``x`` ten times over."""
    return {**event, "x": event["x"] * 10}
